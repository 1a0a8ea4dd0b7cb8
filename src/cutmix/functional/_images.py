"""Pure kernels: apply :class:`~cutmix.MixParams` to images and labels.

Nothing here draws random numbers; the same params always give the same tensors. Inputs are never
modified unless ``inplace=True``. Images may be any float dtype or uint8, contiguous or
channels_last, on any device; outputs keep the dtype and memory format.

Example:
    >>> import torch, cutmix
    >>> from cutmix.functional import cut_images
    >>> x = torch.arange(2 * 1 * 2 * 2, dtype=torch.float32).view(2, 1, 2, 2)
    >>> p = cutmix.MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
    ...                      boxes=torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]]), size=(2, 2))
    >>> cut_images(x, p)[0, 0].tolist()
    [[4.0, 1.0], [2.0, 3.0]]
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor

from cutmix import _native
from cutmix import _validate as V
from cutmix.params import MixParams, check_params

Strategy = Literal["auto", "loop", "masked", "native", "compiled"]
# The public ``strategy=`` values; the property tests force each of these in turn. "native" is the
# C kernel (cutmix._native), built once with the system C compiler; without one, "auto" keeps to
# the eager kernels and a forced "native" raises.
STRATEGIES: tuple[str, ...] = ("auto", "loop", "masked", "native")
# Accepted for old code, run as "auto" with a DeprecationWarning: "compiled" was the masked kernel
# through torch.compile; users compile their own step instead (cut_images captures whole).
DEPRECATED_STRATEGIES: tuple[str, ...] = ("compiled",)
OPT_IN_STRATEGIES = DEPRECATED_STRATEGIES  # the old name, still imported by cutmix.transforms
# What _route returns: the kernels, each bitwise equal to the others (tests/test_strategies.py).
Kernel = Literal["copy_paste", "c_rows", "c_paste", "loop", "select", "where"]

__all__ = [
    "OPT_IN_STRATEGIES",
    "STRATEGIES",
    "apply_images",
    "box_mask",
    "cut_images",
    "mix_images",
    "mix_labels",
    "one_hot",
]


def box_mask(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boolean ``(N, 1, H, W)`` mask, true inside each sample's half-open box ``x1, y1, x2, y2``.

    Example:
        >>> box_mask(torch.tensor([[1, 0, 2, 1]]), (2, 3)).int()[0, 0].tolist()
        [[0, 1, 0], [0, 0, 0]]
    """
    h, w = size
    rows = torch.arange(h, device=boxes.device)
    cols = torch.arange(w, device=boxes.device)
    in_y = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])
    in_x = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])
    return (in_y[:, None, :, None] & in_x[:, None, None, :]).contiguous()


def _check_call(images: Tensor, params: MixParams, inplace: bool, out: Tensor | None) -> Tensor:
    """Every check of an image entry point, once; returns the images to read (a lazily negated
    view, refused for writing, is read through ``resolve_neg``: the C kernel copies raw bytes)."""
    V.check_images(images)
    _warn_channels_last_shape(images)
    check_params(params, images)
    params._check_values((int(images.shape[-2]), int(images.shape[-1])))
    return _check_images(images, inplace, out, checked=True)


def _check_images(
    images: Tensor, inplace: bool, out: Tensor | None, *, checked: bool = False
) -> Tensor:
    """The image half of :func:`_check_call`, for callers whose params are drawn by the library."""
    if not checked:
        V.check_images(images)
        _warn_channels_last_shape(images)
    V.check_inplace_out(images, inplace, out)
    if V._compiling():  # no view bits inside a graph (is_neg() does not trace)
        return images
    return images.resolve_neg() if images.is_neg() else images


def _warn_channels_last_shape(images: Tensor) -> None:
    """An (N, H, W, C) batch (numpy, DALI, albumentations before a permute) would be mixed along
    the wrong axes: warn when the last dim looks like channels (1, 3 or 4) and dims 1 and 2 do
    not (at least 5, like a height and a width). A feature map such as (N, 512, 4, 4) (feature-level
    mixing in a small network) has dim 2 of 4 and does not warn."""
    if images.shape[-1] in (1, 3, 4) and images.shape[1] > 4 and images.shape[2] > 4:
        warnings.warn(
            f"images: got shape {tuple(images.shape)}, which looks like (N, H, W, C); cutmix "
            "mixes (N, C, H, W) batches (use images.permute(0, 3, 1, 2))",
            UserWarning,
            stacklevel=4,
        )


def _grad_out(out: Tensor | None) -> bool:
    """An ``out=`` buffer with grad history (written by a differentiable call before): the kernels'
    raw and ``out=`` writes are not recorded, so the result is computed, then copied in."""
    return out is not None and out.requires_grad and torch.is_grad_enabled()


def _needs_grad(images: Tensor) -> bool:
    """Autograd must see the result (feature-level mixing): no ``out=`` writes, no slice loop."""
    return images.requires_grad and torch.is_grad_enabled()


