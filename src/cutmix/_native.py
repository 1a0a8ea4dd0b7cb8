"""The CPU kernels ``"auto"`` uses: per-sample row copies and soft targets in C, built on first use.

PyTorch's eager ops either touch every byte several times (the masked select) or pay Python and
per-slice dispatch for every box (the slice loop). :func:`cut_rows` writes each output byte once:
per sample and row it copies the own row, or, inside the box's rows, the own left part, the
partner's box part and the own right part, with ``memcpy``. :func:`soft_targets` writes unsmoothed
targets in one pass. Both are built with the system C compiler (``cc``, ``gcc`` or ``clang``, or
``$CC``; ~0.3 s) into a cache folder the first time they are needed and loaded with
:mod:`ctypes`; no PyTorch headers are involved. They validate every partner, box and class id
themselves, so bad input raises instead of touching memory outside the tensors. Both are
single-threaded. :func:`available` tells ``"auto"`` whether it may use them (it never raises;
``CUTMIX_NATIVE=0`` turns them off); an explicit ``strategy="native"`` raises ``RuntimeError``
when the kernel cannot be built.

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
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["available", "cut_rows", "load", "rows_layout", "soft_targets"]

_SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* Returns 0, or 1 + i for the first sample whose partner or box is out of range. */
int64_t cutmix_check(int64_t n, int64_t h, int64_t w, const int64_t *perm, const int64_t *boxes) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t *b = boxes + 4 * i;
        if (perm[i] < 0 || perm[i] >= n || b[0] < 0 || b[1] < 0 || b[2] > w || b[3] > h)
            return 1 + i;
    }
    return 0;
}

/* In place. Bytes needed to save what every sample reads from its partner (its box there). */
int64_t cutmix_paste_bytes(int64_t n, int64_t planes, int64_t pb, const int64_t *perm,
                           const int64_t *boxes) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *b = boxes + 4 * i;
        if (b[2] > b[0] && b[3] > b[1] && perm[i] != i)
            total += planes * (b[3] - b[1]) * (b[2] - b[0]) * pb;
    }
    return total;
}

/* In place, on a checked batch: first copy every partner's box rows, as they are before any
   write, into `save` (back to back in sample order), then paste them into the own boxes. Reads of
   samples that are written too (cycles) therefore see the original pixels. */
void cutmix_paste_rows(char *x, char *save, int64_t n, int64_t planes, int64_t pb,
                       const int64_t *xs, const int64_t *perm, const int64_t *boxes) {
    for (int pass = 0; pass < 2; pass++) {
        char *s = save;
        for (int64_t i = 0; i < n; i++) {
            const int64_t *b = boxes + 4 * i;
            const int64_t j = perm[i], len = (b[2] - b[0]) * pb;
            if (!(b[2] > b[0] && b[3] > b[1] && j != i)) continue;
            for (int64_t k = 0; k < planes; k++) {
                for (int64_t y = b[1]; y < b[3]; y++, s += len) {
                    const int64_t o = k * xs[1] + y * xs[2] + b[0] * pb;
                    if (pass == 0) memcpy(s, x + j * xs[0] + o, (size_t)len);
                    else memcpy(x + i * xs[0] + o, s, (size_t)len);
                }
            }
        }
    }
}

/* Returns 0, or 1 + i for the first sample whose partner or class id is out of range. */
int64_t cutmix_check_targets(int64_t n, int64_t c, const int64_t *y, const int64_t *perm) {
    for (int64_t i = 0; i < n; i++)
        if (perm[i] < 0 || perm[i] >= n || y[i] < 0 || y[i] >= c) return 1 + i;
    return 0;
}

/* Soft targets (N, C) float32, contiguous, of a checked batch: row i is lam[i] at y[i], plus
   1 - lam[i] at y[perm[i]], zeros elsewhere; the same float32 operations as zero_, scatter_ and
   scatter_add_. */
void cutmix_targets(float *out, int64_t n, int64_t c, const int64_t *y, const int64_t *perm,
                    const float *lam) {
    for (int64_t i = 0; i < n; i++) {
        float *row = out + i * c;
        memset(row, 0, (size_t)c * sizeof(float));
        row[y[i]] = lam[i];
        row[y[perm[i]]] += 1.0f - lam[i];
    }
}

/* memcpy, in pieces of `piece` bytes when piece > 0 and n >= 8 pieces: glibc copies long blocks
   with `rep movsb`, which is slower than short copies when the destination pages are new
   (measured: 1.14x against 1.02x a clone of a 74 MiB batch), and faster when they are not. */
static void copy_block(char *d, const char *s, int64_t n, int64_t piece) {
    if (piece > 0 && n >= 8 * piece) {
        for (; n > piece; n -= piece, d += piece, s += piece) memcpy(d, s, (size_t)piece);
    }
    memcpy(d, s, (size_t)n);
}

/* Out-of-place CutMix on rows of a checked batch. A row is `w` pixels of `pb` bytes, contiguous.
   Row (i, k, y) starts at base + i*s[0] + k*s[1] + y*s[2] (byte strides; k runs over `planes`). */
void cutmix_cut_rows(const char *x, char *out, int64_t n, int64_t planes, int64_t h, int64_t w,
                     int64_t pb, const int64_t *xs, const int64_t *os, const int64_t *perm,
                     const int64_t *boxes, int64_t piece) {
    const int64_t row = w * pb;
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = perm[i];
        const int64_t x1 = boxes[4 * i], y1 = boxes[4 * i + 1];
        const int64_t x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
        const int has = x2 > x1 && y2 > y1 && j != i;
        for (int64_t k = 0; k < planes; k++) {
            const char *src = x + i * xs[0] + k * xs[1];
            const char *par = x + j * xs[0] + k * xs[1];
            char *dst = out + i * os[0] + k * os[1];
            if (xs[2] == row && os[2] == row) {
                /* Rows of a plane are back to back: copy the rows outside the box in two blocks. */
                int64_t top = has ? y1 : h, bottom = has ? y2 : h;
                copy_block(dst, src, top * row, piece);
                copy_block(dst + bottom * row, src + bottom * row, (h - bottom) * row, piece);
                for (int64_t y = top; y < bottom; y++) {
                    const int64_t o = y * row;
                    memcpy(dst + o, src + o, (size_t)(x1 * pb));
                    memcpy(dst + o + x1 * pb, par + o + x1 * pb, (size_t)((x2 - x1) * pb));
                    memcpy(dst + o + x2 * pb, src + o + x2 * pb, (size_t)((w - x2) * pb));
                }
                continue;
            }
            for (int64_t y = 0; y < h; y++) {
                const char *s = src + y * xs[2];
                char *d = dst + y * os[2];
                if (!has || y < y1 || y >= y2) {
                    memcpy(d, s, (size_t)row);
                } else {
                    const char *p = par + y * xs[2];
                    memcpy(d, s, (size_t)(x1 * pb));
                    memcpy(d + x1 * pb, p + x1 * pb, (size_t)((x2 - x1) * pb));
                    memcpy(d + x2 * pb, s + x2 * pb, (size_t)((w - x2) * pb));
                }
            }
        }
    }
}
"""


