"""The C kernel's build and load: cache, clear errors without a compiler, and a cache folder that is
treated as ssh treats ``~/.ssh`` (private, refused when others could have written to it).

Its results are tested with every other strategy in tests/test_strategies.py (bitwise against the
reference over hypothesis cases, layouts, bad params); its inputs in tests/test_native_inputs.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cutmix
from cutmix import _native
from cutmix.functional import _images as F
from helpers import HAS_C_COMPILER as HAS_CC

needs_cc = pytest.mark.skipif(not HAS_CC, reason="needs a C compiler")
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
OTHER_UID = 54321


def _clear() -> None:
    _native.load.cache_clear()
    _native._loads.cache_clear()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty cache folder and no loaded library; the real one is restored afterwards."""
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CUTMIX_NATIVE", raising=False)
    _clear()
    yield tmp_path / "cache"
    _clear()


def _files(folder: Path) -> tuple[Path, Path]:
    """The sidecar and the library it names."""
    (side,) = folder.glob("cut_rows_*.sha256")
    (lib,) = folder.glob("cut_rows_*.so")
    return side, lib


def _reference(x: torch.Tensor, p: cutmix.MixParams) -> torch.Tensor:
    expected = x.clone()
    for i, (x1, y1, x2, y2) in enumerate(p.boxes.tolist()):
        expected[i, :, y1:y2, x1:x2] = x[int(p.perm[i]), :, y1:y2, x1:x2]
    return expected


