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

from typing import Literal

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix.params import MixParams

Strategy = Literal["auto", "loop", "masked"]
STRATEGIES: tuple[str, ...] = ("auto", "loop", "masked")

__all__ = [
    "STRATEGIES",
    "apply_images",
    "box_mask",
    "cut_boxes",
    "cut_images",
    "cut_masks",
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


def _needs_grad(images: Tensor) -> bool:
    """Autograd must see the result (feature-level mixing): no ``out=`` writes, no slice loop."""
    return images.requires_grad and torch.is_grad_enabled()


def _pick_strategy(images: Tensor, strategy: str) -> str:
    V.check_choice(strategy, STRATEGIES, "strategy")
    if strategy != "auto":
        if strategy == "loop" and (images.device.type != "cpu" or torch.compiler.is_compiling()):
            V.fail("strategy", "'loop' only on CPU tensors in eager mode", images.device)
        return strategy
    if images.device.type != "cpu" or torch.compiler.is_compiling() or _needs_grad(images):
        return "masked"
    # On CPU a box-slice loop costs ~10 µs of Python per sample but touches only the bytes it must;
    # the vectorised where() costs ~2 ns per element. The crossover is near 8K elements per sample
    # (benchmarks/RESULTS.md): 3×32×32 goes to "masked", 3×64×64 and up to "loop".
    return "loop" if images[0].numel() >= _LOOP_MIN_SAMPLE_NUMEL else "masked"


_LOOP_MIN_SAMPLE_NUMEL = 8192


def _cut_masked(images: Tensor, params: MixParams, dest: Tensor | None, inplace: bool) -> Tensor:
    """One vectorised select: ``where(box, images[perm], images)``; no host sync, compiles."""
    assert params.boxes is not None
    boxes = params.boxes
    h, w = images.shape[-2:]
    rows = torch.arange(h, device=boxes.device)
    cols = torch.arange(w, device=boxes.device)
    in_y = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])
    in_x = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])
    # Same mask as box_mask(); a bool product of the two profiles is faster than a broadcast `&`.
    mask = (in_y[:, :, None] * in_x[:, None, :]).unsqueeze(1)
    src = images.index_select(0, params.perm)
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