# A compiler that hangs (a stuck license check, a wrapper waiting for a lock) must not hang
# training: "auto" then keeps the eager kernels.
_BUILD_TIMEOUT_S = 120


def _cache_dir() -> Path:
    base = os.environ.get("CUTMIX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "cutmix"
    )
    return Path(base)


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL:
    """Build (once per cache folder and compiler) and load the kernel; RuntimeError if it can't."""
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if not cc:
        raise RuntimeError(
            "strategy: expected 'native' to find a C compiler (cc, gcc or clang, or $CC), got none. "
            "Use strategy='auto' instead."
        )
    tag = hashlib.sha256((_SOURCE + cc).encode()).hexdigest()[:16]
    folder = _cache_dir()
    lib = folder / f"cut_rows_{tag}.so"
    try:
        if not lib.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                src, built = Path(tmp) / "cut_rows.c", Path(tmp) / "cut_rows.so"
                src.write_text(_SOURCE)
                cmd = [*shlex.split(cc), "-O2", "-shared", "-fPIC", "-o", str(built), str(src)]
                try:
                    res = subprocess.run(
                        cmd, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S
                    )
                except subprocess.TimeoutExpired:
                    raise RuntimeError(
                        f"strategy: expected 'native' to build with {cc} within "
                        f"{_BUILD_TIMEOUT_S} s, got no result. Use strategy='auto' instead."
                    ) from None
                if res.returncode != 0:
                    first = (res.stderr.strip().splitlines() or [""])[0][:200]
                    raise RuntimeError(
                        f"strategy: expected 'native' to build with {cc}, got exit code "
                        f"{res.returncode}: {first}. Use strategy='auto' instead."
                    )
                os.replace(built, lib)  # atomic: concurrent builders never load half a file
        dll = ctypes.CDLL(str(lib))
    except OSError as exc:  # an unwritable cache folder, a missing compiler binary, a bad file
        raise RuntimeError(
            f"strategy: expected 'native' to build and load {lib}, got {type(exc).__name__}: "
            f"{exc}. Set CUTMIX_CACHE_DIR to a writable folder or use strategy='auto'."
        ) from exc
    i64, p = ctypes.c_int64, ctypes.c_void_p
    dll.cutmix_check.argtypes = [i64, i64, i64, p, p]
    dll.cutmix_check.restype = i64
    dll.cutmix_cut_rows.argtypes = [p, p, i64, i64, i64, i64, i64, p, p, p, p, i64]
    dll.cutmix_cut_rows.restype = None
    dll.cutmix_paste_bytes.argtypes = [i64, i64, i64, p, p]
    dll.cutmix_paste_bytes.restype = i64
    dll.cutmix_paste_rows.argtypes = [p, p, i64, i64, i64, p, p, p]
    dll.cutmix_paste_rows.restype = None
    dll.cutmix_check_targets.argtypes = [i64, i64, p, p]
    dll.cutmix_check_targets.restype = i64
    dll.cutmix_targets.argtypes = [p, i64, i64, p, p, p]
    dll.cutmix_targets.restype = None
    return dll


