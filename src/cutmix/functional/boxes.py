"""Detection boxes: :func:`cut_boxes` keeps, clips and weighs boxes as the pasted region dictates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix.functional._common import _blend_flags, _check_thresholds, _is_tv, _plain
from cutmix.interop import torchvision as tvi
from cutmix.params import MixParams

__all__ = ["MixedBoxes", "cut_boxes"]


class MixedBoxes(NamedTuple):
    """Boxes after mixing, per image: ``boxes[i]`` ``(K'_i, 4)``, ``labels[i]``, ``weights[i]``.

    ``weights`` are float32 visible fractions (CutMix) or blend weights (MixUp) of each kept box.
    """

    boxes: list[Tensor]
    labels: list[Tensor]
    weights: list[Tensor]


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
        if b.device.type == "meta":  # their values are read below (and by the box plan)
            V.fail(f"boxes[{i}]", "boxes on a real device (boxes are computed on the host)", "meta")
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
        boxes, metas = tvi.boxes_to_xyxy(boxes)
        if size is None:
            size = next((m.canvas_size for m in metas if m is not None), None)
    n = params.perm.shape[0]
    if params.device.type == "meta":
        V.fail("params", "params on a real device (boxes are computed on the host)", "on meta")
    params._check_values(size)
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
        out_b = tvi.boxes_from_xyxy(out_b, metas)
    if return_weights:
        return MixedBoxes(out_b, list(lab), list(wts))
    return out_b, list(lab)
