"""torchvision ``transforms.v2``: ``CutMix`` and ``MixUp`` as v2 transforms, on cutmix's kernels.

They take ``v2.CutMix``'s arguments (``alpha``, ``num_classes``, ``labels_getter``) plus cutmix's
(``p``, ``mode``, ``placement``, ``area_bounds``, ``own_dominant``, ``label_smoothing``, ...), accept
the structures ``v2.CutMix`` accepts (``(images, labels)``, a dict, ...) and return the same
structure with the same tv_tensor types; uint8 stays uint8. Unlike ``v2.CutMix`` they also take

- ``tv_tensors.Video`` batches ``(N, T, C, H, W)``: one box (or λ) per clip, the same in every frame;
- detection / segmentation targets: ``(images, [per-image dicts with "boxes", "labels", "masks"])``
  or batch class maps (``tv_tensors.Mask`` of shape ``(N, H, W)``) anywhere in the structure, mixed
  as :class:`cutmix.DenseMix` does (boxes cut at the pasted region, a ``"box_weights"`` entry added).

A following ``v2.SanitizeBoundingBoxes`` (per image) filters ``"labels"`` but not ``"box_weights"``
with its default ``labels_getter``; pass ``labels_getter=box_labels_getter`` (this module) to keep
every per-box entry aligned with the boxes.

Example:
    >>> import torch
    >>> from torchvision import tv_tensors
    >>> from cutmix.integrations.torchvision import CutMix
    >>> images = tv_tensors.Image(torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8))
    >>> x, t = CutMix(num_classes=10)(images, torch.tensor([0, 1, 2, 3]))
    >>> type(x).__name__, x.dtype, t.shape
    ('Image', torch.uint8, torch.Size([4, 10]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

import cutmix
from cutmix.functional import apply_images, mix_labels
from cutmix.integrations._common import describe, fail

try:
    from torchvision import tv_tensors
    from torchvision.transforms import v2 as _v2
except ImportError as err:  # pragma: no cover - only without torchvision
    raise ImportError(
        "cutmix.integrations.torchvision needs torchvision: pip install 'cutmix[torchvision]'"
    ) from err

__all__ = ["BOX_ENTRIES", "CutMix", "MixUp", "box_labels_getter"]

#: The per-box entries :func:`box_labels_getter` hands to ``v2.SanitizeBoundingBoxes``.
BOX_ENTRIES: tuple[str, ...] = ("labels", "box_weights", "iscrowd", "area")


def box_labels_getter(inputs: Any) -> tuple[Tensor, ...] | None:
    """``labels_getter`` for ``v2.SanitizeBoundingBoxes`` after a mix: every per-box entry.

    Takes what SanitizeBoundingBoxes takes (a ``(image, target)`` pair or a dict) and returns the
    entries of the target dict named in :data:`BOX_ENTRIES` (``labels``, ``box_weights``, ...), so
    that they are filtered with the boxes.

    Example:
        >>> from torchvision.transforms import v2
        >>> sanitize = v2.SanitizeBoundingBoxes(labels_getter=box_labels_getter)
    """
    target = inputs[1] if isinstance(inputs, (tuple, list)) and len(inputs) >= 2 else inputs
    if not isinstance(target, Mapping):
        fail("inputs", "(image, target dict) or a dict", describe(inputs), kind=TypeError)
    found = tuple(target[k] for k in BOX_ENTRIES if isinstance(target.get(k), Tensor))
    return found or None


def _default_labels(inputs: Any) -> Tensor | None:
    """v2.CutMix's default: the second item, or a 'labels' / '*label*' key of a dict."""
    if isinstance(inputs, (tuple, list)):
        if len(inputs) < 2:
            return None
        inputs = inputs[1]
        if isinstance(inputs, Tensor) and not isinstance(inputs, tv_tensors.TVTensor):
            return inputs
    if not isinstance(inputs, Mapping):
        return None
    keys = [k for k in inputs if isinstance(k, str)]
    key = next((k for k in keys if k.lower() == "labels"), None)
    key = key or next((k for k in keys if "label" in k.lower()), None)
    value = inputs.get(key) if key is not None else None
    return value if isinstance(value, Tensor) else None


def _is_image(leaf: Any) -> bool:
    return isinstance(leaf, (tv_tensors.Image, tv_tensors.Video))


