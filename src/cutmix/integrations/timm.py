"""timm drop-in: ``Mixup`` and ``FastCollateMixup`` with timm's arguments, on cutmix's kernels.

The one-line switch for a timm training script (``train.py``)::

    from cutmix.integrations.timm import FastCollateMixup, Mixup  # was: from timm.data import ...

Both classes take exactly the arguments of ``timm.data.Mixup`` (same names, order and defaults)
and keep timm's meaning of each:

- ``mixup_alpha`` / ``cutmix_alpha``: Beta concentrations; a method is active when its alpha > 0;
  with both active, ``switch_prob`` is the chance of CutMix (per batch, or per element).
- ``cutmix_minmax=(lo, hi)``: each side's ratio is drawn independently (height from
  ``[int(H·lo), int(H·hi))``, width likewise) and the box is placed wholly inside the image; λ is then the
  pixel fraction (and ``cutmix_alpha`` is forced to 1.0, as in timm).
- ``prob``: chance that a batch (``mode='batch'``) or an element / pair is mixed at all.
- ``mode``: ``'batch'`` (one λ and box for the batch), ``'pair'`` (element ``i`` and ``N-1-i`` swap
  one box, or blend with one λ) or ``'elem'`` (every element its own λ and box). Partners are
  timm's: element ``i`` takes from element ``N-1-i``.
- ``correct_lam=True``: λ of a CutMix sample is recomputed from the clipped box (the pixel
  fraction). ``correct_lam=False`` keeps the drawn λ for the targets: it is then **not** the fraction
  of pixels the sample keeps (boxes clipped at the border are smaller than λ says).
- ``label_smoothing`` / ``num_classes``: targets are ``λ·y + (1-λ)·y[partner]`` of one-hot rows
  smoothed to ``1-ε+ε/C`` and ``ε/C``, bitwise as ``timm.data.mixup.mixup_target``.
- ``mixup_enabled`` (attribute): ``False`` turns mixing off (timm's ``--mixup-off-epoch``); targets
  are then the smoothed one-hot rows. timm's ``PrefetchLoader.mixup_enabled = False`` reaches a
  ``FastCollateMixup`` used as the loader's ``collate_fn`` (both classes subclass timm's).

Randomness is drawn from NumPy's global generator in timm's order, so with the same
``np.random.seed`` the decisions (λ, boxes, partners) are the ones timm makes; images are then
mixed by :func:`cutmix.functional.cut_images` / :func:`cutmix.functional.mix_images`. Differences
from timm (the semantics are those of timm 1.0.31, the version tested): odd batch sizes work (the middle element of an odd batch is its own partner, so it is
left unmixed), and ``Mixup`` returns new images unless ``inplace=True`` (timm writes into its
input). ``multi_label=True`` takes ``(N, C)`` multi-hot targets and smooths each
entry toward 1/2 (``(1-ε)·y + ε/2``, for BCE), as timm's; ``inplace`` (ours, keyword-only). After each call ``last_lam`` holds the
per-sample λ used for the targets.

Example:
    >>> import numpy as np, torch
    >>> from cutmix.integrations.timm import Mixup
    >>> mix = Mixup(cutmix_alpha=1.0, num_classes=10)
    >>> _ = np.random.seed(0)
    >>> x, t = mix(torch.rand(5, 3, 8, 8), torch.arange(5))
    >>> x.shape, t.shape, bool(t.sum(1).allclose(torch.ones(5)))
    (torch.Size([5, 3, 8, 8]), torch.Size([5, 10]), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

import cutmix
from cutmix._validate import check_class_range
from cutmix.functional import apply_images
from cutmix.integrations._common import describe, fail

try:
    from timm.data import mixup as _timm_mixup
except ImportError as err:  # pragma: no cover - only without timm
    raise ImportError("cutmix.integrations.timm needs timm: pip install 'cutmix[timm]'") from err

__all__ = ["FastCollateMixup", "Mixup"]

_MODES = ("batch", "pair", "elem")


def _check_number(value: Any, name: str, lo: float, hi: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        fail(name, "a number", describe(value), kind=TypeError)
    v = float(value)
    if not (v >= lo and (hi is None or v <= hi)):
        fail(name, f"a number in [{lo}, {'inf' if hi is None else hi}]", v)
    return v


class Mixup(_timm_mixup.Mixup):  # type: ignore[misc]
    """``timm.data.Mixup`` with cutmix's kernels: ``mix(images, targets) -> (images, soft_targets)``.

    See the module docstring for each argument (timm's meaning, timm's defaults).

    Example:
        >>> import torch
        >>> mix = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=4, label_smoothing=0.0)
        >>> mix.mixup_enabled = False
        >>> x, t = mix(torch.rand(2, 3, 4, 4), torch.tensor([1, 3]))
        >>> t.tolist()
        [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        multi_label: bool = False,
        *,
        inplace: bool = False,
    ) -> None:
        self.mixup_alpha = _check_number(mixup_alpha, "mixup_alpha", 0.0, None)
        self.cutmix_alpha = _check_number(cutmix_alpha, "cutmix_alpha", 0.0, None)
        self.cutmix_minmax: tuple[float, float] | None = None
        if cutmix_minmax is not None:
            if (
                isinstance(cutmix_minmax, (str, bytes))
                or not isinstance(cutmix_minmax, Sequence)
                or len(cutmix_minmax) != 2
            ):
                fail("cutmix_minmax", "None or (min, max) side ratios", describe(cutmix_minmax))
            lo = _check_number(cutmix_minmax[0], "cutmix_minmax[0]", 0.0, 1.0)
            hi = _check_number(cutmix_minmax[1], "cutmix_minmax[1]", 0.0, 1.0)
            if not lo < hi:
                fail("cutmix_minmax", "min < max", (lo, hi))
            self.cutmix_minmax = (lo, hi)
            self.cutmix_alpha = 1.0  # as timm: minmax boxes ignore alpha, but CutMix is active
        if self.mixup_alpha <= 0 and self.cutmix_alpha <= 0:
            fail("mixup_alpha / cutmix_alpha", "at least one > 0 (or cutmix_minmax)", (0.0, 0.0))
        self.mix_prob = _check_number(prob, "prob", 0.0, 1.0)
        self.switch_prob = _check_number(switch_prob, "switch_prob", 0.0, 1.0)
        if mode not in _MODES:
            fail("mode", f"one of {_MODES}", describe(mode))
        self.mode = mode
        self.correct_lam = bool(correct_lam)
        self.label_smoothing = _check_number(label_smoothing, "label_smoothing", 0.0, 1.0)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            fail("num_classes", "an int >= 1", describe(num_classes))
        self.num_classes = num_classes
        self.multi_label = bool(multi_label)
        self.inplace = bool(inplace)
        self.mixup_enabled = True
        self.last_lam: Tensor | None = None

    # -- decisions (NumPy's global RNG, in timm's order) -------------------------------------

    def _draw_lam(self, size: int | None) -> tuple[Any, Any]:
        """λ and use-CutMix for one batch (``size=None``) or ``size`` elements / pairs."""
        rng = np.random
        both = self.mixup_alpha > 0 and self.cutmix_alpha > 0
        if size is None:
            if not (self.mixup_enabled and rng.rand() < self.mix_prob):
                return 1.0, False
            use_cut = bool(both and rng.rand() < self.switch_prob) or self.mixup_alpha <= 0
            alpha = self.cutmix_alpha if use_cut else self.mixup_alpha
            return float(rng.beta(alpha, alpha)), use_cut
        lam = np.ones(size, dtype=np.float32)
        use = np.zeros(size, dtype=bool)
        if not self.mixup_enabled:
            return lam, use
        if both:
            use = rng.rand(size) < self.switch_prob
            cut = rng.beta(self.cutmix_alpha, self.cutmix_alpha, size=size)
            blend = rng.beta(self.mixup_alpha, self.mixup_alpha, size=size)
            drawn = np.where(use, cut, blend)
        elif self.mixup_alpha > 0:
            drawn = rng.beta(self.mixup_alpha, self.mixup_alpha, size=size)
        else:
            use = np.ones(size, dtype=bool)
            drawn = rng.beta(self.cutmix_alpha, self.cutmix_alpha, size=size)
        lam = np.where(rng.rand(size) < self.mix_prob, drawn.astype(np.float32), lam)
        return lam, use

    def _draw_box(self, h: int, w: int, lam: Any) -> tuple[tuple[int, int, int, int], Any]:
        """``(x1, y1, x2, y2)`` half-open and the λ for the targets."""
        rng = np.random
        if self.cutmix_minmax is not None:
            lo, hi = self.cutmix_minmax
            ch = int(rng.randint(int(h * lo), max(int(h * hi), int(h * lo) + 1)))
            cw = int(rng.randint(int(w * lo), max(int(w * hi), int(w * lo) + 1)))
            y1, x1 = int(rng.randint(0, h - ch + 1)), int(rng.randint(0, w - cw + 1))
            return (x1, y1, x1 + cw, y1 + ch), 1.0 - (ch * cw) / float(h * w)
        ratio = np.sqrt(1 - lam)
        ch, cw = int(h * ratio), int(w * ratio)
        cy, cx = int(rng.randint(0, h)), int(rng.randint(0, w))
        # The box is centred on (cy, cx), ch by cw before it is clipped at the borders.
        y1, y2 = max(cy - ch // 2, 0), min(cy + (ch + 1) // 2, h)
        x1, x2 = max(cx - cw // 2, 0), min(cx + (cw + 1) // 2, w)
        if self.correct_lam:
            lam = 1.0 - ((y2 - y1) * (x2 - x1)) / float(h * w)
        return (x1, y1, x2, y2), lam

    def _decide(self, n: int, h: int, w: int) -> tuple[Any, np.ndarray, np.ndarray, bool]:
        """``(lam, boxes (n, 4), cut (n,), scalar)``: λ per sample, or one float (batch mode)."""
        boxes = np.zeros((n, 4), dtype=np.int64)
        if self.mode == "batch":
            lam, use_cut = self._draw_lam(None)
            cut = np.zeros(n, dtype=bool)
            if lam != 1.0 and use_cut:
                box, lam = self._draw_box(h, w, lam)
                boxes[:] = box
                cut[:] = True
            return lam, boxes, cut, True
        pairs = self.mode == "pair"
        m = n // 2 if pairs else n
        lam, use = self._draw_lam(m)
        for i in range(m):
            if lam[i] != 1.0 and use[i]:
                box, lam[i] = self._draw_box(h, w, lam[i])
                boxes[i] = box
                if pairs:
                    boxes[n - 1 - i] = box
        cut = np.zeros(n, dtype=bool)
        cut[:m] = use
        if pairs:
            middle = np.ones(n % 2, dtype=np.float32)
            lam = np.concatenate((lam, middle, lam[::-1]))
            cut[n - m :] = use[::-1]
        return lam, boxes, cut, False

    # -- applying them with cutmix ------------------------------------------------------------

    def _targets(self, target: Tensor, lam: Any, scalar: bool, perm: Tensor) -> Tensor:
        n, eps = perm.shape[0], self.label_smoothing
        if target.dim() == 2 or self.multi_label:
            if target.dim() != 2 or target.shape != (n, self.num_classes):
                fail("target", f"(N, {self.num_classes}) multi-hot rows", describe(target))
            off = eps / 2 if self.multi_label else eps / self.num_classes
            y = target.to(torch.float32) * (1.0 - eps) + off
        else:
            if target.dim() != 1 or target.shape[0] != n:
                fail("target", f"{n} class ids", describe(target))
            if target.is_floating_point() or target.dtype == torch.bool:
                fail("target", "integer class ids", describe(target), kind=TypeError)
            # Eager on CPU; an asynchronous device assert elsewhere (no host sync, meta works).
            check_class_range(target, self.num_classes, "target")
            off = eps / self.num_classes
            y = torch.full((n, self.num_classes), off, device=target.device)
            y.scatter_(1, target.long().view(-1, 1), 1.0 - eps + off)
        if not scalar:
            lam = torch.tensor(lam, dtype=torch.float32, device=target.device).unsqueeze(1)
        return y * lam + y.index_select(0, perm) * (1.0 - lam)

    def _mix(self, x: Tensor, target: Tensor, inplace: bool) -> tuple[Tensor, Tensor]:
        if not isinstance(x, Tensor) or x.dim() != 4:
            fail("x", "a 4-D tensor (N, C, H, W)", describe(x), kind=TypeError)
        if not isinstance(target, Tensor):
            fail("target", "a tensor", describe(target), kind=TypeError)
        n, (h, w) = x.shape[0], (int(x.shape[-2]), int(x.shape[-1]))
        if n < 1:
            fail("x", "at least one image (an empty batch cannot be mixed)", describe(x))
        if h < 1 or w < 1:
            fail("x", "H and W of at least 1 pixel", describe(x))
        if target.dim() == 0 or target.shape[0] != n:
            fail("target", f"one row per image ({n})", describe(target))
        lam, boxes, cut, scalar = self._decide(n, h, w)
        dev = x.device
        perm = torch.arange(n - 1, -1, -1, device=dev)
        lam_vec = np.full(n, lam, dtype=np.float32) if scalar else np.asarray(lam, np.float32)
        if n % 2:
            # The middle of an odd batch is its own partner: leave it exactly as it is.
            lam_vec[n // 2], boxes[n // 2] = 1.0, 0
            lam, scalar = lam_vec, False
        targets = self._targets(target, lam, scalar, perm.to(target.device))
        mixed = bool((lam_vec != 1.0).any())
        if mixed:
            lam_t = torch.from_numpy(lam_vec.copy()).to(dev)
            if cut.any():
                blend = torch.from_numpy(~cut).to(dev) if not cut.all() else None
                params = cutmix.MixParams(
                    perm=perm, lam=lam_t, boxes=torch.from_numpy(boxes).to(dev), size=(h, w),
                    blend=blend,
                )  # fmt: skip
            else:
                params = cutmix.MixParams(perm=perm, lam=lam_t, boxes=None, size=(h, w))
            x = apply_images(x, params, inplace=inplace)
        self.last_lam = torch.from_numpy(lam_vec)
        return x, targets

    def __call__(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Mix a batch ``x`` ``(N, C, H, W)`` and its class ids (or ``(N, C)`` rows)."""
        return self._mix(x, target, self.inplace)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mixup_alpha={self.mixup_alpha}, cutmix_alpha="
            f"{self.cutmix_alpha}, cutmix_minmax={self.cutmix_minmax}, prob={self.mix_prob}, "
            f"switch_prob={self.switch_prob}, mode={self.mode!r}, correct_lam={self.correct_lam}, "
            f"label_smoothing={self.label_smoothing}, num_classes={self.num_classes})"
        )


class FastCollateMixup(Mixup, _timm_mixup.FastCollateMixup):  # type: ignore[misc]
    """``timm.data.FastCollateMixup``: a ``collate_fn`` that mixes while it batches.

    Takes timm's samples, ``(image, class_id)`` with uint8 ``(C, H, W)`` NumPy arrays or tensors,
    and returns a uint8 ``(N, C, H, W)`` batch and float32 soft targets (timm's ``PrefetchLoader``
    then normalises on the device). Odd batch sizes work.

    Example:
        >>> import numpy as np
        >>> collate = FastCollateMixup(cutmix_alpha=1.0, num_classes=3)
        >>> x, t = collate([(np.full((3, 4, 4), k, np.uint8), k) for k in range(3)])
        >>> x.dtype, t.shape
        (torch.uint8, torch.Size([3, 3]))
    """

    def __call__(self, batch: Sequence[Any], _: Any = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Stack ``batch`` into uint8 images and int64 class ids, then mix (in the new tensor)."""
        if not isinstance(batch, Sequence) or not batch:
            fail("batch", "a non-empty list of (image, class_id) samples", describe(batch))
        images = []
        for i, sample in enumerate(batch):
            if not isinstance(sample, (tuple, list)) or len(sample) < 2:
                fail(f"batch[{i}]", "an (image, class_id) pair", describe(sample), kind=TypeError)
            try:
                img = torch.as_tensor(sample[0])
            except (RuntimeError, TypeError, ValueError):  # a PIL image, a str, ...
                fail(f"batch[{i}][0]", "a uint8 (C, H, W) image (NumPy array or tensor)",
                     describe(sample[0]), kind=TypeError)  # fmt: skip
                raise  # unreachable: fail() raises
            if img.dtype != torch.uint8 or img.dim() != 3:
                fail(f"batch[{i}][0]", "a uint8 (C, H, W) image", describe(img), kind=TypeError)
            images.append(img)
        if any(img.shape != images[0].shape for img in images):
            fail("batch", "images of one shape", [tuple(img.shape) for img in images])
        x = torch.stack(images)
        target = default_collate([s[1] for s in batch])
        return self._mix(x, target, inplace=True)
