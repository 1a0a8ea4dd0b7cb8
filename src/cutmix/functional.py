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


def _pick_strategy(images: Tensor, strategy: str) -> str:
    V.check_choice(strategy, STRATEGIES, "strategy")
    if strategy != "auto":
        if strategy == "loop" and (images.device.type != "cpu" or torch.compiler.is_compiling()):
            V.fail("strategy", "'loop' only on CPU tensors in eager mode", images.device)
        return strategy
    if images.device.type != "cpu" or torch.compiler.is_compiling():
        return "masked"
    # On CPU, copying only the boxes wins once a sample is large; tiny images favour one fused pass.
    return "loop" if images[0].numel() >= 4096 else "masked"


def _cut_masked(images: Tensor, params: MixParams, dest: Tensor) -> Tensor:
    assert params.boxes is not None
    mask = box_mask(params.boxes, images.shape[-2:])
    src = images.index_select(0, params.perm)
    return torch.where(mask, src, images, out=dest)


def _cut_loop(images: Tensor, params: MixParams, dest: Tensor, inplace: bool) -> Tensor:
    assert params.boxes is not None
    boxes = params.boxes.tolist()
    perm = params.perm.tolist()
    todo = [(i, perm[i], b) for i, b in enumerate(boxes) if b[2] > b[0] and b[3] > b[1]]
    if inplace:
        # Read every patch before writing any: a sample can be both a source and a destination.
        patches = [images[j, :, y1:y2, x1:x2].clone() for _, j, (x1, y1, x2, y2) in todo]
    else:
        if dest.data_ptr() != images.data_ptr():
            dest.copy_(images)
        patches = [images[j, :, y1:y2, x1:x2] for _, j, (x1, y1, x2, y2) in todo]
    for (i, _, (x1, y1, x2, y2)), patch in zip(todo, patches):
        dest[i, :, y1:y2, x1:x2].copy_(patch)
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
    dest = images if inplace else out
    if kind == "loop":
        if dest is None:
            dest = torch.empty_like(images)
        return _cut_loop(images, params, dest, inplace)
    if dest is None:
        dest = torch.empty_like(images)
    elif inplace:
        # where() reads images while writing them; give it a private copy of the sources.
        mask = box_mask(params.boxes, images.shape[-2:])
        src = images.index_select(0, params.perm)
        return images.copy_(torch.where(mask, src, images))
    return _cut_masked(images, params, dest)


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
        V.fail("params", f"params on {labels.device} (where the labels are)", params.perm.device)
    lam = params.lam.view(-1, 1)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        y = labels.to(torch.float32)
        out = y * lam + y.index_select(0, params.perm) * (1 - lam)
    else:
        y = labels.long().view(-1, 1)
        out = torch.zeros(n, classes, dtype=torch.float32, device=labels.device)
        out.scatter_add_(1, y, lam)
        out.scatter_add_(1, y.index_select(0, params.perm), 1 - lam)
    if label_smoothing:
        out = out * (1.0 - label_smoothing) + label_smoothing / classes
    return out
