"""Dense targets: segmentation masks, detection boxes and whole detection / segmentation batches.

One :class:`~cutmix.MixParams` drives the images and every target, so each pixel's label and each
box match the pixels the model sees:

- :func:`cut_masks`: ``(N, H, W)`` / ``(N, 1, H, W)`` class maps get exactly the images' pasted
  region. :func:`mix_masks` covers MixUp too (the two maps and a per-sample weight) and
  :func:`mixed_mask_cross_entropy` is the loss that weighs them.
- :func:`cut_boxes`: per-image ``(K_i, 4)`` XYXY pixel boxes and ``(K_i,)`` labels; own boxes kept when
  visible enough, the partner's clipped to the pasted region; per-box weights on request.
- :func:`mix_batch` / :class:`DenseMix`: the one-call form for torchvision-style batches (a list of
  ``{"boxes", "labels", "masks", ...}`` dicts, or one dict of batch entries).

``torchvision.tv_tensors`` (``Image``, ``BoundingBoxes`` in any axis-aligned format, ``Mask``) are
accepted everywhere and come back as the same types (see :mod:`cutmix.interop.torchvision`).

Example:
    >>> import torch, cutmix
    >>> p = cutmix.MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
    ...                      boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]), size=(4, 4))
    >>> masks = torch.stack([torch.zeros(4, 4, dtype=torch.long), torch.ones(4, 4, dtype=torch.long)])
    >>> cut_masks(masks, p)[0].tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    >>> boxes, labels = cut_boxes([torch.tensor([[0, 0, 4, 4]]), torch.tensor([[1, 1, 3, 3]])],
    ...                           [torch.tensor([7]), torch.tensor([8])], p)
    >>> boxes[0].tolist(), labels[0].tolist()
    ([[0, 0, 4, 4], [1, 1, 2, 2]], [7, 8])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from cutmix import _validate as V
from cutmix.params import MixParams

__all__ = [
    "BOX_KEYS",
    "DenseMix",
    "MaskMix",
    "MixedBoxes",
    "cut_boxes",
    "cut_masks",
    "mix_batch",
    "mix_masks",
    "mixed_mask_cross_entropy",
]

#: Per-box entries of a detection target dict that follow their boxes (selected, reordered).
BOX_KEYS: tuple[str, ...] = ("labels", "iscrowd", "area")


class MaskMix(NamedTuple):
    """Dense targets of any mixed batch, for :func:`mixed_mask_cross_entropy`.

    Attributes:
        masks: the own maps ``(N, H, W)`` (or ``(N, 1, H, W)``), with the pasted region cut in for
            CutMix samples.
        partner: the partner's maps for blended (MixUp) samples; equal to ``masks`` for CutMix
            samples.
        lam: float32 ``(N,)`` weight of ``masks`` at every pixel: ``λ`` for blended samples, 1 for
            CutMix samples (their single map is exact per pixel).
    """

    masks: Tensor
    partner: Tensor
    lam: Tensor


class MixedBoxes(NamedTuple):
    """Boxes after mixing, per image: ``boxes[i]`` ``(K'_i, 4)``, ``labels[i]``, ``weights[i]``.

    ``weights`` are float32 visible fractions (CutMix) or blend weights (MixUp) of each kept box.
    """

    boxes: list[Tensor]
    labels: list[Tensor]
    weights: list[Tensor]


# --- helpers -------------------------------------------------------------------------------------


def _box_mask(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    # Imported on use: cutmix.functional re-exports this module's kernels at its end.
    from cutmix.functional import box_mask as kernel

    return kernel(boxes, size)


def _apply_images(images: Tensor, params: MixParams) -> Tensor:
    from cutmix.functional import apply_images as kernel

    return kernel(images, params)


def _is_tv(value: Any) -> bool:
    return isinstance(value, Tensor) and type(value).__module__.startswith("torchvision.")


def _tvi() -> Any:
    from cutmix.interop import torchvision as tvi

    return tvi


def _plain(t: Tensor) -> Tensor:
    return t.as_subclass(Tensor) if type(t) is not Tensor else t


def _blend_flags(params: MixParams, device: torch.device) -> Tensor:
    n = params.perm.shape[0]
    if params.boxes is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    if params.blend is None:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return params.blend.to(device)


def _check_masks(masks: Any, params: MixParams, name: str = "masks") -> Tensor:
    """``(N, H, W)`` view of integer / bool class maps that fit ``params``."""
    V.check_tensor(masks, name)
    if masks.is_floating_point() or masks.is_complex():
        V.fail(name, "integer (or bool) class maps, not floats", V.describe(masks), kind=TypeError)
    n = params.perm.shape[0]
    if masks.dim() == 4 and masks.shape[1] == 1:
        maps = masks[:, 0]
    elif masks.dim() == 3:
        maps = masks
    else:
        V.fail(name, "class maps (N, H, W) or (N, 1, H, W)", V.describe(masks))
    if maps.shape[0] != n:
        V.fail(name, f"{n} maps (one per image of the params' batch)", V.describe(masks))
    if params.size is not None and tuple(maps.shape[-2:]) != tuple(params.size):
        V.fail(name, f"maps of the images' size {tuple(params.size)} (H, W)", V.describe(masks))
    if params.perm.device != masks.device:
        V.fail("params", f"params on {masks.device} (where the masks are)", params.perm.device)
    return maps


# --- masks ---------------------------------------------------------------------------------------


def cut_masks(masks: Tensor, params: MixParams) -> Tensor:
    """Paste ``masks[perm[i]]`` into ``masks[i]`` inside ``params.boxes[i]``: the images' exact region.

    Every pixel's label is the label of the image the pixel comes from. Values are copied, never
    interpreted, so an ``ignore_index`` (e.g. 255) passes through untouched: the own map's ignore
    pixels outside the box stay ignored, the partner's ignore pixels inside the box are pasted as
    ignored, and own ignore pixels inside the box take the partner's label (they now show the
    partner's pixels). Shape, dtype and device are kept; a ``tv_tensors.Mask`` comes back as one.

    Only for CutMix params; MixUp (``boxes is None``) and per-sample :class:`~cutmix.RandomMix`
    params with blended samples need two maps: use :func:`mix_masks`, or
    ``cutmix.mixed_cross_entropy(logits, masks, params)`` for pure MixUp.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 1.0]),
        ...               boxes=torch.tensor([[1, 0, 2, 2], [0, 0, 0, 0]]), size=(2, 2))
        >>> cut_masks(torch.tensor([[[0, 0], [0, 0]], [[3, 255], [3, 255]]]), p)[0].tolist()
        [[0, 255], [0, 255]]
    """
    maps = _check_masks(masks, params)
    if params.boxes is None or params.blend is not None:
        got = "MixUp params (boxes=None)" if params.boxes is None else "params with blended samples"
        V.fail(
            "params",
            "CutMix params (for MixUp use cutmix.dense.mix_masks or "
            "cutmix.mixed_cross_entropy(logits, masks, params))",
            got,
        )
    assert params.boxes is not None
    plain = _plain(maps)
    inside = _box_mask(params.boxes, tuple(plain.shape[-2:]))[:, 0]
    out = torch.where(inside, plain.index_select(0, params.perm), plain).view(masks.shape)
    return _tvi().wrap_like(out, masks) if _is_tv(masks) else out


def mix_masks(masks: Tensor, params: MixParams) -> MaskMix:
    """Dense targets for any params: CutMix, MixUp or a per-sample mixture (:class:`MaskMix`).

    CutMix samples get the cut map (as :func:`cut_masks`) with weight 1; blended samples keep their
    own map with weight ``λ`` and their partner's map with ``1 - λ``. Train with
    :func:`mixed_mask_cross_entropy`.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.7, 1.0]), boxes=None,
        ...               size=None)
        >>> m = mix_masks(torch.tensor([[[0]], [[1]]]), p)
        >>> m.partner.flatten().tolist(), m.lam.tolist()
        ([1, 0], [0.699999988079071, 1.0])
    """
    maps = _plain(_check_masks(masks, params))
    blend = _blend_flags(params, maps.device)
    partner = maps.index_select(0, params.perm)
    if params.boxes is None:
        own = maps
    else:
        inside = _box_mask(params.boxes, tuple(maps.shape[-2:]))[:, 0] & ~blend.view(-1, 1, 1)
        own = torch.where(inside, partner, maps)
        partner = torch.where(blend.view(-1, 1, 1), partner, own)
    lam = torch.where(blend, params.lam.float(), torch.ones_like(params.lam, dtype=torch.float32))
    own, partner = own.reshape(masks.shape), partner.reshape(masks.shape)
    if _is_tv(masks):
        own, partner = _tvi().wrap_like(own, masks), _tvi().wrap_like(partner, masks)
    return MaskMix(own, partner, lam)


def mixed_mask_cross_entropy(
    logits: Tensor,
    mixed: MaskMix,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Per-pixel ``λ_i · CE(logits, masks) + (1 - λ_i) · CE(logits, partner)`` for :func:`mix_masks`.

    ``logits`` are ``(N, C, H, W)``. A pixel equal to ``ignore_index`` in one map drops out of that
    map's term; the mean is over pixels valid in at least one map (as
    :func:`cutmix.mixed_cross_entropy`, which it equals for MixUp params).

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 1.0]), boxes=None,
        ...               size=None)
        >>> m = mix_masks(torch.zeros(2, 2, 2, dtype=torch.long), p)
        >>> round(mixed_mask_cross_entropy(torch.zeros(2, 3, 2, 2), m).item(), 4)  # log 3
        1.0986
    """
    if not isinstance(mixed, MaskMix):
        V.fail(
            "mixed", "a cutmix.dense.MaskMix (from mix_masks)", V.describe(mixed), kind=TypeError
        )
    V.check_tensor(logits, "logits")
    V.check_smoothing(label_smoothing)
    V.check_choice(reduction, ("mean", "sum", "none"), "reduction")
    own, partner = _plain(mixed.masks), _plain(mixed.partner)
    if own.dim() == 4:
        own, partner = own[:, 0], partner[:, 0]
    if not logits.is_floating_point() or logits.dim() != 4 or logits.shape[0] != own.shape[0]:
        V.fail("logits", f"float (N, C, H, W) logits with N = {own.shape[0]}", V.describe(logits))
    if logits.shape[2:] != own.shape[1:]:
        V.fail("logits", f"spatial size {tuple(own.shape[1:])} like the masks", V.describe(logits))

    def ce(y: Tensor) -> Tensor:
        return F.cross_entropy(
            logits.float(),
            y.long(),
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction="none",
        )

    lam = mixed.lam.float().view(-1, 1, 1)
    loss = lam * ce(own) + (1 - lam) * ce(partner)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    valid = (own != ignore_index) | (partner != ignore_index)
    return loss.sum() / valid.sum().clamp_min(1)


