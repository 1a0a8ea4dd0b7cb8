"""Issue 13, Why 3-4: images as users keep them (16-bit, float), no clobbering (resume target, run
lock, stale temp files, data fingerprint) and caches keyed by content (collisions, planted symlinks,
shared cache folders)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from cutmix.train.data import _folder_key, _list_folder, load_data  # noqa: E402
from cutmix.train.lock import LOCK_NAME, RunLock, clean_temp_files  # noqa: E402
from helpers import run_cli  # noqa: E402

SMALL = ["--limit-per-class", "4", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")
run = run_cli  # (argv, capsys) -> (exit code, stdout, stderr)


# --------------------------------------------------------------------- 16-bit and float images
def _folder_of(tmp: Path, arrays: list[np.ndarray], ext: str) -> Path:
    root = tmp / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(root / c / f"{i}{ext}")
    return root


def _decoded(root: Path, size: int) -> np.ndarray:
    s = load_data(str(root), image_size=size, val_fraction=0.5, use_cache=False)
    return torch.cat([s.train.x, s.val.x]).numpy()


def test_16bit_png_is_scaled_by_its_range_not_clipped(tmp_path: Path) -> None:
    g = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)
    root = _folder_of(tmp_path, [g], ".png")
    assert Image.open(root / "a" / "0.png").mode == "I;16"  # a real 16-bit PNG
    x = _decoded(root, 32)
    expect = np.round(g.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert (x[0] == expect[None]).all()  # grey: the same in R, G and B
    assert (x[0] == 255).mean() < 0.01 and x[0].min() == 0  # before: 99.6 % at 255


def test_float_tiff_in_unit_range_and_beyond(tmp_path: Path) -> None:
    unit = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    wide = np.linspace(-3, 5, 16 * 16, dtype=np.float32).reshape(16, 16)
    root = _folder_of(tmp_path, [unit, wide], ".tif")
    assert Image.open(root / "a" / "0.tif").mode == "F"
    s = load_data(str(root), image_size=16, val_fraction=0.5, use_cache=False)
    x = torch.cat([s.train.x, s.val.x]).numpy()
    assert len(x) == 4
    want_unit = np.round(unit.astype(np.float64) * 255).astype(np.uint8)
    want_wide = np.round((wide.astype(np.float64) + 3) * 255 / 8).astype(np.uint8)
    got = {bytes(a[0].tobytes()) for a in x}
    assert got == {want_unit.tobytes(), want_wide.tobytes()}


def test_int32_image_outside_16bit_range_uses_its_min_max(tmp_path: Path) -> None:
    from cutmix.train.images import to_rgb8

    a = np.array([[-100000, 0], [100000, 300000]], dtype=np.int32)
    out = np.asarray(to_rgb8(Image.fromarray(a)))[..., 0]
    assert out.tolist() == [[0, 64], [128, 255]]


# ------------------------------------------------------------------------------- no clobbering
def _train(out: Path, *extra: str) -> list[str]:
    return ["train", *SMALL, "--epochs", "2", "--out", str(out), *extra]


def test_resume_writes_next_to_its_checkpoint_never_to_the_stored_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = tmp_path / "a"
    assert run([*_train(a), "--stop-after", "1"], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in a.iterdir()}
    foreign = tmp_path / "b"
    foreign.mkdir()
    shutil.copy(a / "last.pt", foreign / "last.pt")  # its config still says out = a
    code, stdout, _ = run(["train", "--resume", str(foreign / "last.pt"), "--quiet"], capsys)
    assert code == 0 and str(foreign) in stdout
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before  # untouched
    assert json.loads((foreign / "summary.json").read_text())["completed"] is True
    rows = (foreign / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
    # A folder works too, and --out wins.
    code, _, _ = run(["train", "--resume", str(a), "--quiet", "--out", str(tmp_path / "c")], capsys)
    assert code == 0 and (tmp_path / "c" / "last.pt").is_file()
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before


def test_second_run_on_a_locked_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with RunLock(out):  # another live run of this process
        lock = json.loads((out / LOCK_NAME).read_text())
        assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()
        code, _, err = run(_train(out), capsys)
    assert code == 2 and err.count("cutmix: error:") == 1
    assert f"locked by process {os.getpid()} on host {socket.gethostname()}" in err
    assert str(out / LOCK_NAME) in err and not (out / "metrics.jsonl").exists()
    assert not (out / LOCK_NAME).exists()  # released
    assert run(_train(out), capsys)[0] == 0
    assert not (out / LOCK_NAME).exists()  # the run released its lock


def test_live_lock_of_another_process_then_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": proc.pid, "host": socket.gethostname(), "started": time.time()}
        (out / LOCK_NAME).write_text(json.dumps(lock))
        code, _, err = run(_train(out), capsys)
        assert code == 2 and f"locked by process {proc.pid}" in err
    finally:
        proc.kill()
        proc.wait()
    code, _, err = run(_train(out), capsys)  # the process is gone: a stale lock, taken over
    assert code == 0
    assert f"warning: taking over the stale lock {out / LOCK_NAME} of process {proc.pid}" in err


def test_lock_whose_pid_was_reused_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    import time

    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process that started long after the lock was taken: not the lock's owner
        lock = {"pid": proc.pid, "host": socket.gethostname(), "started": time.time() - 3600}
        (out / LOCK_NAME).write_text(json.dumps(lock))
        code, _, err = run(_train(out), capsys)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0 and "its pid now belongs to a newer process" in err


def test_lock_of_another_host_is_never_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    code, _, err = run(_train(out), capsys)
    assert code == 2 and "locked by process 1 on host elsewhere.example" in err


def test_compare_locks_its_report_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    with RunLock(out):
        code, _, err = run(["compare", *SMALL, "--epochs", "1", "--out", str(out)], capsys)
    assert code == 2 and "locked by process" in err


def test_temp_files_of_a_killed_save_are_cleaned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    for name in (".last.pt.tmp999999", ".last.pt.tmp1"):
        (out / name).write_bytes(b"half a checkpoint")
    (out / "keep.txt").write_text("mine")
    assert run(_train(out), capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert (out / "keep.txt").read_text() == "mine"
    assert clean_temp_files(out) == []


def test_resume_on_changed_data_warns_then_refuses_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    y = np.arange(24) % 3
    np.savez(data, x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=y)
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]
    assert run([*argv, "--epochs", "2", "--out", str(out), "--stop-after", "1"], capsys)[0] == 0
    fp = torch.load(out / "last.pt", weights_only=True)["data_fingerprint"]
    assert isinstance(fp, str) and len(fp) == 24
    np.savez(data, x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=y)  # new pixels
    code, _, err = run(["train", "--resume", str(out), "--quiet"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("warning: the data") and "differs from the checkpoint's" in lines[0]
    assert lines[-1].startswith(
        "cutmix: error: resume: expected the data the checkpoint was trained on"
    )
    assert "--force" in lines[-1]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # nothing written
    code, _, err = run(["train", "--resume", str(out), "--quiet", "--force"], capsys)
    assert code == 0 and "warning: the data" in err


# ---------------------------------------------------------------------------- content caches
def _bmp_folder(root: Path, value: int, mtime_ns: int) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            p = root / c / f"{i}.bmp"
            Image.fromarray(np.full((8, 8, 3), value + i, np.uint8)).save(p)
            os.utime(p, ns=(mtime_ns, mtime_ns))
    return root


def test_two_folders_with_equal_names_sizes_and_mtimes_do_not_collide(tmp_path: Path) -> None:
    t = 1_600_000_000_000_000_000
    a = _bmp_folder(tmp_path / "x" / "data", 10, t)
    b = _bmp_folder(tmp_path / "y" / "data", 200, t)
    sa = load_data(str(a), image_size=8, val_fraction=0.5)
    sb = load_data(str(b), image_size=8, val_fraction=0.5)
    assert sa.info["cached"] is False and sb.info["cached"] is False
    assert set(torch.cat([sb.train.x, sb.val.x]).unique().tolist()) == {200, 201}
    sa2 = load_data(str(a), image_size=8, val_fraction=0.5)
    assert sa2.info["cached"] is True
    assert set(torch.cat([sa2.train.x, sa2.val.x]).unique().tolist()) == {10, 11}


def test_content_changed_under_the_same_name_size_and_mtime_is_decoded_again(
    tmp_path: Path,
) -> None:
    t = 1_600_000_000_000_000_000
    a = _bmp_folder(tmp_path / "data", 10, t)
    assert load_data(str(a), image_size=8, val_fraction=0.5).info["cached"] is False
    p = a / "a" / "0.bmp"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF  # the last pixel byte, in place (same inode, size; mtime restored)
    with open(p, "r+b") as f:
        f.write(data)
    os.utime(p, ns=(t, t))
    s = load_data(str(a), image_size=8, val_fraction=0.5)
    assert s.info["cached"] is False


def test_planted_symlinks_in_the_cache_do_not_write_their_targets(tmp_path: Path) -> None:
    a = _bmp_folder(tmp_path / "data", 10, 1_600_000_000_000_000_000)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    _, files = _list_folder(a, None)
    key = _folder_key(a, files, 8)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (cache / f"imagefolder-{key}.tmp{os.getpid()}.npz").symlink_to(victim)  # the old temp name
    s = load_data(str(a), image_size=8, val_fraction=0.5)
    assert s.info["cached"] is False and victim.read_text() == "precious"
    final = cache / f"imagefolder-{key}.npz"
    assert final.is_file() and not final.is_symlink()
    # A symlink at the final name is never read, and replacing it leaves its target alone.
    final.unlink()
    np.savez(tmp_path / "evil.npz", x=np.zeros((4, 3, 8, 8), np.uint8), y=np.zeros(4, np.int64))
    final.symlink_to(tmp_path / "evil.npz")
    s = load_data(str(a), image_size=8, val_fraction=0.5)
    assert s.info["cached"] is False and int(s.train.x.max()) >= 10
    assert not final.is_symlink() and np.load(tmp_path / "evil.npz")["x"].max() == 0
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []


def test_group_writable_cache_folder_is_refused_and_the_run_goes_on(tmp_path: Path) -> None:
    a = _bmp_folder(tmp_path / "data", 10, 1_600_000_000_000_000_000)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    logs: list[str] = []
    s = load_data(str(a), image_size=8, val_fraction=0.5, log=logs.append)
    assert len(s.train) + len(s.val) == 4 and s.info["cached"] is False
    assert any(
        "not using the image cache" in m and "writable by group or others" in m for m in logs
    )
    assert list(cache.iterdir()) == []


def _resize_then_crop(path: Path, size: int) -> np.ndarray:
    """The reference policy: shorter side to ``size`` (bilinear), then the centre crop."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        im = im.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        return np.asarray(im.crop((left, top, left + size, top + size))).transpose(2, 0, 1)


@pytest.mark.parametrize("shape", [(48, 40), (20, 32), (64, 8), (16, 16)])
def test_resize_policy_is_resize_then_centre_crop(tmp_path: Path, shape: tuple[int, int]) -> None:
    from cutmix.train.images import decode_image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (shape[1], shape[0], 3), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    assert (decode_image(tmp_path / "a.png", 8) == _resize_then_crop(tmp_path / "a.png", 8)).all()


def test_long_strip_resamples_its_centre_square(tmp_path: Path) -> None:
    from cutmix.train.images import decode_image

    strip = np.zeros((10, 200, 3), np.uint8)
    strip[:, 95:105] = 200  # the centre square is bright, the rest dark
    Image.fromarray(strip).save(tmp_path / "s.png")
    x = decode_image(tmp_path / "s.png", 8)
    # The bilinear support reaches a little past the square: its edge columns blend in some dark.
    assert x.shape == (3, 8, 8) and (x[:, :, 1:-1] == 200).all() and (x > 150).all()
