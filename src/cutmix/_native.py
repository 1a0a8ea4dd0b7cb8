"""The CPU kernels ``"auto"`` uses: per-sample row copies and soft targets in C, built on first use.

PyTorch's eager ops either touch every byte several times (the masked select) or pay Python and
per-slice dispatch for every box (the slice loop). :func:`cut_rows` writes each output byte once:
per sample and row it copies the own row, or, inside the box's rows, the own left part, the
partner's box part and the own right part, with ``memcpy``. :func:`soft_targets` writes unsmoothed
targets in one pass. The C source is ``csrc/cut_rows.c`` (package data); it is built with the
system C compiler (``cc``, ``gcc`` or ``clang``, or ``$CC``; ~0.3 s) into a cache folder the first
time it is needed and loaded with :mod:`ctypes`; no PyTorch headers are involved.

Safety:

- Inputs: every shape, dtype, device and layout the C code relies on is checked here; tensors whose
  bytes are not their values (negative or conjugate bit, quantized, not strided) and outputs that
  overlap their input or themselves are left to the eager kernels (:func:`cut_rows` returns None).
  The C code checks every partner, box (``0 <= x1 <= x2 <= W``, ``0 <= y1 <= y2 <= H``) and class
  id before writing anything and reports the first bad sample instead (ValueError naming
  ``params``). Written tensors get their autograd version counter bumped, as an eager in-place op
  does, so a tensor saved for backward and then cut in place makes ``backward()`` raise.
- The cache (``$CUTMIX_CACHE_DIR``, else ``$XDG_CACHE_HOME/cutmix/native`` or
  ``~/.cache/cutmix/native``) is
  treated as ssh treats ``~/.ssh``: created with mode 0700 whatever the umask, and refused when it
  is owned by another user or writable by group or others, or when a file in it is a symlink, not
  a regular file, owned by another user or writable by group or others. A library is built in a
  private temporary folder, made 0600, named after the sha256 of its bytes and moved into place
  atomically; a sidecar ``cut_rows_<tag>.sha256`` records that hash, and a library is only loaded
  (from the file descriptor that was checked and hashed) when its bytes match it and it reports the
  sha256 of the source it was built from. The tag hashes the source, the compiler (command, path,
  size, mtime) and the flags.

:func:`available` tells ``"auto"`` whether it may use them; it never raises (without a compiler,
with a refused cache or a library that does not load, ``"auto"`` keeps the eager kernels: same
results; a refused cache also gives one ``RuntimeWarning``; ``CUTMIX_NATIVE=0`` turns them off).
An explicit ``strategy="native"`` raises ``RuntimeError`` when the kernel cannot be loaded.

Example:
    >>> import torch
    >>> from cutmix.params import MixParams
    >>> x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.ones(2),
    ...               boxes=torch.tensor([[1, 0, 3, 1], [0, 0, 0, 0]]), size=(2, 3))
    >>> cut_rows(x, p.perm, p.boxes, torch.empty_like(x))[0, 0].tolist()
    [[0.0, 7.0, 8.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["available", "cut_rows", "load", "rows_layout", "soft_targets"]

_SOURCE_NAME = "csrc/cut_rows.c"
_FLAGS = ("-O2", "-shared", "-fPIC")
# A compiler that hangs (a stuck license check, a wrapper waiting for a lock) must not hang
# training: "auto" then keeps the eager kernels.
_BUILD_TIMEOUT_S = 120
# Anything bigger under the library's name is not a build of ours (ours is ~16 KiB).
_MAX_LIBRARY_BYTES = 64 << 20

_i64, _ptr = ctypes.c_int64, ctypes.c_void_p
# name: (argument types, result type) of every entry point of csrc/cut_rows.c.
_SIGNATURES: dict[str, tuple[list[type], type | None]] = {
    "cutmix_check": ([_i64, _i64, _i64, _ptr, _ptr], _i64),
    "cutmix_cut_rows": (
        [_ptr, _ptr, _i64, _i64, _i64, _i64, _i64, _ptr, _ptr, _ptr, _ptr, _i64],
        _i64,
    ),
    "cutmix_paste_bytes": ([_i64, _i64, _i64, _i64, _i64, _ptr, _ptr], _i64),
    "cutmix_paste_rows": ([_ptr, _ptr, _i64, _i64, _i64, _i64, _i64, _i64, _ptr, _ptr, _ptr], _i64),
    "cutmix_check_targets": ([_i64, _i64, _ptr, _ptr], _i64),
    "cutmix_targets": ([_ptr, _i64, _i64, _ptr, _ptr, _ptr], _i64),
}


class UnsafeCacheError(RuntimeError):
    """The cache folder or a file in it could have been written by someone else: never loaded."""


def _cache_dir() -> Path:
    """``$CUTMIX_CACHE_DIR``, else a ``native`` folder of its own in cutmix's cache folder (which
    the training tool also uses, created with the user's umask, e.g. group-writable)."""
    env = os.environ.get("CUTMIX_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "cutmix" / "native"


@functools.lru_cache(maxsize=1)
def _source() -> str:
    return importlib.resources.files(__package__).joinpath(_SOURCE_NAME).read_text("utf-8")


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    argv = shlex.split(cc) if cc else []
    if not argv:
        raise RuntimeError(
            "strategy: expected 'native' to find a C compiler (cc, gcc or clang, or $CC), got none. "
            "Use strategy='auto' instead."
        )
    return argv


def _tag(argv: list[str], source_sha: str) -> str:
    """What a build depends on: the source, the compiler (command and the binary it resolves to)
    and the flags."""
    exe = shutil.which(argv[0]) or argv[0]
    try:
        st = os.stat(exe)
        binary = f"{os.path.realpath(exe)}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        binary = exe  # the build then fails with a clear error
    key = "\0".join([source_sha, shlex.join(argv), binary, *_FLAGS])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _check_owner_mode(st: os.stat_result, path: Path, what: str) -> None:
    uid = _uid()
    if uid is None:  # not POSIX: no owners or mode bits to judge by
        return
    if st.st_uid != uid:
        raise UnsafeCacheError(
            f"refusing to load the C kernel: {what} {path} is owned by uid {st.st_uid}, not by "
            f"you (uid {uid}); remove it or set CUTMIX_CACHE_DIR to a private folder"
        )
    if st.st_mode & 0o022:
        raise UnsafeCacheError(
            f"refusing to load the C kernel: {what} {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):o}); chmod go-w it or set CUTMIX_CACHE_DIR to a private "
            "folder"
        )


def _private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700 (whatever the umask), or check that an existing one is a
    folder of ours that nobody else may write to."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
        created = True
    except FileExistsError:
        created = False
    st = os.stat(folder)  # a symlink to a folder is judged by the folder
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError(
            f"strategy: expected 'native' to find a folder at {folder}, got something else. "
            "Set CUTMIX_CACHE_DIR to a writable folder or use strategy='auto'."
        )
    if created and st.st_uid == _uid() and stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(folder, 0o700)  # e.g. a umask that took the owner's bits
        st = os.stat(folder)
    _check_owner_mode(st, folder, "the cache folder")


def _open_private(path: Path) -> int | None:
    """A read-only descriptor of ``path`` after checking that it is a regular file of ours that
    nobody else may write to; None when there is none."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not block the open
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeCacheError(
                f"refusing to load the C kernel: {path} is a symlink; remove it"
            ) from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeCacheError(
                f"refusing to load the C kernel: {path} is not a regular file; remove it"
            )
        _check_owner_mode(st, path, "the file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, limit: int) -> bytes | None:
    chunks, total = [], 0
    while chunk := os.read(fd, 1 << 20):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _library_name(tag: str, digest: str) -> str:
    return f"cut_rows_{tag}-{digest[:16]}.so"


def _load_built(folder: Path, tag: str, source_sha: str) -> ctypes.CDLL | None:
    """The library the sidecar names, loaded from the descriptor whose bytes were hashed, or None
    when there is none (or it is not what the sidecar says: a rebuild replaces it)."""
    fd = _open_private(folder / f"cut_rows_{tag}.sha256")
    if fd is None:
        return None
    try:
        recorded = (_read_fd(fd, 1024) or b"").decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not re.fullmatch("[0-9a-f]{64}", recorded):
        return None
    lib = folder / _library_name(tag, recorded)
    fd = _open_private(lib)
    if fd is None:
        return None
    keep = False
    try:
        data = _read_fd(fd, _MAX_LIBRARY_BYTES)
        if data is None or hashlib.sha256(data).hexdigest() != recorded:
            return None
        if os.path.isdir("/proc/self/fd"):
            # Load the very file that was checked, not whatever the path names by now. The
            # descriptor stays open for the life of the process: the loader knows the library by
            # this path, which must not name another file later.
            dll = ctypes.CDLL(f"/proc/self/fd/{fd}")
            keep = True
        else:
            dll = ctypes.CDLL(str(lib))
    finally:
        if not keep:
            os.close(fd)
    _bind(dll, lib, source_sha)
    return dll


def _bind(dll: ctypes.CDLL, lib: Path, source_sha: str) -> None:
    try:
        sha = dll.cutmix_source_sha
        sha.argtypes, sha.restype = [], ctypes.c_char_p
        if sha() != source_sha.encode():
            raise RuntimeError(
                f"strategy: expected 'native' to load a build of this cutmix's C source, got "
                f"{lib} built from another; remove it or use strategy='auto'."
            )
        for name, (args, res) in _SIGNATURES.items():
            fn = getattr(dll, name)
            fn.argtypes, fn.restype = args, res
    except AttributeError as exc:
        raise RuntimeError(
            f"strategy: expected 'native' to load the cutmix C kernel, got {lib} without it "
            f"({exc}); remove it or use strategy='auto'."
        ) from None


def _build(folder: Path, tag: str, argv: list[str], source: str, source_sha: str) -> None:
    """Compile into a private temporary folder, then move the library (0600, named after the
    sha256 of its bytes) and the sidecar recording that hash into place, each atomically."""
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))  # mode 0700
    try:
        src, built = tmp / "cut_rows.c", tmp / "cut_rows.so"
        src.write_text(source, encoding="utf-8")
        cmd = [*argv, *_FLAGS, f'-DCUTMIX_SOURCE_SHA="{source_sha}"', "-o", str(built), str(src)]
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"strategy: expected 'native' to build with {shlex.join(argv)} within "
                f"{_BUILD_TIMEOUT_S} s, got no result. Use strategy='auto' instead."
            ) from None
        if res.returncode != 0:
            first = (res.stderr.strip().splitlines() or [""])[0][:200]
            raise RuntimeError(
                f"strategy: expected 'native' to build with {shlex.join(argv)}, got exit code "
                f"{res.returncode}: {first}. Use strategy='auto' instead."
            )
        os.chmod(built, 0o600)  # the linker creates it 0777 & ~umask
        fd = _open_private(built)
        if fd is None:
            raise RuntimeError(
                f"strategy: expected 'native' to build with {shlex.join(argv)}, got no library"
            )
        try:
            data = _read_fd(fd, _MAX_LIBRARY_BYTES) or b""
        finally:
            os.close(fd)
        digest = hashlib.sha256(data).hexdigest()
        # Named after its content: concurrent builders write the same name only with the same
        # bytes, and the sidecar never names a library that is not there.
        os.replace(built, folder / _library_name(tag, digest))
        side = tmp / "sha256"
        fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")
        os.replace(side, folder / f"cut_rows_{tag}.sha256")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL:
    """Build (once per cache folder, source, compiler and flags) and load the kernel.

    ``RuntimeError`` when it can't (:class:`UnsafeCacheError` when the cache is refused).
    """
    folder = _cache_dir()
    try:
        argv = _compiler()
        source = _source()
        source_sha = hashlib.sha256(source.encode()).hexdigest()
        tag = _tag(argv, source_sha)
        _private_folder(folder)
        dll = _load_built(folder, tag, source_sha)
        if dll is None:
            _build(folder, tag, argv, source, source_sha)
            dll = _load_built(folder, tag, source_sha)
        if dll is None:
            raise RuntimeError(
                f"strategy: expected 'native' to load the library just built in {folder}, got "
                "none that matches its recorded sha256. Use strategy='auto' instead."
            )
        return dll
    except (
        OSError,
        ValueError,
    ) as exc:  # an unwritable folder, no compiler binary, a NUL in a path
        raise RuntimeError(
            f"strategy: expected 'native' to build and load the C kernel in {folder}, got "
            f"{type(exc).__name__}: {exc}. Set CUTMIX_CACHE_DIR to a writable folder or use "
            "strategy='auto'."
        ) from exc


def available() -> bool:
    """Whether ``"auto"`` may use the kernel: it builds and loads, and ``CUTMIX_NATIVE`` isn't 0.

    Never raises: without a C compiler or a usable cache folder ``"auto"`` keeps the eager
    kernels (same results, slower); a cache refused as unsafe also warns, once. The outcome is
    remembered for the process.
    """
    try:
        if os.environ.get("CUTMIX_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
            return False
        return _loads()
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def _loads() -> bool:
    try:
        load()
    except UnsafeCacheError as exc:
        warnings.warn(f"cutmix: {exc}; using the eager kernels", RuntimeWarning, stacklevel=4)
        return False
    except Exception:
        return False
    return True


def rows_layout(t: Tensor) -> tuple[int, int, list[int]] | None:
    """``(planes, pixel_bytes, byte strides of (N, plane, row))`` when rows are contiguous, else None.

    NCHW-like (W innermost): planes are the C channels, a pixel is one element. Channels-last
    (C innermost, then W): one plane, a pixel is C elements.
    """
    c, w = t.shape[1], t.shape[3]
    es = t.element_size()
    s = t.stride()
    if s[3] == 1 or w == 1:
        return c, es, [s[0] * es, s[1] * es, s[2] * es]
    if s[1] == 1 and s[3] == c:
        return 1, c * es, [s[0] * es, 0, s[2] * es]
    return None


# A new tensor this big gets new pages from the allocator every time (glibc's largest mmap
# threshold is 32 MiB); the kernel then copies in short pieces (see copy_block in the C source).
_FRESH_PAGES_MIN_BYTES = 32 << 20
_PIECE_BYTES = 2048


def _raw(t: Tensor) -> bool:
    """A CPU tensor whose bytes are where ``data_ptr()`` says: not meta, not quantized or sparse,
    not a fake or functorch tensor without storage, and not one autograd must see written (the
    eager kernels then raise as usual)."""
    if not (
        isinstance(t, Tensor)
        and type(t).__torch_dispatch__ is _PLAIN_DISPATCH
        and t.is_cpu
        and t.layout is torch.strided
        and not t.is_quantized
        and t.dim() == 4
        and not (t.requires_grad and torch.is_grad_enabled())
    ):
        return False
    try:
        return t.data_ptr() != 0 or t.numel() == 0
    except RuntimeError:  # e.g. a tensor batched by vmap: no storage
        return False


_PLAIN_DISPATCH = torch._C._disabled_torch_dispatch_impl


def _span(t: Tensor) -> tuple[int, int]:
    """The bytes ``[start, end)`` a non-empty tensor's elements lie in."""
    start = t.data_ptr()
    last = sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    return start, start + (last + 1) * t.element_size()


def _overlap(a: Tensor, b: Tensor) -> bool:
    same_storage = torch._C._is_alias_of(a, b)  # type: ignore[attr-defined]
    if not same_storage or a.numel() == 0 or b.numel() == 0:
        return False  # different storages never overlap
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1


def _describe(t: object) -> str:
    if not isinstance(t, Tensor):
        return type(t).__name__
    return f"{t.dtype} {tuple(t.shape)} on {t.device}"


def _ints(t: object, shape: tuple[int, ...], what: str, name: str = "params") -> Tensor:
    """``t`` as an int64 contiguous CPU tensor of values (the C code snapshots it before checking
    it), after checking it is a CPU integer tensor of ``shape``."""
    if (
        isinstance(t, Tensor)
        and t.dtype is torch.int64
        and t.is_cpu
        and t.layout is torch.strided
        and t.shape == shape
        and t.is_contiguous()
        and not t.is_neg()
    ):
        return t  # the common case, without a copy
    if (
        not isinstance(t, Tensor)
        or not t.is_cpu
        or t.layout is not torch.strided
        or t.is_quantized
        or t.dtype is torch.bool
        or t.is_floating_point()
        or t.is_complex()
        or tuple(t.shape) != shape
    ):
        raise ValueError(
            f"{name}: expected {what} as an integer CPU tensor of shape {shape}, got {_describe(t)}"
        )
    return t.detach().resolve_neg().to(torch.int64).contiguous()


def cut_rows(
    images: Tensor, perm: Tensor, boxes: Tensor, out: Tensor | None, new_out: bool = False
) -> Tensor | None:
    """Write CutMix of ``images`` into ``out`` (same shape and dtype), or in place when ``out`` is
    None; returns what was written.

    ``new_out``: ``out`` was just allocated (its pages may be untouched). In place, every sample's
    box is first saved from its partner (as it was before any write), then pasted: cycles and
    partners read by several samples come out right, and only box bytes move.

    ValueError naming ``params`` when ``perm`` is not ``(N,)`` or ``boxes`` not ``(N, 4)`` integer
    CPU tensors, or a partner or box is out of range (nothing written), and naming ``out`` when
    ``out`` is not like ``images``. Returns None, writing nothing, where the eager kernels must do
    it: a layout without contiguous rows or two different layouts (:func:`rows_layout`), a tensor
    the C code cannot or must not write (:func:`_raw`), an ``out`` whose bytes are not its values
    (negative or conjugate bit), an output overlapping ``images`` or itself, an inference tensor
    outside inference mode. ``images`` with the negative or conjugate bit are resolved (a copy)
    before a cut into ``out``; in place their bytes are moved as they are, which is right.
    Single-threaded.
    """
    if not isinstance(images, Tensor) or images.dim() != 4:
        raise ValueError(f"images: expected an (N, C, H, W) tensor, got {_describe(images)}")
    n, _, h, w = images.shape
    perm_c = _ints(perm, (n,), "perm")
    boxes_c = _ints(boxes, (n, 4), "boxes")
    if out is not None and (
        out.shape != images.shape or out.dtype != images.dtype or out.device != images.device
    ):
        raise ValueError(f"out: expected a tensor like images, got {_describe(out)}")
    target = images if out is None else out
    if not (_raw(images) and _raw(target)):
        return None
    if out is not None and (out.is_neg() or out.is_conj()):
        return None  # its bytes are not its values
    if torch._debug_has_internal_overlap(target) == 1 or (
        out is not None and _overlap(images, out)
    ):
        return None  # the eager kernels raise as PyTorch does, or handle it
    if target.is_inference() and not torch.is_inference_mode_enabled():
        return None  # PyTorch refuses to write an inference tensor outside inference mode
    if out is not None and (images.is_neg() or images.is_conj()):
        # Bytes copied as they are would flip signs (or conjugate). In place they are right: the
        # partner's bytes and the own share the bit.
        images = images.resolve_neg().resolve_conj()
    x_layout = rows_layout(images)
    o_layout = x_layout if out is None else rows_layout(out)
    if x_layout is None or o_layout is None or x_layout[:2] != o_layout[:2]:
        return None
    planes, pb, xs = x_layout
    xs_c = (ctypes.c_int64 * 3)(*xs)
    dll = load()
    if out is None:
        size = dll.cutmix_paste_bytes(n, h, w, planes, pb, perm_c.data_ptr(), boxes_c.data_ptr())
        bad = -size if size < 0 else 0
        if not bad:
            save = torch.empty(max(size, 1), dtype=torch.uint8)
            bad = dll.cutmix_paste_rows(
                images.data_ptr(),
                save.data_ptr(),
                save.numel(),
                n,
                h,
                w,
                planes,
                pb,
                xs_c,
                perm_c.data_ptr(),
                boxes_c.data_ptr(),
            )
    else:
        os_c = (ctypes.c_int64 * 3)(*o_layout[2])
        nbytes = images.numel() * images.element_size()
        piece = _PIECE_BYTES if new_out and nbytes >= _FRESH_PAGES_MIN_BYTES else 0
        bad = dll.cutmix_cut_rows(
            images.data_ptr(),
            out.data_ptr(),
            n,
            planes,
            h,
            w,
            pb,
            xs_c,
            os_c,
            perm_c.data_ptr(),
            boxes_c.data_ptr(),
            piece,
        )
    if bad < 0:
        raise MemoryError("cutmix: the C kernel could not copy the partners and boxes")
    if bad:
        i = bad - 1
        raise ValueError(
            f"params: expected partners in [0, {n}) and boxes with 0 <= x1 <= x2 <= {w} and "
            f"0 <= y1 <= y2 <= {h} (inside (H, W) = ({h}, {w})), got partner {int(perm_c[i])} "
            f"and box {boxes_c[i].tolist()} for sample {i}"
        )
    # Written behind autograd's back: bump the version as an in-place op would, so a tensor saved
    # for backward and changed here makes backward() raise instead of using the new values.
    torch.autograd.graph.increment_version(target)
    return target


def soft_targets(labels: Tensor, perm: Tensor, lam: Tensor, out: Tensor) -> Tensor:
    """Unsmoothed CutMix targets of class ids into a float32 ``(N, C)`` CPU ``out``.

    One pass over ``out`` (a row memset, then two writes) instead of PyTorch's fill and two
    scatters: bitwise the same values. Single-threaded. ``labels`` are ``(N,)`` integer class
    ids, ``perm`` ``(N,)`` integer partners and ``lam`` ``(N,)`` floats, all on the CPU
    (ValueError naming ``labels`` or ``params`` otherwise, and for ids out of range, checked before
    writing). An ``out`` that is not contiguous (or a negative view) is written through a copy.

    Example:
        >>> out = torch.empty(2, 3)
        >>> soft_targets(torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([0.75, 1.0]),
        ...              out).tolist()
        [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0]]
    """
    if (
        not isinstance(out, Tensor)
        or out.dim() != 2
        or out.dtype is not torch.float32
        or not out.is_cpu
        or out.layout is not torch.strided
    ):
        raise ValueError(f"out: expected a float32 (N, C) CPU tensor, got {_describe(out)}")
    n, c = out.shape
    y = _ints(labels, (n,), "class ids", "labels")
    perm_c = _ints(perm, (n,), "perm")
    if (
        not isinstance(lam, Tensor)
        or not lam.is_cpu
        or lam.layout is not torch.strided
        or not lam.is_floating_point()
        or lam.shape != (n,)
    ):
        raise ValueError(
            f"params: expected lam as a float CPU tensor of shape {(n,)}, got {_describe(lam)}"
        )
    lam_c = lam
    if lam.dtype is not torch.float32 or not lam.is_contiguous() or lam.is_neg():
        lam_c = lam.detach().resolve_neg().to(torch.float32).contiguous()
    # Anything but a plain contiguous float32 buffer is written through a copy (copy_ also raises
    # as the eager kernel would for a leaf that requires grad).
    direct = (
        type(out).__torch_dispatch__ is _PLAIN_DISPATCH
        and out.is_contiguous()
        and not out.is_neg()
        and not out.is_conj()
        and not (out.requires_grad and torch.is_grad_enabled())
        and not (out.is_inference() and not torch.is_inference_mode_enabled())
        and (out.numel() == 0 or out.data_ptr() != 0)
    )
    dest = out if direct else torch.empty(n, c, dtype=torch.float32)
    bad = load().cutmix_targets(
        dest.data_ptr(), n, c, y.data_ptr(), perm_c.data_ptr(), lam_c.data_ptr()
    )
    if bad < 0:
        raise MemoryError("cutmix: the C kernel could not copy the partners and class ids")
    if bad:
        i = bad - 1
        raise ValueError(
            f"params: expected partners in [0, {n}) and labels: class ids in [0, {c}), got "
            f"partner {int(perm_c[i])} and class id {int(y[i])} for sample {i}"
        )
    if direct:
        torch.autograd.graph.increment_version(out)
        return out
    return out.copy_(dest)
