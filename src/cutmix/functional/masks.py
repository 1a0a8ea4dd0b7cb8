"""Segmentation class maps: :func:`cut_masks`, :func:`mix_masks`, :func:`mixed_mask_cross_entropy`."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from cutmix import _validate as V
from cutmix.functional._common import _blend_flags, _is_tv, _plain
from cutmix.functional._images import box_mask
from cutmix.interop import torchvision as tvi
from cutmix.params import MixParams

__all__ = ["MaskMix", "cut_masks", "mix_masks", "mixed_mask_cross_entropy"]


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


def _check_masks(masks: Any, params: MixParams, name: str = "masks") -> Tensor:
    """``(N, H, W)`` view of integer / bool class maps that fit ``params``."""
    if not isinstance(params, MixParams):
        V.fail("params", "a cutmix.MixParams", V.describe(params), kind=TypeError)
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
    params._check_values(tuple(maps.shape[-2:]))
    return maps


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
    inside = box_mask(params.boxes, (plain.shape[-2], plain.shape[-1]))[:, 0]
    out = torch.where(inside, plain.index_select(0, params.perm), plain).view(masks.shape)
    return tvi.wrap_like(out, masks) if _is_tv(masks) else out


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
        size = (maps.shape[-2], maps.shape[-1])
        inside = box_mask(params.boxes, size)[:, 0] & ~blend.view(-1, 1, 1)
        own = torch.where(inside, partner, maps)
        partner = torch.where(blend.view(-1, 1, 1), partner, own)
    lam = torch.where(blend, params.lam.float(), torch.ones_like(params.lam, dtype=torch.float32))
    own, partner = own.reshape(masks.shape), partner.reshape(masks.shape)
    if _is_tv(masks):
        own, partner = tvi.wrap_like(own, masks), tvi.wrap_like(partner, masks)
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