def _find_images(flat: list[Any], labels: Tensor | None) -> Tensor:
    tv = [leaf for leaf in flat if _is_image(leaf)]
    if len(tv) > 1:
        fail("inputs", "one batch of images (Image or Video)", f"{len(tv)} of them")
    if tv:
        return tv[0]
    plain = [
        leaf
        for leaf in flat
        if isinstance(leaf, Tensor)
        and not isinstance(leaf, tv_tensors.TVTensor)
        and leaf is not labels
        and leaf.dim() == 4
    ]
    if not plain:
        fail("inputs", "a batch of images (N, C, H, W) or a Video", "none", kind=TypeError)
    return plain[0]


def _per_image_targets(node: Any, n: int) -> bool:
    return (
        isinstance(node, (list, tuple))
        and len(node) == n
        and all(isinstance(t, Mapping) for t in node)
        and any(("boxes" in t or "masks" in t) for t in node)
    )


class _MixTransform(_v2.Transform):  # type: ignore[misc]
    _mix: cutmix.CutMix | cutmix.MixUp

    def __init__(
        self,
        mix: cutmix.CutMix | cutmix.MixUp,
        num_classes: int | None,
        labels_getter: str | Callable[[Any], Any] | None,
        min_visibility: float,
        min_area: float,
    ) -> None:
        super().__init__()
        self._mix = mix
        if labels_getter == "default":
            self._labels_getter: Callable[[Any], Any] = _default_labels
        elif callable(labels_getter):
            self._labels_getter = labels_getter
        elif labels_getter is None:
            self._labels_getter = lambda _: None
        else:
            fail("labels_getter", "'default', a callable or None", describe(labels_getter))
        self.num_classes = num_classes
        self._dense = cutmix.DenseMix(self._mix, min_visibility=min_visibility, min_area=min_area)
        self.last_params: cutmix.MixParams | None = None

    def forward(self, *inputs: Any) -> Any:
        if not inputs:
            fail("inputs", "a batch: (images, labels), a dict, ...", "nothing", kind=TypeError)
        inputs = inputs if len(inputs) > 1 else inputs[0]
        flat = self._flatten(inputs)
        labels = self._labels_getter(inputs)
        if labels is not None and not isinstance(labels, Tensor):
            fail("labels", "a tensor (from labels_getter)", describe(labels), kind=TypeError)
        images = _find_images(flat, labels)
        video = isinstance(images, tv_tensors.Video)
        want = 5 if video else 4
        if images.dim() != want:
            fail("images", f"a batched {'Video (N, T, C, H, W)' if video else '(N, C, H, W)'}",
                 describe(images))  # fmt: skip
        plain = images.as_subclass(Tensor)
        n = plain.shape[0]
        if labels is not None and (labels.dim() not in (1, 2) or labels.shape[0] != n):
            fail("labels", f"(N,) class ids or (N, C) rows with N = {n}", describe(labels))
        if labels is not None and labels.dim() == 1 and self.num_classes is None:
            fail("num_classes", "an int when the labels are class ids", None)
        dense = any(isinstance(x, (tv_tensors.BoundingBoxes, tv_tensors.Mask)) for x in flat)
        if labels is None and not dense:
            fail("labels", "a labels tensor (see labels_getter) or boxes / masks", "none")
        flat4 = plain.reshape(n, -1, *plain.shape[-2:]) if video else plain
        # The labels reach the sampler for partner_weights (partners picked by class weight).
        params = self._mix.sample(flat4, labels=labels)
        self.last_params = params
        mixed = apply_images(flat4, params).view(plain.shape)
        mixed = tv_tensors.wrap(mixed, like=images) if _is_image(images) else mixed
        targets = None
        if labels is not None:
            targets = mix_labels(
                labels, params, self.num_classes, label_smoothing=self._mix.label_smoothing
            )
        return self._rebuild(inputs, images, mixed, labels, targets, flat4, params, n)

    @staticmethod
    def _flatten(inputs: Any) -> list[Any]:
        from torch.utils._pytree import tree_flatten

        return tree_flatten(inputs)[0]

    def _rebuild(
        self,
        node: Any,
        images: Tensor,
        mixed: Tensor,
        labels: Tensor | None,
        targets: Tensor | None,
        flat4: Tensor,
        params: cutmix.MixParams,
        n: int,
    ) -> Any:
        def walk(node: Any) -> Any:
            if node is images:
                return mixed
            if labels is not None and node is labels:
                return targets
            if _per_image_targets(node, n):
                out = self._dense_targets(flat4, list(node), params)
                return type(node)(out) if isinstance(node, tuple) else out
            if isinstance(node, tv_tensors.Mask):
                if node.shape[0] != n or node.dim() not in (3, 4):
                    fail("masks", f"batch class maps (N, H, W) with N = {n}", describe(node))
                return self._dense_targets(flat4, {"masks": node}, params)["masks"]
            if isinstance(node, tv_tensors.BoundingBoxes):
                fail("inputs", "boxes inside per-image target dicts (images, [dict, ...])",
                     "BoundingBoxes outside of them")  # fmt: skip
            if isinstance(node, Mapping):
                return type(node)({k: walk(v) for k, v in node.items()})  # type: ignore[call-arg]
            if isinstance(node, list):
                return [walk(v) for v in node]
            if isinstance(node, tuple) and not hasattr(node, "_fields"):
                return tuple(walk(v) for v in node)
            return node

        return walk(node)

    def _dense_targets(self, flat4: Tensor, targets: Any, params: cutmix.MixParams) -> Any:
        _, out = cutmix.mix_batch(
            flat4,
            targets,
            params,
            min_visibility=self._dense.min_visibility,
            min_area=self._dense.min_area,
        )
        return out

    def extra_repr(self) -> str:
        return repr(self._mix)