def available() -> bool:
    """Whether ``"auto"`` may use the kernel: it builds and loads, and ``CUTMIX_NATIVE`` isn't 0.

    Never raises: without a C compiler or a writable cache folder ``"auto"`` keeps the eager
    kernels (same results, slower). The outcome is remembered for the process.
    """
    if os.environ.get("CUTMIX_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _loads()


@functools.lru_cache(maxsize=1)
def _loads() -> bool:
    try:
        load()
    except RuntimeError:
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
# threshold is 32 MiB); the kernel then copies in short pieces (see copy_block in _SOURCE).
_FRESH_PAGES_MIN_BYTES = 32 << 20
_PIECE_BYTES = 2048


def cut_rows(
    images: Tensor, perm: Tensor, boxes: Tensor, out: Tensor | None, new_out: bool = False
) -> Tensor | None:
    """Write CutMix of ``images`` into ``out`` (same shape and dtype), or in place when ``out`` is
    None; returns what was written.

    ``new_out``: ``out`` was just allocated (its pages may be untouched). In place, every sample's
    box is first saved from its partner (as it was before any write), then pasted: cycles and
    partners read by several samples come out right, and only box bytes move.

    Returns None, writing nothing, when a layout has no contiguous rows or the two layouts differ
    (:func:`rows_layout`). Checks partners and boxes (ValueError naming ``params``).
    Single-threaded (see ``_pick_strategy`` for what ``"auto"`` does with more threads).
    """
    x_layout = rows_layout(images)
    o_layout = x_layout if out is None else rows_layout(out)
    if x_layout is None or o_layout is None or x_layout[:2] != o_layout[:2]:
        return None
    planes, pb, xs = x_layout
    n, _, h, w = images.shape
    perm_c = perm.to(torch.int64).contiguous()
    boxes_c = boxes.to(torch.int64).contiguous()
    dll = load()
    bad = dll.cutmix_check(n, h, w, perm_c.data_ptr(), boxes_c.data_ptr())
    if bad:
        i = bad - 1
        raise ValueError(
            f"params: expected partners in [0, {n}) and boxes inside (H, W) = ({h}, {w}), got "
            f"partner {int(perm_c[i])} and box {boxes_c[i].tolist()} for sample {i}"
        )
    xs_c = (ctypes.c_int64 * 3)(*xs)
    if out is None:
        size = dll.cutmix_paste_bytes(n, planes, pb, perm_c.data_ptr(), boxes_c.data_ptr())
        save = torch.empty(max(size, 1), dtype=torch.uint8)
        dll.cutmix_paste_rows(
            images.data_ptr(),
            save.data_ptr(),
            n,
            planes,
            pb,
            xs_c,
            perm_c.data_ptr(),
            boxes_c.data_ptr(),
        )
        return images
    os_c = (ctypes.c_int64 * 3)(*o_layout[2])
    nbytes = images.numel() * images.element_size()
    piece = _PIECE_BYTES if new_out and nbytes >= _FRESH_PAGES_MIN_BYTES else 0
    dll.cutmix_cut_rows(
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
    return out


def soft_targets(labels: Tensor, perm: Tensor, lam: Tensor, out: Tensor) -> Tensor:
    """Unsmoothed CutMix targets of class ids into a contiguous float32 ``(N, C)`` ``out``.

    One pass over ``out`` (a row memset, then two writes) instead of PyTorch's fill and two
    scatters: bitwise the same values. Single-threaded. ValueError naming ``params`` or ``labels`` for ids out of
    range (checked before writing).

    Example:
        >>> out = torch.empty(2, 3)
        >>> soft_targets(torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([0.75, 1.0]),
        ...              out).tolist()
        [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0]]
    """
    n, c = out.shape
    y = labels.to(torch.int64).contiguous()
    perm_c = perm.to(torch.int64).contiguous()
    lam_c = lam.to(torch.float32).contiguous()
    dll = load()
    bad = dll.cutmix_check_targets(n, c, y.data_ptr(), perm_c.data_ptr())
    if bad:
        i = bad - 1
        raise ValueError(
            f"params: expected partners in [0, {n}) and labels: class ids in [0, {c}), got "
            f"partner {int(perm_c[i])} and class id {int(y[i])} for sample {i}"
        )
    dll.cutmix_targets(out.data_ptr(), n, c, y.data_ptr(), perm_c.data_ptr(), lam_c.data_ptr())
    return out
