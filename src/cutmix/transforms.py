"""Batch transforms: configuration + ``sample()`` + ``apply()`` + ``__call__``.

Each transform is a small, picklable object (it works inside DataLoader workers). ``sample`` draws
:class:`~cutmix.MixParams` for a batch, ``apply`` turns params into mixed images and float32 soft
targets, and ``__call__`` does both. Set ``enabled = False`` (for the last epochs of a schedule) and
the transform passes images through and returns plain (optionally smoothed) one-hot targets.

Example:
    >>> import torch, cutmix
    >>> mix = cutmix.CutMix(alpha=1.0, num_classes=10)
    >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    >>> mixed, targets = mix(images, labels, generator=torch.Generator().manual_seed(0))
    >>> mixed.shape, targets.shape, targets.sum(1).allclose(torch.ones(8))
    (torch.Size([8, 3, 32, 32]), torch.Size([8, 10]), True)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix.functional import OPT_IN_STRATEGIES, STRATEGIES
from cutmix.functional._images import (
    _apply,
    _check_call,
    _check_images,
    _check_labels,
    _mix_labels,
    _one_thread,
)
from cutmix.params import (
    ClassWeights,
    MixParams,
    Mode,
    Placement,
    _cutmix,
    _mixup,
    _resolve_device,
    check_class_weights,
    identity_params,
)

__all__ = ["CutMix", "MixUp", "RandomMix"]


def _keep_tv_type(mixed: Tensor, like: Tensor) -> Tensor:
    """``mixed`` as the torchvision tv_tensor type of ``like`` (Image in, Image out)."""
    if type(like) is Tensor or type(mixed) is type(like):
        return mixed
    if not type(like).__module__.startswith("torchvision."):
        return mixed
    from torchvision import tv_tensors

    return tv_tensors.wrap(mixed, like=like)


def _check_drawable(images: Tensor) -> None:
    """Params are drawn for ``(H, W)``: an empty image is refused here, naming ``images`` (the
    sampler would name a ``params.size`` the caller never gave)."""
    if images.shape[-2] < 1 or images.shape[-1] < 1:
        V.fail("images", "H and W of at least 1 pixel", V.describe(images))


class _Mix:
    """Shared behaviour: label handling, the on/off switch, ``apply`` and ``__call__``."""

    strategy: str = "auto"  # the cut_images kernel (CutMix's ``strategy=``)
    multi_label: bool = False  # smooth each class toward 1/2 (BCE targets), not toward 1/C

    def __init__(
        self,
        num_classes: int | None,
        label_smoothing: float,
        enabled: bool,
        inplace: bool,
    ) -> None:
        self.num_classes = V.check_num_classes(num_classes)
        self.label_smoothing = V.check_smoothing(label_smoothing)
        self.enabled = bool(enabled)
        self.inplace = bool(inplace)

    def sample(
        self,
        images: Tensor,
        generator: torch.Generator | None = None,
        *,
        labels: Tensor | None = None,
    ) -> MixParams:
        """Draw params for ``images`` (its batch size, size and device).

        ``labels`` are needed only with ``partner_weights`` (partners picked by class weight).
        """
        _check_drawable(V.check_images(images))
        return self._draw(images, generator, labels)

    def _draw(
        self, images: Tensor, generator: torch.Generator | None, labels: Tensor | None
    ) -> MixParams:
        """:meth:`sample` on checked images; settings were checked by ``__init__``."""
        raise NotImplementedError

    def _identity(self, images: Tensor, boxes: bool) -> MixParams:
        return identity_params(
            images.shape[0], (images.shape[-2], images.shape[-1]), boxes=boxes, device=images.device
        )

    def apply(self, images: Tensor, labels: Tensor, params: MixParams) -> tuple[Tensor, Tensor]:
        """Mix ``images`` and turn ``labels`` into float32 ``(N, C)`` targets with ``params``.

        A torchvision ``tv_tensors.Image`` comes back as an ``Image``, as from ``__call__``.

        The targets come first: labels (class range included) are checked before any image is
        written, so ``inplace=True`` never leaves the caller's images half-mixed by a bad label.
        """
        given = images
        images = _check_call(images, params, self.inplace, None)
        targets = self._targets(labels, params)
        mixed = _apply(images, params, self.inplace, None, self.strategy)
        return _keep_tv_type(mixed, given), targets

    def __call__(
        self, images: Tensor, labels: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sample params for this batch and apply them; returns ``(images, soft_targets)``.

        A torchvision ``tv_tensors.Image`` comes back as an ``Image`` (plain tensors stay plain).
        """
        # Each input is checked once: images here, labels by mix_labels (before any image is
        # written); params drawn by the library are valid by construction.
        given = images
        images = _check_images(images, self.inplace, None)
        _check_drawable(images)
        if isinstance(labels, Tensor) and labels.device != images.device:
            V.fail("labels", f"labels on {images.device} (where the images are)", labels.device)
        # The draws and the targets are ops on (N,)- and (N, C)-sized tensors: on CPU a parallel
        # region for them waits at a barrier for a descheduled thread under load (benchmarks/run.py
        # --load), so they run single-threaded like the CPU image kernels.
        with _one_thread() if images.device.type == "cpu" else contextlib.nullcontext():
            params = self._draw(images, generator, labels)
            targets = self._targets(labels, params)
        mixed = _apply(images, params, self.inplace, None, self.strategy)
        return _keep_tv_type(mixed, given), targets

    def _targets(self, labels: Tensor, params: MixParams) -> Tensor:
        """:func:`mix_labels` for params already checked (or drawn by the library)."""
        classes = _check_labels(labels, params, self.num_classes)
        return _mix_labels(labels, params, classes, self.label_smoothing, None, self.multi_label)

    def _options(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        opts = {**self._options(), "num_classes": self.num_classes}
        if self.label_smoothing:
            opts["label_smoothing"] = self.label_smoothing
        if self.multi_label:
            opts["multi_label"] = True
        if not self.enabled:
            opts["enabled"] = False
        text = ", ".join(f"{k}={v!r}" for k, v in opts.items())
        return f"{type(self).__name__}({text})"


class _Sampled(_Mix):
    """Shared options of CutMix and MixUp: α, p, mode, own-dominant λ and partner weighting."""

    def __init__(
        self,
        alpha: float,
        num_classes: int | None,
        p: float,
        mode: Mode,
        own_dominant: bool,
        label_smoothing: float,
        enabled: bool,
        inplace: bool,
        partner_weights: ClassWeights,
    ) -> None:
        super().__init__(num_classes, label_smoothing, enabled, inplace)
        self.partner_weights = check_class_weights(
            partner_weights, self.num_classes, "partner_weights"
        )
        self.alpha = V.check_alpha(alpha)
        self.p = V.check_probability(p)
        self.mode = V.check_mode(mode)
        if self.partner_weights is not None and self.mode == "pair":  # else every call raised
            V.fail("mode", "'sample' or 'batch' with partner_weights (pairs are not weighted)",
                   "'pair'")  # fmt: skip
        self.own_dominant = bool(own_dominant)

    def _sampling(
        self, images: Tensor, generator: torch.Generator | None, labels: Tensor | None
    ) -> tuple[Any, ...]:
        """The arguments every private sampler takes after its own, for this batch."""
        return (
            self.alpha,
            self.p,
            self.mode,
            self.own_dominant,
            generator,
            _resolve_device(images.device, generator),
            labels if self.partner_weights is not None else None,
            self.partner_weights,
        )

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"alpha": self.alpha, "p": self.p, "mode": self.mode}
        if self.own_dominant:
            opts["own_dominant"] = True
        if self.partner_weights is not None:
            opts["partner_weights"] = self.partner_weights
        return opts