def _cut_loop(images: Tensor, params: MixParams, dest: Tensor, inplace: bool) -> Tensor:
    """Per-sample slice copies (CPU, eager): every output byte written once per sample."""
    assert params.boxes is not None
    boxes = params.boxes.tolist()
    perm = params.perm.tolist()
    src = images.unbind(0)
    if inplace:
        todo = [
            i for i, (x1, y1, x2, y2) in enumerate(boxes) if x2 > x1 and y2 > y1 and perm[i] != i
        ]
        order, saved = _inplace_order(perm, todo)
        # A saved patch is taken before anything is written: its source is still original.
        patches = {}
        for i in saved:
            x1, y1, x2, y2 = boxes[i]
            patches[i] = src[perm[i]][:, y1:y2, x1:x2].clone()
        for i in order:
            x1, y1, x2, y2 = boxes[i]
            patch = patches[i] if i in patches else src[perm[i]][:, y1:y2, x1:x2]
            src[i][:, y1:y2, x1:x2].copy_(patch)
        return images
    out = dest.unbind(0)
    for i in _partner_order(perm):
        x1, y1, x2, y2 = boxes[i]
        out[i].copy_(src[i])
        if x2 > x1 and y2 > y1 and perm[i] != i:
            out[i][:, y1:y2, x1:x2].copy_(src[perm[i]][:, y1:y2, x1:x2])
    return dest


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
    preallocated buffer like ``images``, reused across steps). ``strategy`` picks the kernel:
    ``"loop"`` copies box slices (CPU, eager), ``"masked"`` one vectorised ``where`` (any device,
    ``torch.compile``), ``"auto"`` the faster for the shape and device. All give identical results.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4); x[1] = 1
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
        ...               boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]), size=(4, 4))
        >>> cut_images(x, p)[0, 0].tolist()
        [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    V.check_images(images)
    V.check_params(params, images)
    V.check_inplace_out(images, inplace, out)
    if params.boxes is None:
        V.fail("params", "CutMix params with boxes (MixUp params go to mix_images)", "boxes=None")
    kind = _pick_strategy(images, strategy)
    if kind == "loop":
        dest = images if inplace else (torch.empty_like(images) if out is None else out)
        return _cut_loop(images, params, dest, inplace)
    return _cut_masked(images, params, out, inplace)


def mix_images(
    images: Tensor, params: MixParams, *, inplace: bool = False, out: Tensor | None = None
) -> Tensor:
    """Blend ``λ · images + (1 - λ) · images[perm]`` per sample (MixUp).

    Low-precision floats blend in float32 and round once; uint8 rounds to nearest and stays uint8.
    A sample with ``λ = 1`` comes back bitwise unchanged.

    Example:
        >>> x = torch.tensor([0.0, 4.0]).view(2, 1, 1, 1)
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]), boxes=None,
        ...               size=None)
        >>> mix_images(x, p).flatten().tolist()
        [1.0, 4.0]
    """
    V.check_images(images)
    V.check_params(params, images)
    V.check_inplace_out(images, inplace, out)
    lam = params.lam.view(-1, 1, 1, 1)
    src = images.index_select(0, params.perm)
    if images.dtype in (torch.float32, torch.float64):
        lam = lam.to(images.dtype)
        mixed = images * lam + src * (1 - lam)
    else:
        mixed = images.float() * lam + src.float() * (1 - lam)
        if images.dtype == torch.uint8:
            mixed = mixed.round_().clamp_(0, 255)
    dest = images if inplace else out
    if dest is None:
        dest = torch.empty_like(images)
    return dest.copy_(mixed)


def apply_images(
    images: Tensor, params: MixParams, *, inplace: bool = False, out: Tensor | None = None
) -> Tensor:
    """Apply any params to images: CutMix boxes, MixUp blending, or both (per-sample RandomMix).

    Example:
        >>> p = MixParams(perm=torch.tensor([0]), lam=torch.ones(1), boxes=None, size=None)
        >>> apply_images(torch.ones(1, 1, 2, 2), p).sum().item()
        4.0
    """
    if params.boxes is None:
        return mix_images(images, params, inplace=inplace, out=out)
    if params.blend is None:
        return cut_images(images, params, inplace=inplace, out=out)
    V.check_images(images)
    V.check_params(params, images)
    V.check_inplace_out(images, inplace, out)
    blended = mix_images(images, params)
    cut = cut_images(images, params)
    dest = images if inplace else (torch.empty_like(images) if out is None else out)
    return torch.where(params.blend.view(-1, 1, 1, 1), blended, cut, out=dest)


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
) -> Tensor:
    """Float32 soft targets ``λ · y + (1 - λ) · y[perm]``, optionally smoothed afterwards.

    ``labels`` are int class ids ``(N,)`` (then ``num_classes`` is required) or ``(N, C)``
    probabilities / multi-hot (any float or bool dtype). Rows sum to 1 for class ids and
    probabilities. Smoothing maps ``t`` to ``(1 - ε) · t + ε / C``.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]), boxes=None,
        ...               size=None)
        >>> mix_labels(torch.tensor([0, 2]), p, num_classes=3).tolist()
        [[0.75, 0.0, 0.25], [0.0, 0.0, 1.0]]
    """
    n = params.perm.shape[0]
    num_classes = V.check_num_classes(num_classes)
    classes = V.check_labels(labels, n, num_classes)
    V.check_smoothing(label_smoothing)
    if labels.device != params.perm.device:
        V.fail(
            "params", f"params on {labels.device} (where the labels are)", f"on {params.perm.device}"
        )
    lam = params.lam.view(-1, 1)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        y = labels.to(torch.float32)
        out = y * lam + y.index_select(0, params.perm) * (1 - lam)
        if label_smoothing:
            out.mul_(1.0 - label_smoothing).add_(label_smoothing / classes)
        return out
    # Class ids: one fused scatter of both weights into a buffer already holding the smoothing
    # floor. A row whose partner has the same class gets its weights summed first, so every entry
    # is bitwise ``(λ·onehot(y) + (1-λ)·onehot(y[perm]))·(1-ε) + ε/C`` computed in that order.
    y = labels.long().view(-1, 1)
    idx = torch.cat([y, y.index_select(0, params.perm)], dim=1)
    same = idx[:, :1] == idx[:, 1:]
    other = 1 - lam
    weights = torch.cat(
        [torch.where(same, lam + other, lam), torch.where(same, torch.zeros_like(lam), other)], dim=1
    )
    if label_smoothing:
        weights = weights * (1.0 - label_smoothing)
        out = torch.full(
            (n, classes), label_smoothing / classes, dtype=torch.float32, device=labels.device
        )
    else:
        out = torch.zeros(n, classes, dtype=torch.float32, device=labels.device)
    return out.scatter_add_(1, idx, weights)


# Dense targets live in cutmix.dense (which needs box_mask above); re-exported here as in DESIGN.md.
from cutmix.dense import cut_boxes, cut_masks  # noqa: E402
