"""The opt-in C kernel's build and load: cache, clear errors without a compiler or a cache folder.

Its results are tested with every other strategy in tests/test_strategies.py (bitwise against the
reference over hypothesis cases, layouts, bad params).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cutmix
from cutmix import _native
from cutmix import functional as F

HAS_CC = any(shutil.which(c) for c in ("cc", "gcc", "clang"))


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty cache folder and no loaded library; the real one is restored afterwards."""
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "cache"))
    _native.load.cache_clear()
    yield tmp_path / "cache"
    _native.load.cache_clear()


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


def test_failing_compiler_is_a_clear_error(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "false")  # exits with 1
    with pytest.raises(RuntimeError, match="strategy: expected 'native' to build with false, got"):
        _native.load()
    monkeypatch.setenv("CC", str(fresh / "no-such-compiler"))
    with pytest.raises(RuntimeError, match="strategy: expected 'native' to build and load"):
        _native.load()


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