class CutMix(_Sampled):
    """CutMix (Yun et al., 2019): paste a box from a partner; label weights = pixel fractions.

    Args:
        alpha: Beta(alpha, alpha) concentration of the cut fraction.
        num_classes: class count, required when labels are class ids.
        p: probability that a sample (the batch, in ``"batch"`` mode) is mixed at all.
        mode: ``"sample"`` (own box per sample), ``"pair"`` (pairs swap one box) or ``"batch"``.
        placement: ``"center"`` (uniform centre, clipped: the paper) or ``"inside"``.
        area_bounds: optional ``(lo, hi)`` range of the box's target area fraction.
        own_dominant: use ``max(λ, 1 - λ)`` so each image keeps at least half of itself.
        label_smoothing: applied to the mixed targets: ``t · (1 - ε) + ε / C``.
        multi_label: multi-hot targets for a per-class (BCE) loss: smoothing is then per class,
            ``t · (1 - ε) + ε / 2`` (timm's ``multi_label=True``). Also on MixUp and RandomMix.
        enabled: ``False`` passes batches through (targets still one-hot floats).
        inplace: write into the caller's images instead of returning a new tensor.
        partner_weights: pick partners by class weight for imbalanced data: ``"inverse_frequency"``
            (from the batch's labels), or one weight per class (see
            :func:`cutmix.params.class_weights_from_counts`). ``None``: a uniform derangement.
        strategy: the :func:`cutmix.functional.cut_images` kernel: ``"auto"`` (by shape and
            device; on CPU the C row-copy kernel ``"native"`` when it builds), ``"native"``,
            ``"loop"``, ``"masked"``, or the opt-in ``"compiled"`` (torch.compile'd masked kernel,
            one compilation per input shape).

    Example:
        >>> mix = CutMix(alpha=1.0, num_classes=3)
        >>> p = mix.sample(torch.rand(4, 3, 8, 8), generator=torch.Generator().manual_seed(1))
        >>> p.boxes.shape
        torch.Size([4, 4])
    """

    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int | None = None,
        *,
        p: float = 1.0,
        mode: Mode = "sample",
        placement: Placement = "center",
        area_bounds: tuple[float, float] | None = None,
        own_dominant: bool = False,
        label_smoothing: float = 0.0,
        enabled: bool = True,
        inplace: bool = False,
        partner_weights: ClassWeights = None,
        strategy: str = "auto",
        multi_label: bool = False,
    ) -> None:
        super().__init__(
            alpha,
            num_classes,
            p,
            mode,
            own_dominant,
            label_smoothing,
            enabled,
            inplace,
            partner_weights,
        )
        self.strategy = V.check_choice(strategy, STRATEGIES + OPT_IN_STRATEGIES, "strategy")
        self.multi_label = bool(multi_label)
        self.placement = V.check_placement(placement)
        self.area_bounds = V.check_area_bounds(area_bounds)

    def _draw(
        self, images: Tensor, generator: torch.Generator | None, labels: Tensor | None
    ) -> MixParams:
        if not self.enabled:
            return self._identity(images, boxes=True)
        a, p, mode, own, gen, dev, lab, cw = self._sampling(images, generator, labels)
        size = (int(images.shape[-2]), int(images.shape[-1]))
        return _cutmix(
            images.shape[0],
            size,
            a,
            p,
            mode,
            self.placement,
            self.area_bounds,
            own,
            gen,
            dev,
            lab,
            cw,
        )

    def _options(self) -> dict[str, Any]:
        opts = super()._options()
        opts["placement"] = self.placement
        if self.area_bounds is not None:
            opts["area_bounds"] = self.area_bounds
        if self.strategy != "auto":
            opts["strategy"] = self.strategy
        return opts