def _route(images: Tensor, strategy: str, inplace: bool, out: Tensor | None) -> Kernel:
    """The kernel :func:`cut_images` runs: the first row of this table that matches.

    "C" means the C kernels build and load (``cutmix._native.available()``: a C compiler, and
    ``CUTMIX_NATIVE`` is not 0). "rows" means every image row is contiguous in ``images`` and in
    ``out`` alike (NCHW with W innermost, or channels-last; ``_native.rows_layout``). "sample" is
    the bytes (or elements) of one image. Only metadata is read: no host sync.

    ====  ==============  ================================================================  =======
    row   strategy        input                                                             kernel
    ====  ==============  ================================================================  =======
    1     any             needs grad (``requires_grad`` and grad mode on)                   where
    2     any             under ``torch.compile``                                           where
    3     loop, native    not on CPU                                                        error
    4     auto, masked    not on CPU (CUDA, meta, ...)                                      where
    5     masked          CPU, W or C innermost                                             select
    6     masked          CPU, other layouts                                                where
    7     loop            CPU                                                               loop
    8     native          CPU, rows, out of place or ``out=``                               c_rows
    9     native          CPU, rows, in place                                               c_paste
    10    native          CPU, other layouts                                                loop
    11    auto            CPU, out of place or ``out=``, sample of 256 KiB+                 copy_paste
    12    auto            CPU, C, rows, out of place or ``out=``                            c_rows
    13    auto            CPU, C, rows, in place, sample under 192 KiB                      c_paste
    14    auto            CPU, sample of 12,288+ elements (uint8: 43,200+), or neither W    loop
                          nor C innermost
    15    auto            CPU, otherwise                                                    select
    ====  ==============  ================================================================  =======

    The kernels (all bitwise equal): ``copy_paste`` copies the whole batch in one op (``clone()``
    or ``out.copy_``, with the caller's threads: a single parallel op waits at one barrier, and
    faulting fresh pages in is what a large out-of-place call spends most of its time on), then
    pastes each box from its partner with one thread; ``c_rows`` writes each output byte once with C row copies;
    ``c_paste`` saves the partners' box rows, then pastes them (only box bytes move); ``loop``
    copies each sample and pastes its box slice (one ``torch._foreach_copy_``; in place in
    read-before-write order); ``select`` is ``x + (x[perm] - x) · mask`` on integer views of the
    bytes in cache-sized chunks (one box for the whole batch: a copy and one gather); ``where`` is
    ``torch.where(mask, x[perm], x)`` (any device, differentiable, fuses under ``torch.compile``).

    Every CPU kernel runs with one intra-op thread (:func:`_one_thread`). Split into ~2N small
    copies, a parallel loop waits at an OpenMP barrier after every copy for any thread the OS has
    descheduled: with other processes busy on the cores (DataLoader workers decoding, neighbours on
    a shared host) that made ``"auto"`` 20x slower than ``clone()``. Single-threaded, every kernel
    runs at memory speed loaded or not, and the C kernels (single-threaded anyway) win out of
    place at every measured size. In place, pasting the saved boxes in C beats the loop for small
    samples only; the loop saves one patch per partner cycle. Without C, the slice loop pays
    ~3-5 µs of Python per sample and wins for large samples, the select for small ones. Measured
    by ``python -m benchmarks.run --load`` (quiet and loaded tables in benchmarks/RESULTS.md).
    """
    if strategy in DEPRECATED_STRATEGIES:
        warnings.warn(
            f"strategy={strategy!r} is deprecated and runs as 'auto'; to fuse the kernel, "
            "torch.compile your own step (cut_images is captured whole with fullgraph=True)",
            DeprecationWarning,
            stacklevel=3,
        )
        strategy = "auto"
    V.check_choice(strategy, STRATEGIES, "strategy")
    if _needs_grad(images) or torch.compiler.is_compiling():
        return "where"  # rows 1-2: the only differentiable, traceable kernel
    on_cpu = images.device.type == "cpu"
    if not on_cpu:
        if strategy in ("loop", "native"):
            V.fail("strategy", f"'{strategy}' only on CPU tensors in eager mode", images.device)
        return "where"  # rows 3-4
    if strategy == "masked":
        return "select" if _select_layout(images) else "where"  # rows 5-6
    if strategy == "loop":
        return "loop"  # row 7
    rows = _rows_layout(images, out)
    if strategy == "native":
        if not rows:
            return "loop"  # row 10
        return "c_paste" if inplace else "c_rows"  # rows 8-9
    sample_bytes = images[0].numel() * images.element_size()
    if not inplace and sample_bytes >= _COPY_PASTE_MIN_SAMPLE_BYTES:
        return "copy_paste"  # row 11
    if rows and _native.available():
        if not inplace:
            return "c_rows"  # row 12
        if sample_bytes < _C_PASTE_MAX_SAMPLE_BYTES:
            return "c_paste"  # row 13
    limit = _LOOP_MIN_SAMPLE_NUMEL_U8 if images.element_size() == 1 else _LOOP_MIN_SAMPLE_NUMEL
    if images[0].numel() >= limit or not _select_layout(images):
        return "loop"  # row 14
    return "select"  # row 15


