"""Memory bombs of issue 13 (Why 2): tiny files that declare huge sizes are refused quickly, in a
process that stays far below the allocation they ask for.

All bombs run in one fresh subprocess (one torch import); for each it reports the seconds taken and
the peak resident memory (``ru_maxrss``) above the peak after a bare ``import cutmix``.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

LIMIT_S = 5.0
LIMIT_MB = 500.0


class _Call:
    """Pickles as ``func(*args)``: how a hostile file declares an allocation."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _cifar_folder(root: Path, batch: dict[bytes, object]) -> str:
    root.mkdir(parents=True)
    with open(root / "data_batch_1", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return str(root)


def _reconstruct() -> object:
    mod = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    return mod._reconstruct


class _DeclaredArray:
    """An ndarray pickled the numpy way, but declaring 200k images with 3 bytes of pixels."""

    def __reduce__(self) -> tuple[object, ...]:
        state = (1, (200_000, 3072), np.dtype(np.uint8), False, b"abc")
        return _reconstruct(), (np.ndarray, (0,), b"b"), state


def _tall_png(path: Path) -> None:
    """A 200000x1 grey PNG, written by hand (a few hundred bytes: every row compresses to nothing)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    w, h = 200_000, 1
    row = b"\0" + b"\x80" * w
    raw = zlib.compress(row * h, 9)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    )


def _make_bombs(tmp: Path) -> dict[str, str]:
    bombs = {}
    bombs["cifar-ndarray-2M-images"] = _cifar_folder(
        tmp / "nd",
        {b"data": _Call(np.ndarray, (2_000_000, 3072), np.dtype(np.uint8)), b"labels": [0]},
    )
    bombs["cifar-bytearray-1.5GB"] = _cifar_folder(
        tmp / "ba", {b"data": _Call(bytearray, 1_500_000_000), b"labels": [0]}
    )
    bombs["cifar-200k-declared-images"] = _cifar_folder(
        tmp / "rc", {b"data": _DeclaredArray(), b"labels": [0]}
    )
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    bombs["cifar-label-1e9"] = _cifar_folder(
        tmp / "l9", {b"data": data, b"labels": [0, 1, 2, 10**9]}
    )
    bombs["cifar-label-2M"] = _cifar_folder(
        tmp / "l2", {b"data": data, b"labels": [0, 1, 2, 2_000_000]}
    )
    x = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    np.savez(tmp / "l9.npz", x=x, y=np.array([0, 1, 2, 10**9]))
    bombs["npz-label-1e9"] = str(tmp / "l9.npz")
    np.savez(tmp / "l2.npz", x=x, y=np.array([0, 1, 2, 2_000_000]))
    bombs["npz-label-2M"] = str(tmp / "l2.npz")
    folder = tmp / "png" / "a"
    folder.mkdir(parents=True)
    _tall_png(folder / "tall.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    bombs["png-200000x1"] = str(tmp / "png")
    return bombs


_SCRIPT = r"""
import json, resource, sys, time
import cutmix  # the reference: a bare import
def status(key):
    with open("/proc/self/status") as f:
        return next(int(s.split()[1]) for s in f if s.startswith(key + ":")) / 1024.0  # MiB
try:  # reset the high-water mark to the current RSS (Linux >= 4.0), so it measures what follows
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status("VmRSS")
    peak = lambda: status("VmHWM")
except OSError:  # ru_maxrss: the peak since the process started (less sensitive, never lower)
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    base = peak()
from cutmix.train.data import load_data
from cutmix.train.errors import UsageError
res = {}
for name, spec in json.loads(sys.argv[1]).items():
    logs = []
    t = time.perf_counter()
    try:
        s = load_data(spec, use_cache=False, val_fraction=0.5, log=logs.append)
        outcome = "loaded: " + " | ".join(logs)
    except UsageError as e:
        outcome = "refused: " + str(e)
    res[name] = {"s": time.perf_counter() - t, "mb": peak() - base, "outcome": outcome}
import numpy as np  # the measurement's self-check: 200 MiB touched must show
a = np.ones(200 << 20, np.uint8)
res["self-check"] = {"mb": peak() - base}
print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    if sys.platform != "linux":
        pytest.skip("ru_maxrss units differ off Linux")
    bombs = _make_bombs(tmp_path_factory.mktemp("bombs"))
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(bombs)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    sizes = {
        k: sum(p.stat().st_size for p in Path(v).rglob("*") if p.is_file())
        if Path(v).is_dir()
        else Path(v).stat().st_size
        for k, v in bombs.items()
    }
    for k, r in res.items():
        if k not in sizes:
            continue
        print(
            f"{k:28s} {sizes[k]:>7d} bytes  {r['s']:.3f} s  {r['mb']:+.1f} MiB  {r['outcome'][:110]}"
        )
    return res


@pytest.mark.slow
def test_the_memory_measurement_sees_an_allocation(measured: dict[str, dict]) -> None:
    assert 190 < measured["self-check"]["mb"] < 300, measured["self-check"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("cifar-ndarray-2M-images", "refusing to allocate 6144000000 bytes"),
        ("cifar-bytearray-1.5GB", "refusing to allocate 1500000000 bytes"),
        ("cifar-200k-declared-images", "refusing an array of 614400000 bytes stored in 3"),
        ("cifar-label-1e9", "expected class ids in [0, 100000) in labels"),
        ("cifar-label-2M", "expected class ids in [0, 100000) in labels"),
        ("npz-label-1e9", "expected class ids in [0, 100000) in y"),
        ("npz-label-2M", "expected class ids in [0, 100000) in y"),
        ("png-200000x1", "skipped 1 unreadable image(s)"),
    ],
)
def test_bomb_is_refused_fast_and_small(measured: dict[str, dict], name: str, expect: str) -> None:
    r = measured[name]
    assert expect in r["outcome"], r
    assert r["s"] < LIMIT_S, r
    assert r["mb"] < LIMIT_MB, r


def test_tall_png_is_named_with_its_reason(tmp_path: Path) -> None:
    from cutmix.train.data import load_data

    root = Path(_make_bombs(tmp_path)["png-200000x1"])
    logs: list[str] = []
    s = load_data(str(root), use_cache=False, val_fraction=0.5, log=logs.append)
    assert len(s.train) + len(s.val) == 2
    assert any("a/tall.png (aspect ratio 200000x1 beyond 32:1)" in m for m in logs), logs


def test_pillow_bomb_limit_is_used_not_bypassed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image as PILImage

    from cutmix.train.images import ImageRefused, decode_image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: over the warning limit
    with pytest.raises(ImageRefused, match="Pillow's limit"):
        decode_image(tmp_path / "big.png", 8)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 500)  # over twice the limit: Pillow's error
    with pytest.raises(PILImage.DecompressionBombError):
        decode_image(tmp_path / "big.png", 8)
