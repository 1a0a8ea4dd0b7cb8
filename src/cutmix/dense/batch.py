"""The one-call form for detection / segmentation batches: :func:`mix_batch`, :class:`DenseMix`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix.functional import apply_images, box_mask
from cutmix.functional._common import _blend_flags, _check_thresholds, _is_tv, _plain
from cutmix.functional.boxes import MixedBoxes, _BoxPlan, _check_box_list, _plan_boxes, cut_boxes
from cutmix.functional.masks import cut_masks
from cutmix.interop import torchvision as tvi
from cutmix.params import MixParams, check_params
from cutmix.transforms import CutMix, MixUp, RandomMix

__all__ = ["BOX_KEYS", "DenseMix", "mix_batch"]

#: Per-box entries of a detection target dict that follow their boxes (selected, reordered).
BOX_KEYS: tuple[str, ...] = ("labels", "iscrowd", "area")


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
    inside = box_mask(paste.to(dev), size)[:, 0] & ~blend.view(-1, 1, 1)
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
            boxes, metas = tvi.boxes_to_xyxy(boxes)
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
            new_boxes = tvi.boxes_from_xyxy(new_boxes, metas)
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
        masks: list[Any] = [t.get("masks") for t in targets]
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
                    o["masks"] = tvi.wrap_like(m, src) if _is_tv(src) else m
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
            o["masks"] = tvi.wrap_like(m, src) if _is_tv(src) else m
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
    check_params(params, plain_images)
    size = (int(images.shape[-2]), int(images.shape[-1]))
    mixed = apply_images(plain_images, params)
    if _is_tv(images):
        mixed = tvi.wrap_like(mixed, images)
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