# Row 11: out of place, a large batch is bound by the fresh pages the output faults in; one
# parallel clone() faults them on every thread, and the box paste after it is a fraction of the
# bytes (benchmarks/run.py --load: quiet and loaded tables in benchmarks/RESULTS.md). At uint8
# 3x224² (147 KiB a sample) the single-threaded C kernel was still faster, loaded and quiet.
_COPY_PASTE_MIN_SAMPLE_BYTES = 256 << 10
# Row 13: in place, the C paste moves box bytes twice (save, paste); the loop saves one patch per
# cycle and wins from f32 3x112² (a tie there) with one thread (benchmarks/threads.py).
_C_PASTE_MAX_SAMPLE_BYTES = 192 << 10
# Row 14: the slice loop's ~3-5 µs of Python per sample against the select's ~2.5-3.5x copy:
# crossovers at f32 ~3x64² and uint8 between 3x112² and 3x128² (benchmarks/threads.py).
_LOOP_MIN_SAMPLE_NUMEL = 12288
_LOOP_MIN_SAMPLE_NUMEL_U8 = 43200  # 3x120²


def _select_layout(images: Tensor) -> bool:
    """Whether :func:`_select_int` handles this layout: W innermost (NCHW) or C (channels-last)."""
    return images.stride(-1) == 1 or images.stride(1) == 1