# --- boxes ---------------------------------------------------------------------------------------


def _check_box_list(
    boxes: Any, labels: Any, n: int, size: tuple[int, int] | None
) -> tuple[list[Tensor], list[Tensor]]:
    for value, name in ((boxes, "boxes"), (labels, "labels")):
        if not isinstance(value, Sequence) or isinstance(value, (str, Tensor)):
            V.fail(name, "a list with one tensor per image", V.describe(value), kind=TypeError)
        if len(value) != n:
            V.fail(name, f"{n} entries (one per image of the params' batch)", f"{len(value)}")
    out_b: list[Tensor] = []
    out_l: list[Tensor] = []
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        V.check_tensor(b, f"boxes[{i}]")
        V.check_tensor(lab, f"labels[{i}]")
        if b.numel() == 0 and b.dim() < 2:
            b = b.reshape(0, 4)
        if b.dim() != 2 or b.shape[1] != 4:
            V.fail(f"boxes[{i}]", "(K, 4) boxes as x1, y1, x2, y2", V.describe(b))
        if b.dtype == torch.bool or b.is_complex():
            V.fail(f"boxes[{i}]", "real-valued (K, 4) boxes", V.describe(b), kind=TypeError)
        if lab.dim() == 0 or lab.shape[0] != b.shape[0]:
            V.fail(f"labels[{i}]", f"{b.shape[0]} labels (one per box)", V.describe(lab))
        if b.numel():
            bf = b.double()
            bad = ~bf.isfinite().all(1)
            if bool(bad.any()):
                k = int(bad.nonzero()[0])
                V.fail(f"boxes[{i}]", "finite coordinates", f"box {k} = {b[k].tolist()}")
            bad = (bf[:, 2] < bf[:, 0]) | (bf[:, 3] < bf[:, 1])
            if bool(bad.any()):
                k = int(bad.nonzero()[0])
                V.fail(
                    f"boxes[{i}]",
                    "x1 <= x2 and y1 <= y2 (XYXY pixel boxes)",
                    f"box {k} = {b[k].tolist()}",
                )
            if size is not None:
                h, w = size
                bad = (bf[:, :2] < 0).any(1) | (bf[:, 2] > w) | (bf[:, 3] > h)
                if bool(bad.any()):
                    k = int(bad.nonzero()[0])
                    V.fail(
                        f"boxes[{i}]",
                        f"boxes inside the image (0 <= x1 <= x2 <= W={w}, 0 <= y1 <= y2 <= H={h})",
                        f"box {k} = {b[k].tolist()}",
                    )
        out_b.append(_plain(b))
        out_l.append(_plain(lab))
    return out_b, out_l


