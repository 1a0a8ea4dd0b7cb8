"""Datasets of the training tool: digits, image folders (cache, corrupt files), CIFAR folders, npz."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
PIL = pytest.importorskip("PIL")
pytest.importorskip("sklearn")

from PIL import Image  # noqa: E402

from cutmix.train.data import load_data, stratified_split  # noqa: E402
from cutmix.train.errors import UsageError  # noqa: E402

pytestmark = pytest.mark.usefixtures("isolated_data_cache")


def make_folder(root: Path, per_class: int = 4, sizes: tuple[int, ...] = (32,)) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "emu"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            s = sizes[i % len(sizes)]
            arr = rng.integers(0, 256, (s, s + 8, 3), dtype=np.uint8)  # not square: crop policy
            Image.fromarray(arr).save(root / c / f"{i:03d}.png")
    return root


def test_digits_split_is_stratified_fixed_and_scaled() -> None:
    a = load_data("digits")
    b = load_data("digits")
    assert a.train.x.shape[1:] == (1, 32, 32) and a.train.x.dtype.is_floating_point is False
    assert len(a.train) + len(a.val) == 1797
    assert abs(len(a.val) / 1797 - 0.8) < 0.01
    assert (a.train.y == b.train.y).all() and (a.train.x == b.train.x).all()
    counts = np.bincount(a.train.y.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # every class ~20 %
    assert int(a.train.x.max()) == 255 and int(a.train.x.min()) == 0


def test_stratified_split_per_class_counts() -> None:
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    keep, held = stratified_split(y, 0.3, seed=5)
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    assert np.bincount(y[held]).tolist() == [3, 6, 9, 12]
    _, held2 = stratified_split(y, 0.3, seed=5)
    assert (held == held2).all()


def test_image_folder_resize_policy_and_cache(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", per_class=5, sizes=(20, 40))
    s = load_data(str(root), val_fraction=0.4, image_size=16)
    assert s.classes == ["cat", "dog", "emu"]
    assert s.image_shape == (3, 16, 16)
    assert len(s.train) + len(s.val) == 15 and len(s.val) == 6
    assert s.info["cached"] is False
    cache_files = list((tmp_path / "cache").glob("imagefolder-*.npz"))
    assert len(cache_files) == 1 and root not in cache_files[0].parents
    s2 = load_data(str(root), val_fraction=0.4, image_size=16)
    assert s2.info["cached"] is True
    assert (s2.train.x == s.train.x).all() and (s2.val.y == s.val.y).all()
    # A changed folder is decoded again (the key follows the contents).
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "cat" / "new.png")
    s3 = load_data(str(root), val_fraction=0.4, image_size=16)
    assert s3.info["cached"] is False and len(s3.train) + len(s3.val) == 16


def test_corrupt_images_are_skipped_and_reported(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "emu" / "empty.png").write_bytes(b"")
    messages: list[str] = []
    s = load_data(str(root), val_fraction=0.25, log=messages.append)
    assert len(s.train) + len(s.val) == 12
    assert len(s.info["skipped"]) == 2
    assert any(
        "skipped 2" in m and "dog/broken.jpg" in m and "emu/empty.png" in m for m in messages
    )


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda r: None, "missing path"),
        (lambda r: r.mkdir(), "empty folder"),
        (lambda r: (r / "a").mkdir(parents=True) or (r / "b").mkdir(), "no"),
    ],
)
def test_bad_folders_raise_usage_errors(tmp_path: Path, setup, match: str) -> None:
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(UsageError, match=match):
        load_data(str(root))


def test_class_folder_without_images_is_named(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    (root / "zebra").mkdir()
    (root / "zebra" / "notes.txt").write_text("no images here")
    with pytest.raises(UsageError, match="zebra"):
        load_data(str(root))


def _cifar_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data}, f, protocol=2)
    return data, labels


def test_cifar_python_folder(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    _, l1 = _cifar_batch(root / "data_batch_1", 30, 1)
    d2, l2 = _cifar_batch(root / "data_batch_2", 20, 2)
    dt, lt = _cifar_batch(root / "test_batch", 10, 3)
    names = [f"c{i}".encode() for i in range(10)]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f, protocol=2)
    s = load_data(str(root))
    assert len(s.train) == 50 and len(s.val) == 10 and s.classes[3] == "c3"
    assert (s.val.x.reshape(10, -1).numpy() == dt).all() and s.val.y.tolist() == lt
    assert (s.train.x[30:].reshape(20, -1).numpy() == d2).all()
    assert s.train.y.tolist() == l1 + l2


def test_cifar_unpickler_refuses_code(tmp_path: Path) -> None:
    root = tmp_path / "evil"
    root.mkdir()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(root / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(UsageError, match="refusing"):
        load_data(str(root))
    assert not marker.exists()


def test_npz_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 16, 16, 3))  # NHWC floats in [0, 1]
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:8], y_test=y[:8])
    s = load_data(str(tmp_path / "d.npz"))
    assert s.image_shape == (3, 16, 16) and len(s.val) == 8 and len(s.train) == 40
    expect = np.clip(np.round(x[0].transpose(2, 0, 1) * 255), 0, 255).astype(np.uint8)
    assert (s.train.x[0].numpy() == expect).all()
    s2 = load_data(str(tmp_path / "d.npz"), val_fraction=0.25, train_subset=15)
    assert len(s2.val) == 10 and len(s2.train) == 15
    assert np.bincount(s2.train.y.numpy()).min() >= 3