def _rows_layout(images: Tensor, out: Tensor | None) -> bool:
    """Whether the C kernels take these tensors: contiguous rows, the same layout in ``out``."""
    lay = _native.rows_layout(images)
    if lay is None:
        return False
    if out is None:
        return True
    other = _native.rows_layout(out)
    return other is not None and other[:2] == lay[:2]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the block with one intra-op thread (restored after); nothing to do when it has one.

    ~2 µs. The setting is the calling thread's (OpenMP); a Python thread that starts its first
    PyTorch op inside another thread's block may inherit one thread.
    """
    if torch.compiler.is_compiling():  # get/set_num_threads do not trace (a graph break)
        yield
        return
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _where_kernel(
    images: Tensor, perm: Tensor, boxes: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor:
    """``torch.where(mask, images[perm], images)``: any device, differentiable, traceable."""
    h, w = images.shape[-2:]
    rows = torch.arange(h, device=boxes.device)
    cols = torch.arange(w, device=boxes.device)
    in_y = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])
    in_x = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])
    # Same mask as box_mask(); a bool product of the two profiles is faster than a broadcast `&`.
    mask = (in_y[:, :, None] * in_x[:, None, :]).unsqueeze(1)
    src = images.index_select(0, perm)
    if torch.compiler.is_compiling() or _needs_grad(images):
        mixed = torch.where(mask, src, images)
        target = images if inplace else dest
        if target is None and mixed.stride() != images.stride():
            # index_select returns a contiguous batch and where() follows it: keep the caller's
            # memory format (channels_last) as the eager path does.
            target = torch.empty_like(images)
        return mixed if target is None else target.copy_(mixed)
    if inplace:
        # src is a private gather, so where() may read and write images element by element.
        return torch.where(mask, src, images, out=images)
    if dest is None:
        # Reuse the gathered batch as the output when it has the input's layout: one allocation.
        dest = src if src.stride() == images.stride() else torch.empty_like(images)
    return torch.where(mask, src, images, out=dest)


def _select_kernel(
    images: Tensor, perm: Tensor, boxes: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor:
    """CPU: one box for the whole batch, else the integer select; ``where`` for other layouts."""
    done = _same_box(images, perm, boxes, dest, inplace)
    if done is None:
        done = _select_int(images, perm, boxes, dest, inplace)
    if done is None:
        done = _where_kernel(images, perm, boxes, dest, inplace)
    return done


def _same_box(
    images: Tensor, perm: Tensor, boxes: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor | None:
    """CPU eager fast path when every sample has the same box (``mode="batch"``): None otherwise.

    A copy of the batch and one gather of the box region instead of a select over every pixel
    (the ``cut_images batch`` rows of ``python -m benchmarks.run``).
    """
    if boxes.shape[0] < 2 or not bool((boxes == boxes[:1]).all()):
        return None
    x1, y1, x2, y2 = boxes[0].tolist()
    box = (slice(None), slice(None), slice(y1, y2), slice(x1, x2))
    target = images if inplace else (torch.empty_like(images) if dest is None else dest)
    if not inplace:
        target.copy_(images)
    if x2 > x1 and y2 > y1:
        # index_select returns a private copy: in place, every box is read before any is written.
        target[box] = images[box].index_select(0, perm)
    return target


# Bytes of images per chunk of _select_int: a chunk's gathered partners and its slice of the batch
# stay in a core's L2 cache (>= 1 MiB on current x86/ARM server cores) between the two passes.
_CHUNK_BYTES = 1 << 19


@functools.lru_cache(maxsize=4)
def _profile_table(length: int, dtype: torch.dtype) -> Tensor:
    """``table[k, c] = 1 if c < k else 0``, shape ``(length + 1, length)``: box profiles by lookup."""
    coord = torch.arange(length)
    return (coord[None, :] < torch.arange(length + 1)[:, None]).to(dtype)


def _select_int(
    images: Tensor, perm: Tensor, boxes: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor | None:
    """CPU eager select in integer arithmetic on the raw bytes: ``out = x + (x[perm] - x) · m``.

    ``m`` is 1 inside the box and 0 outside. The arithmetic runs on a uint8 (1-byte dtypes) or int16
    view of the bytes, whose wrap-around is well defined, so every bit pattern (NaN payloads, -0.0)
    is moved exactly: bitwise ``where(mask, x[perm], x)``. PyTorch's CPU ``where`` is a scalar loop
    (~1.2 ns/element); ``sub`` and ``addcmul`` are vectorised. The batch goes in chunks of
    ``_CHUNK_BYTES`` so that gathered partners stay in cache between the two passes, faster than
    three passes over the whole batch (``python -m benchmarks.kernels_before_after``). Returns
    None for layouts it does not handle (the caller uses ``where``).
    """
    # The view to a narrower integer type needs the innermost dimension contiguous: W for NCHW,
    # C for channels_last (then the batch is processed as N, H, W, C).
    if images.stride(-1) == 1:
        order = (0, 1, 2, 3)
    elif images.stride(1) == 1:
        order = (0, 2, 3, 1)
    else:
        return None
    it = torch.uint8 if images.element_size() == 1 else torch.int16
    wide = images.element_size() // it.itemsize  # integers per element
    x = images.permute(order).view(it)
    n, h, w = images.shape[0], images.shape[2], images.shape[3]
    channels_last = order[-1] == 1
    # Mask from two 1-D profiles looked up in a cached table. In NCHW each element is `wide`
    # integers along W, so the column profile runs over W * wide integer columns.
    cols_per_pixel = 1 if channels_last else wide
    length = max(h, w * cols_per_pixel)
    corners = boxes if cols_per_pixel == 1 else boxes * boxes.new_tensor([wide, 1, wide, 1])
    ends = _profile_table(length, it).index_select(0, corners.reshape(-1)).view(n, 2, 2, length)
    prof = ends[:, 1] - ends[:, 0]  # (N, x/y, length): 1 in [lo, hi)
    m = prof[:, 1, :h, None] * prof[:, 0, None, : w * cols_per_pixel]
    m = m.unsqueeze(-1) if channels_last else m.unsqueeze(1)
    step = max(1, _CHUNK_BYTES // max(1, images[0].numel() * images.element_size()))
    if inplace:
        src = x.index_select(0, perm)  # every partner read before anything is written
        for t, xa, ma in zip(src.split(step), x.split(step), m.split(step)):
            xa.addcmul_(t.sub_(xa), ma)
        return images
    target = dest if dest is not None else torch.empty_like(images)
    d = target.permute(order)
    if d.stride(-1) != 1:  # an out= buffer in another memory format: compute, then copy
        return target.copy_(_select_int(images, perm, boxes, None, False))  # type: ignore[arg-type]
    tmp = torch.empty((min(step, n), *x.shape[1:]), dtype=it)
    for pc, xa, ma, da in zip(
        perm.split(step), x.split(step), m.split(step), d.view(it).split(step)
    ):
        t = tmp if pc.shape[0] == tmp.shape[0] else tmp[: pc.shape[0]]
        torch.index_select(x, 0, pc, out=t)
        torch.addcmul(xa, t.sub_(xa), ma, out=da)
    return target


def _partner_order(perm: list[int]) -> list[int]:
    """Visit order that handles ``perm[i]`` just before ``i`` (its data is then still in cache)."""
    n = len(perm)
    seen = [False] * n
    order: list[int] = []
    for start in range(n):
        path = []
        i = start
        while not seen[i]:
            seen[i] = True
            path.append(i)
            i = perm[i]
        order.extend(reversed(path))
    return order


def _inplace_order(perm: list[int], todo: list[int]) -> tuple[list[int], set[int]]:
    """Order in which to paste in place so that every sample is read before it is overwritten.

    Sample ``i`` reads ``perm[i]``: ``i`` must come before ``perm[i]`` (Kahn's algorithm on the
    partner graph). Each cycle is broken once: the reader of the sample that starts it uses a saved
    copy of its patch. Returns the order and the readers that need a saved patch.
    """
    active = set(todo)
    readers: dict[int, list[int]] = {}
    pending = dict.fromkeys(todo, 0)
    for i in todo:
        j = perm[i]
        if j in active:
            pending[j] += 1
            readers.setdefault(j, []).append(i)
    ready = [i for i in todo if pending[i] == 0]
    order: list[int] = []
    saved: set[int] = set()
    done: set[int] = set()
    left = list(reversed(todo))
    while len(order) < len(todo):
        while ready:
            i = ready.pop()
            order.append(i)
            done.add(i)
            j = perm[i]
            if j in active:
                pending[j] -= 1
                if pending[j] == 0:
                    ready.append(j)
        if len(order) == len(todo):
            break
        # Only cycles are left: break one by saving the patch its last reader needs.
        while left[-1] in done:
            left.pop()
        start = left[-1]
        reader = next(k for k in readers[start] if k not in done)
        saved.add(reader)
        pending[start] -= 1
        if pending[start] == 0:
            ready.append(start)
    return order, saved


def _copy_paste_kernel(
    images: Tensor, perm_t: Tensor, boxes_t: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor:
    """The whole batch copied in one op (the caller's threads), then every box pasted (one thread).

    Out of place or into ``out=`` only (:func:`_route` never sends in place here; asked anyway, the
    in-place loop runs, since a copy-then-paste would read boxes already overwritten).
    """
    if inplace:
        with _one_thread():
            return _loop_kernel(images, perm_t, boxes_t, dest, True)
    dest = images.clone() if dest is None else dest.copy_(images)
    with _one_thread():
        boxes, perm = boxes_t.tolist(), perm_t.tolist()
        c = images.shape[1]
        s0, *s_rest = images.stride()
        d0, *d_rest = dest.stride()
        s_off, d_off = images.storage_offset(), dest.storage_offset()
        dsts: list[Tensor] = []
        srcs: list[Tensor] = []
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            j = perm[i]
            if x2 > x1 and y2 > y1 and j != i:
                size = (c, y2 - y1, x2 - x1)
                dsts.append(
                    dest.as_strided(size, d_rest, d_off + i * d0 + y1 * d_rest[1] + x1 * d_rest[2])
                )
                srcs.append(
                    images.as_strided(
                        size, s_rest, s_off + j * s0 + y1 * s_rest[1] + x1 * s_rest[2]
                    )
                )
        if dsts:
            torch._foreach_copy_(dsts, srcs)
    return dest


def _loop_kernel(
    images: Tensor, perm_t: Tensor, boxes_t: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor:
    """Per-sample slice copies (CPU, eager): every output byte written once per sample.

    The copies are collected into two lists and run by one ``torch._foreach_copy_`` call, which
    copies them one after the other in list order (so the read-before-write order of the in-place
    path holds) with one Python-to-C++ crossing instead of one per slice. Views are made with
    ``as_strided`` (one op, ~3x cheaper than slicing a sample and then its box); together ~10 %
    faster at f32 128x3x224² and ~20 % for uint8 (benchmarks/kernels_before_after.py).
    """
    boxes = boxes_t.tolist()
    perm = perm_t.tolist()
    c = images.shape[1]
    s0, *s_rest = images.stride()
    s_off, sh, sw = images.storage_offset(), s_rest[1], s_rest[2]
    view = images.as_strided

    def patch(i: int, j: int) -> tuple[Tensor, Tensor]:
        """(where sample i's box is written, where it is read from: sample j)."""
        x1, y1, x2, y2 = boxes[i]
        size = (c, y2 - y1, x2 - x1)
        corner = y1 * sh + x1 * sw
        dst = view(size, s_rest, s_off + i * s0 + corner)
        return dst, view(size, s_rest, s_off + j * s0 + corner)

    dsts: list[Tensor] = []
    srcs: list[Tensor] = []
    if inplace:
        todo = [
            i for i, (x1, y1, x2, y2) in enumerate(boxes) if x2 > x1 and y2 > y1 and perm[i] != i
        ]
        order, saved = _inplace_order(perm, todo)
        # A saved patch is taken before anything is written: its source is still original.
        patches = {i: patch(i, perm[i])[1].clone() for i in saved}
        for i in order:
            dst, src = patch(i, perm[i])
            dsts.append(dst)
            srcs.append(patches.get(i, src))
        if dsts:
            torch._foreach_copy_(dsts, srcs)
        return images
    if dest is None:
        dest = torch.empty_like(images)
    d0, *d_rest = dest.stride()
    d_off, dh, dw = dest.storage_offset(), d_rest[1], d_rest[2]
    dview = dest.as_strided
    # The whole-sample views in one C++ call each (~0.7 µs a view instead of ~1.5 µs).
    own_dst, own_src = dest.unbind(0), images.unbind(0)
    for i in _partner_order(perm):
        x1, y1, x2, y2 = boxes[i]
        j = perm[i]
        dsts.append(own_dst[i])
        srcs.append(own_src[i])
        if x2 > x1 and y2 > y1 and j != i:
            # Pasted right after the own copy, while that sample is still in cache.
            size = (c, y2 - y1, x2 - x1)
            dsts.append(dview(size, d_rest, d_off + i * d0 + y1 * dh + x1 * dw))
            srcs.append(view(size, s_rest, s_off + j * s0 + y1 * sh + x1 * sw))
    torch._foreach_copy_(dsts, srcs)
    return dest


def _c_kernel(
    images: Tensor, perm: Tensor, boxes: Tensor, dest: Tensor | None, inplace: bool
) -> Tensor:
    """``c_rows`` (out of place, ``out=``) and ``c_paste`` (in place): :func:`cutmix._native.cut_rows`."""
    target = None if inplace else (torch.empty_like(images) if dest is None else dest)
    done = _native.cut_rows(images, perm, boxes, target, dest is None)
    if done is None:  # a layout _route would not send here: the loop takes any strides
        return _loop_kernel(images, perm, boxes, target, inplace)
    return done


_KERNELS: dict[str, Callable[[Tensor, Tensor, Tensor, Tensor | None, bool], Tensor]] = {
    "copy_paste": _copy_paste_kernel,
    "c_rows": _c_kernel,
    "c_paste": _c_kernel,
    "loop": _loop_kernel,
    "select": _select_kernel,
    "where": _where_kernel,
}


def cut_images(
    images: Tensor,
    params: MixParams,
    *,
    inplace: bool = False,
    out: Tensor | None = None,
    strategy: Strategy = "auto",
) -> Tensor:
    """Paste ``images[perm[i]]`` into ``images[i]`` inside ``params.boxes[i]`` (CutMix).

    Pixels outside the box are the sample's own, pixels inside its partner's, bitwise. Returns a new
    tensor unless ``inplace=True`` (then ``images`` itself is written) or ``out`` is given (a
    preallocated buffer like ``images``, reused across steps). ``strategy`` picks the kernel; all
    give identical results; ``_route`` holds the table of which kernel runs where. ``"auto"``
    (the default) picks by device, layout, sample size and ``inplace``: on CPU the C kernel
    (:mod:`cutmix._native`, built with the system C compiler on first use and cached;
    ``CUTMIX_NATIVE=0`` turns it off) or, without it, a slice loop for large samples and a
    vectorised select for small ones; ``torch.where`` on GPU, under ``torch.compile`` and for
    inputs that need grad (the only differentiable kernel, whatever ``strategy`` says).
    ``"native"`` forces the C kernel (``RuntimeError`` without a compiler), ``"loop"`` the slice
    loop (both CPU only), ``"masked"`` the vectorised select. ``"compiled"`` is deprecated: it runs
    as ``"auto"`` with a ``DeprecationWarning`` (compile your own step instead). On CPU every
    kernel runs with one intra-op thread, which keeps it at memory speed when other processes
    load the cores.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4); x[1] = 1
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
        ...               boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]), size=(4, 4))
        >>> cut_images(x, p)[0, 0].tolist()
        [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    images = _check_call(images, params, inplace, out)
    if params.boxes is None:
        V.fail("params", "CutMix params with boxes (MixUp params go to mix_images)", "boxes=None")
    return _cut(images, params, inplace, out, strategy)


def _cut(
    images: Tensor, params: MixParams, inplace: bool, out: Tensor | None, strategy: str
) -> Tensor:
    """:func:`cut_images` after its checks."""
    if _grad_out(out):
        return out.copy_(_cut(images, params, False, None, strategy))  # type: ignore[union-attr]
    boxes = params.boxes
    assert boxes is not None
    kernel = _KERNELS[_route(images, strategy, inplace, out)]
    if kernel is _where_kernel or kernel is _copy_paste_kernel:  # they manage their own threads
        return kernel(images, params.perm, boxes, out, inplace)
    with _one_thread():
        return kernel(images, params.perm, boxes, out, inplace)


def mix_images(
    images: Tensor, params: MixParams, *, inplace: bool = False, out: Tensor | None = None
) -> Tensor:
    """Blend ``λ · images + (1 - λ) · images[perm]`` per sample (MixUp).

    Low-precision floats blend in float32 and round once; uint8 rounds to nearest and stays uint8.
    A sample with ``λ = 1`` comes back bitwise unchanged, one with ``λ = 0`` as its partner.

    Example:
        >>> x = torch.tensor([0.0, 4.0]).view(2, 1, 1, 1)
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]), boxes=None,
        ...               size=None)
        >>> mix_images(x, p).flatten().tolist()
        [1.0, 4.0]
    """
    images = _check_call(images, params, inplace, out)
    return _mix(images, params, inplace, out)


def _mix(images: Tensor, params: MixParams, inplace: bool, out: Tensor | None) -> Tensor:
    """:func:`mix_images` after its checks."""
    if _grad_out(out):
        return out.copy_(_mix(images, params, False, None))  # type: ignore[union-attr]
    lam = params.lam.view(-1, 1, 1, 1)
    src = images.index_select(0, params.perm)
    if images.dtype in (torch.float32, torch.float64):
        lam = lam.to(images.dtype)
        mixed = images * lam + src * (1 - lam)
    else:
        mixed = images.float() * lam + src.float() * (1 - lam)
        if images.dtype == torch.uint8:
            mixed = mixed.round_().clamp_(0, 255)
    # An unmixed sample (λ = 1) is returned bitwise: the blend would turn -0.0 into +0.0 and
    # would let an inf or NaN in its partner leak in through 0 · inf.
    keep = params.lam.view(-1, 1, 1, 1) == 1
    mixed = mixed.to(images.dtype)
    # λ = 0 is the partner, bitwise: 0 · inf (or NaN) in the own sample would leak NaN in. At tiny
    # α the symmetric Beta gives λ = 0 as often as 1. On CPU only when one occurs (no sync there).
    zero = params.lam.view(-1, 1, 1, 1) == 0
    if images.device.type != "cpu" or torch.compiler.is_compiling() or bool(zero.any()):
        mixed = torch.where(zero, src, mixed)
    dest = images if inplace else out
    if mixed.requires_grad and torch.is_grad_enabled():
        # where(out=) refuses autograd: compute, then copy into the target (copy_ is recorded).
        done = torch.where(keep, images, mixed)
        if dest is None:
            return done.contiguous(memory_format=_memory_format(images))
        return dest.copy_(done)
    if dest is None:
        dest = torch.empty_like(images)
    return torch.where(keep, images, mixed, out=dest)


def _memory_format(images: Tensor) -> torch.memory_format:
    channels_last = not images.is_contiguous() and images.is_contiguous(
        memory_format=torch.channels_last
    )
    return torch.channels_last if channels_last else torch.contiguous_format


def apply_images(
    images: Tensor,
    params: MixParams,
    *,
    inplace: bool = False,
    out: Tensor | None = None,
    strategy: Strategy = "auto",
) -> Tensor:
    """Apply any params to images: CutMix boxes, MixUp blending, or both (per-sample RandomMix).

    ``strategy`` is the :func:`cut_images` kernel used for boxes.

    Example:
        >>> p = MixParams(perm=torch.tensor([0]), lam=torch.ones(1), boxes=None, size=None)
        >>> apply_images(torch.ones(1, 1, 2, 2), p).sum().item()
        4.0
    """
    images = _check_call(images, params, inplace, out)
    return _apply(images, params, inplace, out, strategy)


def _apply(
    images: Tensor, params: MixParams, inplace: bool, out: Tensor | None, strategy: str
) -> Tensor:
    """:func:`apply_images` after :func:`_check_call`."""
    if _grad_out(out):
        return out.copy_(_apply(images, params, False, None, strategy))  # type: ignore[union-attr]
    if params.boxes is None:
        return _mix(images, params, inplace, out)
    if params.blend is None:
        return _cut(images, params, inplace, out, strategy)
    blended = _mix(images, params, False, None)
    cut = _cut(images, params, False, None, strategy)
    flags = params.blend.view(-1, 1, 1, 1)
    if (blended.requires_grad or cut.requires_grad) and torch.is_grad_enabled():
        # where(out=) refuses autograd (feature-level mixing): compute, then copy.
        done = torch.where(flags, blended, cut)
        if not inplace and out is None:
            return done.contiguous(memory_format=_memory_format(images))
        return (images if inplace else out).copy_(done)  # type: ignore[union-attr]
    dest = images if inplace else (torch.empty_like(images) if out is None else out)
    return torch.where(flags, blended, cut, out=dest)


def one_hot(labels: Tensor, num_classes: int, *, label_smoothing: float = 0.0) -> Tensor:
    """Float32 ``(N, C)`` targets from class ids, optionally smoothed: ``(1 - ε) · onehot + ε / C``.

    Example:
        >>> one_hot(torch.tensor([1]), 3).tolist()
        [[0.0, 1.0, 0.0]]
    """
    V.check_tensor(labels, "labels")
    V.check_smoothing(label_smoothing)
    V.check_class_range(labels, num_classes)
    out = torch.zeros(labels.shape[0], num_classes, dtype=torch.float32, device=labels.device)
    out.scatter_(1, labels.long().view(-1, 1), 1.0)
    if label_smoothing:
        out.mul_(1.0 - label_smoothing).add_(label_smoothing / num_classes)
    return out


def mix_labels(
    labels: Tensor,
    params: MixParams,
    num_classes: int | None = None,
    *,
    label_smoothing: float = 0.0,
    out: Tensor | None = None,
    multi_label: bool = False,
) -> Tensor:
    """Float32 soft targets ``λ · y + (1 - λ) · y[perm]``, optionally smoothed afterwards.

    ``labels`` are int class ids ``(N,)`` (then ``num_classes`` is required) or ``(N, C)``
    probabilities / multi-hot (any float or bool dtype). Rows sum to 1 for class ids and
    probabilities. Smoothing maps ``t`` to ``(1 - ε) · t + ε / C``; with ``multi_label=True``
    (multi-hot targets for a per-class binary loss) each class is smoothed toward 1/2 instead,
    ``(1 - ε) · t + ε / 2``, timm's ``multi_label`` convention. ``out`` is an optional
    float32 ``(N, C)`` buffer reused across steps (it is overwritten and returned): at many classes
    the targets are mostly the time it takes to write ``N · C`` floats, and a reused buffer saves
    the fresh pages a new one gets from the allocator.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]), boxes=None,
        ...               size=None)
        >>> mix_labels(torch.tensor([0, 2]), p, num_classes=3).tolist()
        [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0]]
    """
    if not isinstance(params, MixParams):
        V.fail("params", "a cutmix.MixParams", V.describe(params), kind=TypeError)
    classes = _check_labels(labels, params, V.check_num_classes(num_classes))
    V.check_smoothing(label_smoothing)
    params._check_values()
    if out is not None:
        V.check_targets_out(out, params.perm.shape[0], classes, labels.device)
        if _grad_out(out):  # grad history (see _grad_out): computed, then copied in
            done = _mix_labels(labels, params, classes, label_smoothing, None, bool(multi_label))
            return out.copy_(done)
    return _mix_labels(labels, params, classes, label_smoothing, out, bool(multi_label))


def _check_labels(labels: Tensor, params: MixParams, num_classes: int | None) -> int:
    """Labels that fit ``params`` (class range included); returns the class count."""
    classes = V.check_labels(labels, params.perm.shape[0], num_classes)
    if labels.device != params.perm.device:
        V.fail(
            "params",
            f"params on {labels.device} (where the labels are)",
            f"on {params.perm.device}",
        )
    return classes


def _mix_labels(
    labels: Tensor,
    params: MixParams,
    classes: int,
    label_smoothing: float,
    out: Tensor | None,
    multi_label: bool,
) -> Tensor:
    """:func:`mix_labels` after its checks."""
    n = params.perm.shape[0]
    lam = params.lam.to(torch.float32).view(-1, 1)
    floor = label_smoothing / (2 if multi_label else classes)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        y = labels.to(torch.float32)
        partner_part = y.index_select(0, params.perm) * (1 - lam)  # before out= may overwrite y
        mixed = torch.mul(y, lam, out=out).add_(partner_part)
        if label_smoothing:
            mixed.mul_(1.0 - label_smoothing).add_(floor)
        return mixed
    if multi_label and label_smoothing:
        hard = _mix_labels(labels, params, classes, 0.0, out, False)
        return hard.mul_(1.0 - label_smoothing).add_(floor)
    if out is None:
        out = torch.empty(n, classes, dtype=torch.float32, device=labels.device)
    if not label_smoothing and _native_targets(labels, params.lam, out):
        from cutmix import _native

        return _native.soft_targets(labels, params.perm, params.lam, out)
    y = labels.view(-1, 1).long()
    partner = y.index_select(0, params.perm)
    if not label_smoothing:
        # Two scatters of N values: λ at the own class, then 1 - λ added at the partner's. A row
        # whose partner has the same class gets exactly λ + (1 - λ).
        return out.zero_().scatter_(1, y, lam).scatter_add_(1, partner, 1 - lam)
    # Smoothed: one fused scatter of both weights into a buffer already holding the smoothing
    # floor. A row whose partner has the same class gets its weights summed first, so every entry
    # is bitwise ``(λ·onehot(y) + (1-λ)·onehot(y[perm]))·(1-ε) + ε/C`` computed in that order.
    idx = torch.cat([y, partner], dim=1)
    same = y == partner
    other = 1 - lam
    weights = torch.cat(
        [torch.where(same, lam + other, lam), torch.where(same, torch.zeros_like(lam), other)],
        dim=1,
    )
    weights = weights * (1.0 - label_smoothing)
    out.fill_(label_smoothing / classes)
    return out.scatter_add_(1, idx, weights)


def _native_targets(labels: Tensor, lam: Tensor, out: Tensor) -> bool:
    """Whether the C soft-target kernel should write ``out`` (CPU, eager, contiguous, no autograd).

    Also with several intra-op threads: PyTorch's parallel fill is ~20 % faster on a quiet machine
    but waits at a barrier for descheduled threads on a loaded one, while the single-threaded C
    pass does not (``python -m benchmarks.run --load``).
    """
    if labels.device.type != "cpu" or torch.compiler.is_compiling() or not out.is_contiguous():
        return False
    if lam.requires_grad and torch.is_grad_enabled():
        return False
    return _native.available()
