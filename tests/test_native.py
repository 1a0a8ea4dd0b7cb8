"""The opt-in C kernel's build and load: cache, clear errors without a compiler or a cache folder.

Its results are tested with every other strategy in tests/test_strategies.py (bitwise against the
reference over hypothesis cases, layouts, bad params).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cutmix
from cutmix import _native
from cutmix import functional as F
from helpers import HAS_C_COMPILER as HAS_CC


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty cache folder and no loaded library; the real one is restored afterwards."""
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "cache"))
    _native.load.cache_clear()
    _native._loads.cache_clear()
    yield tmp_path / "cache"
    _native.load.cache_clear()
    _native._loads.cache_clear()


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_builds_once_into_the_cache_folder(fresh: Path) -> None:
    _native.load()
    (lib,) = fresh.glob("cut_rows_*.so")
    stamp = lib.stat().st_mtime_ns
    _native.load.cache_clear()
    _native.load()  # a second process would find the library and not rebuild it
    assert lib.stat().st_mtime_ns == stamp
    assert [p.name for p in fresh.iterdir()] == [lib.name]  # no temporary files left


def test_no_compiler_is_a_clear_error(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(fresh))  # nothing there
    with pytest.raises(RuntimeError, match="strategy: expected 'native' to find a C compiler"):
        _native.load()
    x = torch.rand(2, 1, 3, 3)
    p = cutmix.sample_cutmix(2, (3, 3), generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="Use strategy='auto' instead"):
        F.cut_images(x, p, strategy="native")
    # "auto" never raises for it: it keeps the eager kernels, with the same result.
    assert not _native.available()
    assert F._route(x, "auto", False, None) == "select"
    expected = x.clone()
    for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
        expected[i, :, y1:y2, x1:x2] = x[int(p.perm[i]), :, y1:y2, x1:x2]
    assert torch.equal(F.cut_images(x, p), expected)
    images, _ = cutmix.CutMix(num_classes=2)(x, torch.tensor([0, 1]), torch.Generator())
    assert images.shape == x.shape


def test_failing_compiler_is_a_clear_error(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "false")  # exits with 1
    with pytest.raises(RuntimeError, match="strategy: expected 'native' to build with false, got"):
        _native.load()
    monkeypatch.setenv("CC", str(fresh / "no-such-compiler"))
    with pytest.raises(RuntimeError, match="strategy: expected 'native' to build and load"):
        _native.load()


def test_hanging_compiler_times_out(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = fresh.parent / "slow-cc"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    monkeypatch.setenv("CC", str(slow))
    monkeypatch.setattr(_native, "_BUILD_TIMEOUT_S", 0.2)
    with pytest.raises(RuntimeError, match=r"slow-cc within 0.2 s, got no result"):
        _native.load()
    assert not _native.available()  # "auto" keeps the eager kernels


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_unwritable_cache_folder_is_a_clear_error(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = fresh.parent / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(RuntimeError, match="Set CUTMIX_CACHE_DIR to a writable folder"):
        _native.load()


def test_rows_layout() -> None:
    x = torch.zeros(2, 3, 4, 5)
    assert _native.rows_layout(x) == (3, 4, [240, 80, 20])
    cl = x.contiguous(memory_format=torch.channels_last)
    assert _native.rows_layout(cl) == (1, 12, [240, 0, 60])  # a pixel is its 3 channels
    assert _native.rows_layout(x[:, :, :, 1:4]) == (3, 4, [240, 80, 20])  # cropped rows
    assert _native.rows_layout(x.transpose(2, 3).contiguous().transpose(2, 3)) is None


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
def test_available_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTMIX_NATIVE", raising=False)
    assert _native.available()
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv("CUTMIX_NATIVE", off)
        assert not _native.available()
    monkeypatch.setenv("CUTMIX_NATIVE", "1")
    assert _native.available()


@pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
@pytest.mark.parametrize("piece", [1, 4, 12])
def test_new_outputs_copy_blocks_in_pieces(piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Big new outputs are written in short pieces; with tiny pieces every block is split (a last
    # piece of any length) and the result is still bitwise the reference.
    monkeypatch.setattr(_native, "_FRESH_PAGES_MIN_BYTES", 0)
    monkeypatch.setattr(_native, "_PIECE_BYTES", piece)
    g = torch.Generator().manual_seed(piece)
    for dtype in (torch.float32, torch.uint8):
        x = torch.randint(0, 256, (6, 2, 11, 5), generator=g).to(dtype)
        p = cutmix.sample_cutmix(6, (11, 5), generator=g)
        expected = x.clone()
        for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
            expected[i, :, y1:y2, x1:x2] = x[int(p.perm[i]), :, y1:y2, x1:x2]
        assert torch.equal(F.cut_images(x, p, strategy="native"), expected)
        assert torch.equal(
            _native.cut_rows(x, p.perm, p.boxes, torch.empty_like(x), True), expected
        )