class MixUp(_Sampled):
    """MixUp (Zhang et al., 2018): blend two images with weight λ ~ Beta(alpha, alpha).

    Example:
        >>> mix = MixUp(alpha=0.2, num_classes=3)
        >>> x, t = mix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
        >>> t.shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        alpha: float = 0.2,
        num_classes: int | None = None,
        *,
        p: float = 1.0,
        mode: Mode = "sample",
        own_dominant: bool = False,
        label_smoothing: float = 0.0,
        enabled: bool = True,
        inplace: bool = False,
        partner_weights: ClassWeights = None,
        multi_label: bool = False,
    ) -> None:
        super().__init__(
            alpha,
            num_classes,
            p,
            mode,
            own_dominant,
            label_smoothing,
            enabled,
            inplace,
            partner_weights,
        )
        self.multi_label = bool(multi_label)

    def _draw(
        self, images: Tensor, generator: torch.Generator | None, labels: Tensor | None
    ) -> MixParams:
        if not self.enabled:
            return self._identity(images, boxes=False)
        size = (int(images.shape[-2]), int(images.shape[-1]))
        return _mixup(images.shape[0], size, *self._sampling(images, generator, labels))


def _merge(choice: Tensor, params: Sequence[MixParams], size: tuple[int, int]) -> MixParams:
    """Per-sample pick among params drawn for the whole batch; MixUp picks become ``blend``."""
    n = choice.shape[0]
    rows = torch.arange(n, device=choice.device)
    perm = torch.stack([q.perm for q in params])[choice, rows]
    lam = torch.stack([q.lam for q in params])[choice, rows]
    is_box = [q.boxes is not None for q in params]
    if not any(is_box):
        return MixParams(perm=perm, lam=lam, boxes=None, size=size)
    zeros = torch.zeros(n, 4, dtype=torch.int64, device=choice.device)
    boxes = torch.stack([q.boxes if q.boxes is not None else zeros for q in params])[choice, rows]
    blend = None
    if not all(is_box):
        flags = torch.zeros(len(params), dtype=torch.bool, device=choice.device)
        for k, has_box in enumerate(is_box):
            if not has_box:
                flags[k] = True  # a device-side fill, not a host-to-device copy
        blend = flags[choice]
    return MixParams(perm=perm, lam=lam, boxes=boxes, size=size, blend=blend)


def _warn_ignored_child_settings(transforms: Sequence[_Mix], parent: _Mix) -> None:
    """RandomMix draws with its children but applies and makes targets itself: a child's
    ``label_smoothing``, ``multi_label``, ``inplace`` or ``strategy`` set to other than its default
    and RandomMix's own would be silently ignored, so say so once, at construction."""
    defaults = {"label_smoothing": 0.0, "multi_label": False, "inplace": False, "strategy": "auto"}
    for k, t in enumerate(transforms):
        for name, default in defaults.items():
            mine, theirs = getattr(parent, name), getattr(t, name)
            if theirs != default and theirs != mine:  # a child's own choice, then lost
                how = "" if name == "strategy" else f"; set it on RandomMix({name}=...)"
                warnings.warn(
                    f"transforms[{k}]: {name}={theirs!r} is not used inside RandomMix, which "
                    f"applies {name}={mine!r}{how}",
                    UserWarning,
                    stacklevel=3,
                )