def _assert_refused(match: str) -> None:
    """load() refuses; available() says no with one warning; default calls still give the right
    result with the eager kernels; an explicit strategy="native" raises."""
    with pytest.raises(_native.UnsafeCacheError, match=match):
        _native.load()
    with pytest.warns(RuntimeWarning, match=match):
        assert not _native.available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not _native.available()  # warned once only
    x = torch.rand(4, 2, 6, 5)
    p = cutmix.sample_cutmix(4, (6, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(F.cut_images(x, p), _reference(x, p))
    y = x.clone()
    assert torch.equal(F.cut_images(y, p, inplace=True), _reference(x, p))
    targets = F.mix_labels(torch.tensor([0, 1, 2, 0]), p, 3)
    assert torch.allclose(targets.sum(1), torch.ones(4))
    with pytest.raises(RuntimeError, match="refusing to load"):
        F.cut_images(x, p, strategy="native")


def _compile(tmp: Path, code: str) -> bytes:
    src, lib = tmp / "foreign.c", tmp / "foreign.so"
    src.write_text(code)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib.read_bytes()


def _plant(folder: Path, data: bytes) -> Path:
    """Replace the library the sidecar names by ``data`` (with a sidecar that matches it)."""
    side, lib = _files(folder)
    digest = hashlib.sha256(data).hexdigest()
    lib.unlink()
    planted = folder / _native._library_name(side.stem.removeprefix("cut_rows_"), digest)
    planted.write_bytes(data)
    planted.chmod(0o600)
    side.write_text(digest + "\n")
    return planted


@needs_cc
def test_builds_once_into_the_cache_folder(fresh: Path) -> None:
    _native.load()
    side, lib = _files(fresh)
    stamp = lib.stat().st_mtime_ns
    _native.load.cache_clear()
    _native.load()  # a second process would find the library and not rebuild it
    assert lib.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in fresh.iterdir()) == sorted([lib.name, side.name])  # no temp
    digest = side.read_text().strip()
    assert hashlib.sha256(lib.read_bytes()).hexdigest() == digest
    assert lib.name.endswith(f"-{digest[:16]}.so")


@needs_cc
def test_source_is_package_data() -> None:
    import importlib.resources

    text = importlib.resources.files("cutmix").joinpath("csrc/cut_rows.c").read_text()
    assert "cutmix_cut_rows" in text and text == _native._source()
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.exists():
        assert '"csrc/*.c"' in pyproject.read_text()


def test_tag_follows_source_compiler_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = _native._tag(["cc"], "a" * 64)
    assert tag != _native._tag(["cc"], "b" * 64)
    assert tag != _native._tag(["gcc"], "a" * 64)
    assert tag != _native._tag(["cc", "-march=native"], "a" * 64)
    monkeypatch.setattr(_native, "_FLAGS", (*_native._FLAGS, "-g"))
    assert tag != _native._tag(["cc"], "a" * 64)


@needs_cc
def test_umask_000_still_creates_a_private_folder_and_files(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fresh / "deeper" / "cache"
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(folder))
    old = os.umask(0)
    try:
        _native.load()
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for f in _files(folder):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


@needs_cc
def test_default_folder_is_private_inside_a_shared_cache(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The training tool's cache folder may be group-writable (umask 002): the kernel keeps to a
    # private folder of its own inside it.
    monkeypatch.delenv("CUTMIX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "xdg" / "cutmix"
    shared.mkdir(parents=True)
    shared.chmod(0o775)
    assert _native.available()
    assert stat.S_IMODE((shared / "native").stat().st_mode) == 0o700
    assert len(_files(shared / "native")) == 2


@needs_cc
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_refuses_a_folder_writable_by_group_or_others(fresh: Path, mode: int) -> None:
    fresh.mkdir()
    fresh.chmod(mode)
    _assert_refused("writable by group or others")
    assert list(fresh.iterdir()) == []  # nothing built there either


@needs_cc
@needs_root
def test_refuses_a_folder_owned_by_another_user(fresh: Path) -> None:
    fresh.mkdir(mode=0o700)
    os.chown(fresh, OTHER_UID, -1)
    _assert_refused(f"owned by uid {OTHER_UID}")


@needs_cc
@needs_root
def test_never_loads_a_library_planted_by_another_user(fresh: Path, tmp_path: Path) -> None:
    # A library whose constructor leaves a mark, with a sidecar that matches it: only the owner
    # check stands between it and the process.
    _native.load()
    _clear()
    mark = tmp_path / "constructor-ran"
    evil = _compile(
        tmp_path,
        "#include <stdio.h>\n__attribute__((constructor)) static void f(void) "
        f'{{ FILE *m = fopen("{mark}", "w"); if (m) fclose(m); }}\n',
    )
    planted = _plant(fresh, evil)
    os.chown(planted, OTHER_UID, -1)
    _assert_refused(f"owned by uid {OTHER_UID}")
    os.chown(planted, os.geteuid(), -1)
    side, _ = _files(fresh)
    os.chown(side, OTHER_UID, -1)  # a sidecar of another user is refused as well
    _clear()
    _assert_refused(f"owned by uid {OTHER_UID}")
    assert not mark.exists()


@needs_cc
@pytest.mark.parametrize("which", ["library", "sidecar"])
def test_refuses_files_writable_by_others(fresh: Path, which: str) -> None:
    _native.load()
    _clear()
    side, lib = _files(fresh)
    (lib if which == "library" else side).chmod(0o666)
    _assert_refused("writable by group or others")


@needs_cc
def test_refuses_a_symlinked_library(fresh: Path, tmp_path: Path) -> None:
    _native.load()
    _clear()
    side, lib = _files(fresh)
    elsewhere = tmp_path / "elsewhere.so"
    lib.rename(elsewhere)
    lib.symlink_to(elsewhere)
    _assert_refused("is a symlink")
    lib.unlink()
    side.rename(tmp_path / "side")
    side.symlink_to(tmp_path / "side")
    _clear()
    _assert_refused("is a symlink")


@needs_cc
def test_refuses_what_is_not_a_regular_file(fresh: Path) -> None:
    _native.load()
    _clear()
    side, lib = _files(fresh)
    lib.unlink()
    lib.mkdir(mode=0o700)
    _assert_refused("not a regular file")
    side.unlink()
    os.mkfifo(side, 0o600)  # must not block the open
    _clear()
    _assert_refused("not a regular file")


@needs_cc
def test_a_changed_library_is_never_loaded_but_rebuilt(fresh: Path) -> None:
    _native.load()
    _clear()
    side, lib = _files(fresh)
    good = lib.read_bytes()
    # Ours, private, but not the bytes the sidecar records. Written beside and moved over it: a
    # truncate in place would cut the pages this process has mapped (SIGBUS at exit, rc 135).
    changed = lib.with_name(lib.name + ".tmp")
    changed.write_bytes(b"\x7fELF garbage")
    changed.chmod(0o600)
    os.replace(changed, lib)
    assert _native.available()  # rebuilt (same name: a build's bytes are its name)
    assert lib.read_bytes() == good
    side.write_text("not a hash")
    _clear()
    assert _native.available()
    assert _files(fresh)[0].read_text().strip() == hashlib.sha256(good).hexdigest()


@needs_cc
def test_a_library_without_the_kernels_is_refused_without_raising(
    fresh: Path, tmp_path: Path
) -> None:
    # Ours, private, and the bytes the sidecar records: but not the cutmix kernel.
    _native.load()
    _clear()
    _plant(fresh, _compile(tmp_path, "int foreign(void) { return 1; }\n"))
    with pytest.raises(RuntimeError, match="without it"):
        _native.load()
    assert not _native.available()
    x = torch.rand(4, 2, 6, 5)
    p = cutmix.sample_cutmix(4, (6, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(F.cut_images(x, p), _reference(x, p))
    assert torch.equal(F.cut_images(x.clone(), p, inplace=True), _reference(x, p))
    assert torch.equal(F.mix_labels(torch.tensor([0, 1, 1, 0]), p, 2).sum(1), torch.ones(4))
    with pytest.raises(RuntimeError, match="without it"):
        F.cut_images(x, p, strategy="native")


@needs_cc
def test_a_library_built_from_another_source_is_refused(fresh: Path, tmp_path: Path) -> None:
    # Ours, private, every entry point, but it reports another source (as an old build would).
    _native.load()
    _clear()
    _plant(fresh, _compile(tmp_path, '#define CUTMIX_SOURCE_SHA "x"\n' + _native._source()))
    with pytest.raises(RuntimeError, match="built from another"):
        _native.load()
    assert not _native.available()


@pytest.mark.parametrize(
    "setup",
    [
        "garbage sidecar",
        "garbage library",
        "unreadable",
        "nul in path",
        "bad CC quoting",
        "no source",
        "cache is a file",
    ],
)
def test_available_never_raises(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setup: str
) -> None:
    if setup == "garbage sidecar":
        fresh.mkdir(mode=0o700)
        monkeypatch.setenv("CC", "false")  # no rebuild either
        sha = hashlib.sha256(_native._source().encode()).hexdigest()
        tag = _native._tag(_native._compiler(), sha)
        (fresh / f"cut_rows_{tag}.sha256").write_bytes(os.urandom(64))
    elif setup == "garbage library":  # ours, private, the bytes the sidecar records: no ELF
        fresh.mkdir(mode=0o700)
        sha = hashlib.sha256(_native._source().encode()).hexdigest()
        tag = _native._tag(_native._compiler(), sha)
        junk = os.urandom(256)
        digest = hashlib.sha256(junk).hexdigest()
        (fresh / _native._library_name(tag, digest)).write_bytes(junk)
        (fresh / f"cut_rows_{tag}.sha256").write_text(digest)
        for f in fresh.iterdir():
            f.chmod(0o600)
    elif setup == "unreadable":

        def unreadable(*args: object) -> None:
            raise PermissionError(13, "Permission denied", str(fresh))

        monkeypatch.setattr(_native, "_load_built", unreadable)
    elif setup == "nul in path":
        monkeypatch.setattr(_native, "_cache_dir", lambda: tmp_path / "a\x00b")
    elif setup == "bad CC quoting":
        monkeypatch.setenv("CC", "'cc")
    elif setup == "no source":
        monkeypatch.setattr(_native, "_SOURCE_NAME", "csrc/missing.c")
        _native._source.cache_clear()
        monkeypatch.setattr(_native, "_source", _native._source.__wrapped__)
    else:
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("CUTMIX_CACHE_DIR", str(tmp_path / "file"))
    assert not _native.available()
    with pytest.raises(RuntimeError):
        _native.load()


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
    assert [p.name for p in fresh.iterdir()] == []  # the temporary build folder is gone
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


@needs_cc
def test_unwritable_cache_folder_is_a_clear_error(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = fresh.parent / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CUTMIX_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(RuntimeError, match="Set CUTMIX_CACHE_DIR to a writable folder"):
        _native.load()


@needs_cc
def test_leftovers_of_a_killed_build_are_ignored(fresh: Path) -> None:
    # Killed mid-build: a temporary folder, or a library moved into place without its sidecar.
    _native.load()
    _clear()
    side, lib = _files(fresh)
    side.unlink()
    (fresh / ".build-junk").mkdir(mode=0o700)
    (fresh / ".build-junk" / "cut_rows.so").write_bytes(b"half")
    assert _native.available()
    assert _files(fresh) == (side, lib)  # the same build, now with its sidecar


@needs_cc
@pytest.mark.slow
def test_concurrent_builders_agree(fresh: Path) -> None:
    code = "from cutmix import _native; _native.load(); print('ok')"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    assert [p.communicate(timeout=300)[0].strip() for p in procs] == ["ok"] * 3
    side, lib = _files(fresh)  # one sidecar, one library, no temporary folder left
    assert hashlib.sha256(lib.read_bytes()).hexdigest() == side.read_text().strip()
    assert len(list(fresh.iterdir())) == 2


def test_rows_layout() -> None:
    x = torch.zeros(2, 3, 4, 5)
    assert _native.rows_layout(x) == (3, 4, [240, 80, 20])
    cl = x.contiguous(memory_format=torch.channels_last)
    assert _native.rows_layout(cl) == (1, 12, [240, 0, 60])  # a pixel is its 3 channels
    assert _native.rows_layout(x[:, :, :, 1:4]) == (3, 4, [240, 80, 20])  # cropped rows
    assert _native.rows_layout(x.transpose(2, 3).contiguous().transpose(2, 3)) is None


@needs_cc
def test_available_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTMIX_NATIVE", raising=False)
    assert _native.available()
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv("CUTMIX_NATIVE", off)
        assert not _native.available()
    monkeypatch.setenv("CUTMIX_NATIVE", "1")
    assert _native.available()


@needs_cc
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
        expected = _reference(x, p)
        assert torch.equal(F.cut_images(x, p, strategy="native"), expected)
        assert torch.equal(
            _native.cut_rows(x, p.perm, p.boxes, torch.empty_like(x), True), expected
        )