def _check_thresholds(min_visibility: Any, min_area: Any) -> tuple[float, float]:
    for value, name in ((min_visibility, "min_visibility"), (min_area, "min_area")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            V.fail(name, "a float", V.describe(value), kind=TypeError)
    if not 0.0 <= min_visibility <= 1.0:
        V.fail("min_visibility", "a fraction in [0, 1]", min_visibility)
    if not min_area >= 0.0:
        V.fail("min_area", "an area >= 0 (pixels)", min_area)
    return float(min_visibility), float(min_area)


class _BoxPlan(NamedTuple):
    """Which input boxes each image keeps, in output order, and where they ended up."""

    src: Tensor  # (M',) index into the concatenated input boxes
    partner: Tensor  # (M',) bool, the box comes from the partner image
    boxes: Tensor  # (M', 4) float64 output boxes
    weights: Tensor  # (M',) float32
    counts: list[int]  # boxes per output image


def _area(b: Tensor) -> Tensor:
    return (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)


def _plan_boxes(
    boxes: list[Tensor], params: MixParams, min_visibility: float, min_area: float
) -> _BoxPlan:
    n = len(boxes)
    dev = boxes[0].device
    counts = [int(b.shape[0]) for b in boxes]
    allb = torch.cat([b.to(torch.float64) for b in boxes]).view(-1, 4)
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    perm = params.perm.tolist()
    lam = params.lam.to(dev, torch.float64)
    blend = _blend_flags(params, dev)
    paste = (
        params.boxes.to(dev, torch.float64)
        if params.boxes is not None
        else torch.zeros(n, 4, dtype=torch.float64, device=dev)
    )
    paste = torch.where(blend[:, None], torch.zeros_like(paste), paste)

    # Own boxes: visible fraction = 1 - |box ∩ paste| / |box|; trimmed to the visible part's bounds.
    own_img = torch.repeat_interleave(torch.arange(n, device=dev), torch.tensor(counts, device=dev))
    b, pb = allb, paste[own_img]
    area = _area(b)
    inter = _area(
        torch.cat([torch.maximum(b[:, :2], pb[:, :2]), torch.minimum(b[:, 2:], pb[:, 2:])], 1)
    )
    cut_frac = torch.where(area > 0, 1.0 - inter / area.clamp_min(1e-300), torch.zeros_like(area))
    own_blend = blend[own_img]
    own_frac = torch.where(own_blend, lam[own_img], cut_frac)
    nonempty = (pb[:, 2] > pb[:, 0]) & (pb[:, 3] > pb[:, 1])
    full_h = nonempty & (pb[:, 1] <= b[:, 1]) & (pb[:, 3] >= b[:, 3])
    full_w = nonempty & (pb[:, 0] <= b[:, 0]) & (pb[:, 2] >= b[:, 2])
    own_out = b.clone()
    # The paste spans the box's full height and covers its left (right) end: trim x1 (x2).
    own_out[:, 0] = torch.where(
        full_h & (pb[:, 0] <= b[:, 0]) & (pb[:, 2] > b[:, 0]), pb[:, 2], b[:, 0]
    )
    own_out[:, 2] = torch.where(
        full_h & (pb[:, 2] >= b[:, 2]) & (pb[:, 0] < b[:, 2]), pb[:, 0], b[:, 2]
    )
    own_out[:, 1] = torch.where(
        full_w & (pb[:, 1] <= b[:, 1]) & (pb[:, 3] > b[:, 1]), pb[:, 3], b[:, 1]
    )
    own_out[:, 3] = torch.where(
        full_w & (pb[:, 3] >= b[:, 3]) & (pb[:, 1] < b[:, 3]), pb[:, 1], b[:, 3]
    )
    own_keep = (area > 0) & (own_frac > 0) & (own_frac >= min_visibility)

    # Partner boxes: image i receives the boxes of perm[i], clipped to the paste (blended: whole).
    src_list = [torch.arange(offsets[j], offsets[j + 1]) for j in perm]
    part_src = torch.cat(src_list).to(dev) if src_list else torch.zeros(0, dtype=torch.int64)
    part_img = torch.repeat_interleave(
        torch.arange(n, device=dev), torch.tensor([counts[j] for j in perm], device=dev)
    )
    q, pq = allb[part_src], paste[part_img]
    q_area = _area(q)
    clipped = torch.cat([torch.maximum(q[:, :2], pq[:, :2]), torch.minimum(q[:, 2:], pq[:, 2:])], 1)
    clipped = torch.cat([clipped[:, :2], torch.maximum(clipped[:, 2:], clipped[:, :2])], 1)
    q_inter = _area(clipped)
    part_blend = blend[part_img]
    part_frac = torch.where(
        part_blend,
        1.0 - lam[part_img],
        torch.where(q_area > 0, q_inter / q_area.clamp_min(1e-300), torch.zeros_like(q_area)),
    )
    part_out = torch.where(part_blend[:, None], q, clipped)
    part_keep = (q_area > 0) & (part_frac > 0) & (part_frac >= min_visibility)
    part_keep &= _area(part_out) >= min_area

    img = torch.cat([own_img, part_img])
    keep = torch.cat([own_keep, part_keep])
    is_partner = torch.cat([torch.zeros_like(own_keep), torch.ones_like(part_keep)])
    # Output order: image by image, own boxes first, each group in input order (stable sort).
    order = torch.sort(img * 2 + is_partner.long(), stable=True).indices
    order = order[keep[order]]
    src = torch.cat([torch.arange(allb.shape[0], device=dev), part_src])[order]
    out = torch.cat([own_out, part_out])[order]
    weights = torch.cat([own_frac, part_frac])[order].to(torch.float32)
    per_image = torch.bincount(img[order], minlength=n).tolist() if n else []
    return _BoxPlan(src, is_partner[order], out, weights, per_image)


def cut_boxes(
    boxes: Sequence[Tensor],
    labels: Sequence[Tensor],
    params: MixParams,
    *,
    min_visibility: float = 0.25,
    min_area: float = 1.0,
    return_weights: bool = False,
) -> tuple[list[Tensor], list[Tensor]] | MixedBoxes:
    """Boxes and box labels that match images mixed with ``params``.

    ``boxes[i]`` are ``(K_i, 4)`` XYXY pixel boxes (float or int, half-open like the paste box)
    inside image ``i``; ``labels[i]`` are its ``(K_i,)`` labels (any dtype, or ``(K_i, ...)``).
    For CutMix, with ``P`` the region pasted into image ``i``:

    - Own boxes: the visible fraction is ``1 - |box ∩ P| / |box|``; a box is kept when that is at
      least ``min_visibility`` (and above 0). A kept box becomes the tight bounds of its visible
      part: it is trimmed only when ``P`` covers one end of it over its full width or height. When
      ``P`` cuts a box in two (or bites a notch or a hole in it) the box stays one box, unchanged,
      its visible fraction counting both parts exactly.
    - Partner boxes (of ``perm[i]``) that intersect ``P`` are clipped to it; kept when
      ``|box ∩ P| / |box| >= min_visibility`` and the clipped area ``>= min_area`` (pixels²).

    Blended (MixUp) samples keep all own boxes with weight ``λ`` and gain the partner's boxes with
    weight ``1 - λ``, under the same thresholds. Zero-area input boxes are dropped. Per image the
    output lists the kept own boxes, then the partner's, each in input order; box dtype and device
    are kept. ``tv_tensors.BoundingBoxes`` in any axis-aligned format come back in their format.

    Returns:
        ``(boxes, labels)``, two lists with one tensor per image; with ``return_weights=True`` a
        :class:`MixedBoxes` ``(boxes, labels, weights)`` whose ``weights[i]`` are the float32 visible
        fractions (blend weights for MixUp) of the kept boxes.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 1.0]),
        ...               boxes=torch.tensor([[0, 0, 2, 4], [0, 0, 0, 0]]), size=(4, 4))
        >>> b = [torch.tensor([[0.0, 0.0, 4.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]])]
        >>> out = cut_boxes(b, [torch.tensor([1]), torch.tensor([2])], p, return_weights=True)
        >>> out.boxes[0].tolist(), out.labels[0].tolist(), out.weights[0].tolist()
        ([[2.0, 0.0, 4.0, 2.0], [1.0, 1.0, 2.0, 3.0]], [1, 2], [0.5, 0.5])
    """
    if not isinstance(params, MixParams):
        V.fail("params", "a cutmix.MixParams", V.describe(params), kind=TypeError)
    min_visibility, min_area = _check_thresholds(min_visibility, min_area)
    tv = isinstance(boxes, Sequence) and any(_is_tv(b) for b in boxes)
    metas: list[Any] = []
    size = params.size
    if tv:
        boxes, metas = _tvi().boxes_to_xyxy(boxes)
        if size is None:
            size = next((m.canvas_size for m in metas if m is not None), None)
    n = params.perm.shape[0]
    plain_b, plain_l = _check_box_list(boxes, labels, n, size)
    plan = _plan_boxes(plain_b, params, min_visibility, min_area)
    dtype = plain_b[0].dtype
    for b in plain_b[1:]:
        dtype = torch.promote_types(dtype, b.dtype)
    out = plan.boxes.to(dtype).split(plan.counts)
    all_labels = torch.cat(plain_l)
    lab = all_labels[plan.src.to(all_labels.device)].split(plan.counts)
    wts = plan.weights.split(plan.counts)
    out_b = list(out)
    if tv:
        out_b = _tvi().boxes_from_xyxy(out_b, metas)
    if return_weights:
        return MixedBoxes(out_b, list(lab), list(wts))
    return out_b, list(lab)


# --- one-call form -------------------------------------------------------------------------------


def _instance_masks(
    masks: list[Tensor], plan: _BoxPlan, params: MixParams, size: tuple[int, int]
) -> list[Tensor]:
    """Per-instance ``(K, H, W)`` masks following their boxes: own parts outside the paste, the
    partner's inside it (whole masks for blended samples)."""
    dev = masks[0].device
    allm = torch.cat([_plain(m) for m in masks])
    n = len(masks)
    blend = _blend_flags(params, dev)
    paste = params.boxes if params.boxes is not None else torch.zeros(n, 4, dtype=torch.int64)
    inside = _box_mask(paste.to(dev), size)[:, 0] & ~blend.view(-1, 1, 1)
    img = torch.repeat_interleave(
        torch.arange(n, device=dev), torch.tensor(plan.counts, device=dev)
    )
    region = inside[img]
    picked = allm[plan.src.to(dev)]
    part = plan.partner.to(dev).view(-1, 1, 1)
    blended = blend[img].view(-1, 1, 1)
    zero = torch.zeros_like(picked)
    keep_px = blended | torch.where(part, region, ~region)
    out = torch.where(keep_px, picked, zero)
    return list(out.split(plan.counts))


def _mix_semantic(maps: list[Tensor], params: MixParams) -> list[Tensor]:
    if params.boxes is None or params.blend is not None:
        V.fail(
            "targets",
            "semantic masks only with CutMix params (for MixUp use cutmix.dense.mix_masks)",
            "MixUp params" if params.boxes is None else "params with blended samples",
        )
    stacked = torch.stack([_plain(m) for m in maps])
    return list(cut_masks(stacked, params).unbind(0))


def _mix_target_list(
    targets: Sequence[Mapping[str, Any]],
    params: MixParams,
    size: tuple[int, int],
    min_visibility: float,
    min_area: float,
    box_keys: Sequence[str],
) -> list[dict[str, Any]]:
    n = params.perm.shape[0]
    if len(targets) != n:
        V.fail("targets", f"{n} target dicts (one per image)", len(targets))
    for i, t in enumerate(targets):
        if not isinstance(t, Mapping):
            V.fail(f"targets[{i}]", "a dict", V.describe(t), kind=TypeError)
    has_boxes = ["boxes" in t for t in targets]
    if any(has_boxes) and not all(has_boxes):
        V.fail("targets", "'boxes' in every target dict or in none", has_boxes)
    out = [dict(t) for t in targets]
    semantic = False
    if all(has_boxes):
        boxes = [t["boxes"] for t in targets]
        tv = any(_is_tv(b) for b in boxes)
        metas: list[Any] = []
        if tv:
            boxes, metas = _tvi().boxes_to_xyxy(boxes)
        labels = [
            t["labels"] if "labels" in t else torch.zeros(len(b), dtype=torch.int64)
            for t, b in zip(targets, boxes)
        ]
        plain_b, _ = _check_box_list(boxes, labels, n, size)
        plan = _plan_boxes(plain_b, params, min_visibility, min_area)
        dtype = plain_b[0].dtype
        for b in plain_b[1:]:
            dtype = torch.promote_types(dtype, b.dtype)
        new_boxes: list[Tensor] = list(plan.boxes.to(dtype).split(plan.counts))
        if tv:
            new_boxes = _tvi().boxes_from_xyxy(new_boxes, metas)
        weights = plan.weights.split(plan.counts)
        for key in box_keys:
            present = [key in t for t in targets]
            if not any(present):
                continue
            if not all(present):
                V.fail("targets", f"{key!r} in every target dict or in none", present)
            vals = [
                _plain(V.check_tensor(t[key], f"targets[{i}][{key!r}]"))
                for i, t in enumerate(targets)
            ]
            for i, (v, b) in enumerate(zip(vals, plain_b)):
                if v.dim() == 0 or v.shape[0] != b.shape[0]:
                    V.fail(
                        f"targets[{i}][{key!r}]",
                        f"{b.shape[0]} values (one per box)",
                        V.describe(v),
                    )
            cat = torch.cat(vals)
            for o, v in zip(out, cat[plan.src.to(cat.device)].split(plan.counts)):
                o[key] = v
        for i, o in enumerate(out):
            o["boxes"] = new_boxes[i]
            o["box_weights"] = weights[i]
        masks = [t.get("masks") for t in targets]
        present = [m is not None for m in masks]
        if any(present) and not all(present):
            V.fail("targets", "'masks' in every target dict or in none", present)
        if all(present):
            for i, m in enumerate(masks):
                V.check_tensor(m, f"targets[{i}]['masks']")
            if all(m.dim() == 3 and m.shape[0] == b.shape[0] for m, b in zip(masks, plain_b)):
                for i, m in enumerate(masks):
                    _check_dense_size(m, size, f"targets[{i}]['masks']")
                mixed = _instance_masks(masks, plan, params, size)
                for o, m, src in zip(out, mixed, masks):
                    o["masks"] = _tvi().wrap_like(m, src) if _is_tv(src) else m
            elif all(m.dim() == 2 for m in masks):
                semantic = True
            else:
                V.fail(
                    "targets",
                    "'masks' as per-instance (K, H, W) with one mask per box, or (H, W) class maps",
                    [tuple(m.shape) for m in masks],
                )
    else:
        semantic = any("masks" in t for t in targets)
    if semantic:
        masks = [t.get("masks") for t in targets]
        if any(m is None for m in masks):
            V.fail(
                "targets", "'masks' in every target dict or in none", [m is not None for m in masks]
            )
        for i, m in enumerate(masks):
            V.check_tensor(m, f"targets[{i}]['masks']")
            _check_dense_size(m, size, f"targets[{i}]['masks']")
        mixed = _mix_semantic(masks, params)
        for o, m, src in zip(out, mixed, masks):
            o["masks"] = _tvi().wrap_like(m, src) if _is_tv(src) else m
    return out


def _check_dense_size(m: Tensor, size: tuple[int, int], name: str) -> None:
    if m.is_floating_point() or m.is_complex():
        V.fail(name, "integer (or bool) masks, not floats", V.describe(m), kind=TypeError)
    if tuple(m.shape[-2:]) != tuple(size):
        V.fail(name, f"masks of the images' size {tuple(size)} (H, W)", V.describe(m))


def mix_batch(
    images: Tensor,
    targets: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    params: MixParams,
    *,
    min_visibility: float = 0.25,
    min_area: float = 1.0,
    box_keys: Sequence[str] = BOX_KEYS,
) -> tuple[Tensor, Any]:
    """Mix a detection / segmentation batch with ``params``: images and every target, consistently.

    ``images`` is one ``(N, C, H, W)`` batch (stack or pad images to one size first). ``targets`` is

    - a list of ``N`` dicts, as in torchvision's detection references: ``"boxes"`` ``(K, 4)`` XYXY,
      per-box entries named in ``box_keys`` (``"labels"``, ``"iscrowd"``, ``"area"``; they follow
      their boxes, values unchanged), ``"masks"`` either per-instance ``(K, H, W)`` (one per box:
      own instances lose the pasted pixels, partner instances keep only those) or an ``(H, W)``
      class map. A ``"box_weights"`` entry (see :func:`cut_boxes`) is added; other entries (e.g.
      ``"image_id"``) are copied from the receiving image unchanged;
    - or one dict of batch entries: ``"masks"`` ``(N, H, W)`` / ``(N, 1, H, W)`` class maps and / or
      ``"boxes"`` and ``"labels"`` lists; any other key is an error (it could not be mixed).

    MixUp params are supported for boxes and instance masks (own with weight ``λ``, partner's with
    ``1 - λ``); class maps need :func:`mix_masks` then. The inputs are not modified; tv_tensors come
    back as the same types. Returns ``(mixed_images, mixed_targets)`` of the same structure.

    Example:
        >>> import cutmix
        >>> images = torch.rand(2, 3, 8, 8)
        >>> targets = [{"boxes": torch.tensor([[0.0, 0.0, 8.0, 4.0]]), "labels": torch.tensor([1])},
        ...            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
        >>> p = cutmix.sample_cutmix(2, (8, 8), generator=torch.Generator().manual_seed(0))
        >>> x, t = mix_batch(images, targets, p)
        >>> sorted(t[0])
        ['box_weights', 'boxes', 'labels']
    """
    V.check_images(images)
    if not isinstance(params, MixParams):
        V.fail("params", "a cutmix.MixParams", V.describe(params), kind=TypeError)
    min_visibility, min_area = _check_thresholds(min_visibility, min_area)
    plain_images = _plain(images)
    V.check_params(params, plain_images)
    size = (int(images.shape[-2]), int(images.shape[-1]))
    mixed = _apply_images(plain_images, params)
    if _is_tv(images):
        mixed = _tvi().wrap_like(mixed, images)
    if isinstance(targets, Mapping):
        extra = sorted(set(targets) - {"boxes", "labels", "masks"})
        if extra:
            V.fail("targets", "a dict with keys 'boxes', 'labels', 'masks'", f"keys {extra}")
        out: dict[str, Any] = {}
        if "masks" in targets:
            m = targets["masks"]
            V.check_tensor(m, "targets['masks']")
            _check_dense_size(m, size, "targets['masks']")
            out["masks"] = cut_masks(m, params)
        if "boxes" in targets:
            if "labels" not in targets:
                V.fail("targets", "'labels' (one tensor per image) with 'boxes'", "no 'labels'")
            res = cut_boxes(
                targets["boxes"],
                targets["labels"],
                params,
                min_visibility=min_visibility,
                min_area=min_area,
                return_weights=True,
            )
            assert isinstance(res, MixedBoxes)
            out["boxes"], out["labels"], out["box_weights"] = res.boxes, res.labels, res.weights
        elif "labels" in targets:
            V.fail("targets", "'labels' only together with 'boxes' (per-box labels)", "no 'boxes'")
        return mixed, out
    if not isinstance(targets, Sequence) or isinstance(targets, (str, Tensor)):
        V.fail("targets", "a list of dicts or a dict", V.describe(targets), kind=TypeError)
    return mixed, _mix_target_list(targets, params, size, min_visibility, min_area, box_keys)


class DenseMix:
    """A callable that samples params with ``mix`` and applies them with :func:`mix_batch`.

    Use it after batching (in a ``collate_fn`` or the training loop), also in a torchvision v2
    pipeline: tv_tensors in, the same types out.

    Args:
        mix: a :class:`~cutmix.CutMix`, :class:`~cutmix.MixUp` or :class:`~cutmix.RandomMix`.
        min_visibility: see :func:`cut_boxes`.
        min_area: see :func:`cut_boxes`.

    Example:
        >>> import cutmix
        >>> dm = DenseMix(cutmix.CutMix(1.0))
        >>> x, t = dm(torch.rand(2, 3, 8, 8), {"masks": torch.zeros(2, 8, 8, dtype=torch.long)},
        ...           generator=torch.Generator().manual_seed(0))
        >>> t["masks"].shape
        torch.Size([2, 8, 8])
    """

    def __init__(self, mix: Any, *, min_visibility: float = 0.25, min_area: float = 1.0) -> None:
        from cutmix.transforms import CutMix, MixUp, RandomMix

        if not isinstance(mix, (CutMix, MixUp, RandomMix)):
            V.fail("mix", "a CutMix, MixUp or RandomMix", V.describe(mix), kind=TypeError)
        self.mix = mix
        self.min_visibility, self.min_area = _check_thresholds(min_visibility, min_area)
        self.last_params: MixParams | None = None

    def __call__(
        self,
        images: Tensor,
        targets: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Any]:
        """Mix ``images`` and ``targets``; the params used are kept in ``last_params``."""
        params = self.mix.sample(_plain(images), generator=generator)
        self.last_params = params
        return mix_batch(
            images,
            targets,
            params,
            min_visibility=self.min_visibility,
            min_area=self.min_area,
        )

    def __repr__(self) -> str:
        return (
            f"DenseMix({self.mix!r}, min_visibility={self.min_visibility}, "
            f"min_area={self.min_area})"
        )