class CutMix(_MixTransform):
    """CutMix as a ``torchvision.transforms.v2`` transform (see the module docstring).

    Args:
        alpha, num_classes, labels_getter: as ``v2.CutMix``.
        p, mode, placement, area_bounds, own_dominant, label_smoothing, partner_weights,
            strategy: as :class:`cutmix.CutMix`.
        min_visibility, min_area: for boxes, as :func:`cutmix.cut_boxes`.

    Example:
        >>> import torch
        >>> x, t = CutMix(num_classes=3, p=0.5)(torch.rand(2, 3, 4, 4), torch.tensor([0, 2]))
        >>> t.shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: int | None = None,
        labels_getter: str | Callable[[Any], Any] | None = "default",
        p: float = 1.0,
        mode: str = "sample",
        placement: str = "center",
        area_bounds: tuple[float, float] | None = None,
        own_dominant: bool = False,
        label_smoothing: float = 0.0,
        partner_weights: Any = None,
        strategy: str = "auto",
        min_visibility: float = 0.25,
        min_area: float = 1.0,
    ) -> None:
        mix = cutmix.CutMix(
            alpha,
            num_classes,
            p=p,
            mode=mode,  # type: ignore[arg-type]
            placement=placement,  # type: ignore[arg-type]
            area_bounds=area_bounds,
            own_dominant=own_dominant,
            label_smoothing=label_smoothing,
            partner_weights=partner_weights,
            strategy=strategy,
        )
        super().__init__(mix, num_classes, labels_getter, min_visibility, min_area)


class MixUp(_MixTransform):
    """MixUp as a ``torchvision.transforms.v2`` transform (see the module docstring).

    Args:
        alpha, num_classes, labels_getter: as ``v2.MixUp``.
        p, mode, own_dominant, label_smoothing, partner_weights: as :class:`cutmix.MixUp`.

    Example:
        >>> import torch
        >>> x, t = MixUp(num_classes=3)(torch.rand(2, 3, 4, 4), torch.tensor([0, 2]))
        >>> t.shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: int | None = None,
        labels_getter: str | Callable[[Any], Any] | None = "default",
        p: float = 1.0,
        mode: str = "sample",
        own_dominant: bool = False,
        label_smoothing: float = 0.0,
        partner_weights: Any = None,
        min_visibility: float = 0.25,
        min_area: float = 1.0,
    ) -> None:
        mix = cutmix.MixUp(
            alpha,
            num_classes,
            p=p,
            mode=mode,  # type: ignore[arg-type]
            own_dominant=own_dominant,
            label_smoothing=label_smoothing,
            partner_weights=partner_weights,
        )
        super().__init__(mix, num_classes, labels_getter, min_visibility, min_area)
