"""torchvision ``tv_tensors`` interop: ``Image``, ``BoundingBoxes`` (any axis-aligned format), ``Mask``.

You rarely call this module yourself: :func:`cutmix.dense.mix_batch`, :class:`cutmix.dense.DenseMix`,
:func:`cutmix.dense.cut_boxes` and :func:`cutmix.dense.cut_masks` detect tv_tensors and use it. Boxes
are converted to XYXY for the geometry and back to their own format, keeping ``canvas_size``; masks
and images come back wrapped as the types that came in. So CutMix fits a ``torchvision.transforms.v2``
detection / segmentation pipeline (torchvision's own ``v2.CutMix`` refuses boxes and masks):

Example:
    >>> import torch, cutmix
    >>> from torchvision import tv_tensors
    >>> from cutmix.dense import DenseMix
    >>> images = tv_tensors.Image(torch.rand(2, 3, 8, 8))
    >>> targets = [{"boxes": tv_tensors.BoundingBoxes(torch.tensor([[1.0, 1.0, 4.0, 4.0]]),
    ...             format="XYWH", canvas_size=(8, 8)), "labels": torch.tensor([3])}
    ...            for _ in range(2)]
    >>> x, t = DenseMix(cutmix.CutMix(1.0))(images, targets, torch.Generator().manual_seed(0))
    >>> type(x).__name__, type(t[0]["boxes"]).__name__, t[0]["boxes"].format.name
    ('Image', 'BoundingBoxes', 'XYWH')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from cutmix import _validate as V

__all__ = ["AXIS_ALIGNED", "boxes_from_xyxy", "boxes_to_xyxy", "wrap_like"]

#: The BoundingBoxFormat names cutmix handles (rotated formats are refused).
AXIS_ALIGNED: tuple[str, ...] = ("XYXY", "XYWH", "CXCYWH")


def _tv() -> tuple[Any, Any]:
    try:
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as F
    except ImportError as err:  # pragma: no cover - only without torchvision
        raise ImportError(
            "cutmix.interop.torchvision needs torchvision: pip install 'cutmix[vision]'"
        ) from err
    return tv_tensors, F


def wrap_like(tensor: Tensor, like: Tensor) -> Tensor:
    """``tensor`` as the tv_tensor type of ``like`` (plain tensors pass through unchanged).

    Example:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> type(wrap_like(torch.zeros(1, 2, 2), tv_tensors.Mask(torch.ones(1, 2, 2)))).__name__
        'Mask'
    """
    tv_tensors, _ = _tv()
    if isinstance(like, tv_tensors.TVTensor):
        return tv_tensors.wrap(tensor, like=like)
    return tensor


def boxes_to_xyxy(boxes: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Plain XYXY tensors from per-image boxes, and each one's ``BoundingBoxes`` (or ``None``).

    Example:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> b = tv_tensors.BoundingBoxes(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), format="XYWH",
        ...                              canvas_size=(8, 8))
        >>> xyxy, metas = boxes_to_xyxy([b])
        >>> xyxy[0].tolist(), metas[0].format.name
        ([[1.0, 2.0, 4.0, 6.0]], 'XYWH')
    """
    tv_tensors, F = _tv()
    plain: list[Any] = []
    metas: list[Any] = []
    for i, b in enumerate(boxes):
        if not isinstance(b, tv_tensors.BoundingBoxes):
            plain.append(b)
            metas.append(None)
            continue
        if b.format.name not in AXIS_ALIGNED:
            V.fail(f"boxes[{i}]", "axis-aligned boxes (XYXY, XYWH or CXCYWH)", b.format.name)
        xyxy = F.convert_bounding_box_format(b, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        plain.append(xyxy.as_subclass(Tensor))
        metas.append(b)
    return plain, metas


def boxes_from_xyxy(boxes: Sequence[Tensor], metas: Sequence[Any]) -> list[Any]:
    """Back to each image's ``BoundingBoxes`` format and canvas (``None`` metas: plain tensors).

    Example:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> meta = tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="CXCYWH", canvas_size=(8, 8))
        >>> out = boxes_from_xyxy([torch.tensor([[0.0, 0.0, 4.0, 2.0]])], [meta])
        >>> out[0].tolist(), out[0].format.name, out[0].canvas_size
        ([[2.0, 1.0, 4.0, 2.0]], 'CXCYWH', (8, 8))
    """
    tv_tensors, F = _tv()
    out: list[Any] = []
    for b, meta in zip(boxes, metas):
        if meta is None:
            out.append(b)
            continue
        xyxy = tv_tensors.wrap(b, like=meta, format=tv_tensors.BoundingBoxFormat.XYXY)
        out.append(F.convert_bounding_box_format(xyxy, new_format=meta.format))
    return out