class RandomMix(_Mix):
    """Choose between several transforms (e.g. CutMix and MixUp), per batch or per sample.

    Args:
        transforms: :class:`CutMix` / :class:`MixUp` instances (their own ``p``, α, mode apply).
        p: relative weights of the transforms (normalised); equal when ``None``.
        num_classes: class count for class-id labels (overrides the children's).
        choose: ``"batch"`` (one transform per batch, like timm's ``switch_prob``) or ``"sample"``.

    Example:
        >>> mix = RandomMix([CutMix(1.0), MixUp(0.2)], p=[0.5, 0.5], num_classes=10)
        >>> x, t = mix(torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
        >>> t.shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        transforms: Sequence[CutMix | MixUp],
        p: Sequence[float] | None = None,
        num_classes: int | None = None,
        *,
        choose: Literal["batch", "sample"] = "batch",
        label_smoothing: float = 0.0,
        enabled: bool = True,
        inplace: bool = False,
        multi_label: bool = False,
    ) -> None:
        super().__init__(num_classes, label_smoothing, enabled, inplace)
        self.multi_label = bool(multi_label)
        if not isinstance(transforms, Sequence) or not transforms:
            V.fail("transforms", "a non-empty list of CutMix / MixUp", V.describe(transforms))
        for t in transforms:
            if not isinstance(t, (CutMix, MixUp)):
                V.fail("transforms", "CutMix or MixUp instances", V.describe(t), kind=TypeError)
        self.transforms = list(transforms)
        _warn_ignored_child_settings(self.transforms, self)
        if self.num_classes is None:
            self.num_classes = next(
                (t.num_classes for t in self.transforms if t.num_classes is not None), None
            )
        weights = [1.0] * len(self.transforms) if p is None else list(p)
        if (
            len(weights) != len(self.transforms)
            or any(
                isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf")
                for w in weights
            )
            or not 0 < sum(weights) < float("inf")  # an overflowing sum normalises to zeros
        ):
            V.fail(
                "p",
                f"{len(self.transforms)} non-negative weights with a positive sum",
                V.describe(p),
            )
        total = float(sum(weights))
        self.p = [float(w) / total for w in weights]
        self.choose = V.check_choice(choose, ("batch", "sample"), "choose")

    def _draw(
        self, images: Tensor, generator: torch.Generator | None, labels: Tensor | None
    ) -> MixParams:
        """Draw each transform's params, then pick one transform per batch or per sample."""
        size = (int(images.shape[-2]), int(images.shape[-1]))
        if not self.enabled:
            return self._identity(images, boxes=True)
        n, dev = images.shape[0], images.device
        weights = torch.empty(len(self.p), device=dev)
        for k, w in enumerate(self.p):
            weights[k] = w  # device-side fills: a host-to-device copy would sync on CUDA
        if self.choose == "batch" and dev.type == "cpu":
            k = int(torch.multinomial(weights, 1, generator=generator))
            return self.transforms[k]._draw(images, generator, labels)
        draws = n if self.choose == "sample" else 1
        choice = torch.multinomial(weights, draws, replacement=True, generator=generator)
        params = [t._draw(images, generator, labels) for t in self.transforms]
        return _merge(choice.expand(n), params, size)

    def _options(self) -> dict[str, Any]:
        return {"transforms": self.transforms, "p": self.p, "choose": self.choose}
