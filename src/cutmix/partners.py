"""Partner sampling by class weight (imbalanced data): minority classes are pasted more often.

:func:`class_weights_from_counts` turns class counts into weights, :func:`partner_weights` gives
each sample its weight as a partner, and the samplers of :mod:`cutmix.params` draw partners with
those weights when ``class_weights`` is given (all names are re-exported there and in ``cutmix``).

Example:
    >>> import torch
    >>> [round(w, 4) for w in partner_weights(torch.tensor([0, 0, 1])).tolist()]
    [0.5, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cutmix import _validate as V

ClassWeights = str | Tensor | Sequence[float] | None

__all__ = ["ClassWeights", "check_class_weights", "class_weights_from_counts", "partner_weights"]


def class_weights_from_counts(counts: Tensor | Sequence[float], *, power: float = 1.0) -> Tensor:
    """Per-class weights ``counts ** -power`` (float32); a class with no samples gets weight 0.

    ``power=1`` is inverse frequency, ``power=0.5`` its square root (a milder rebalancing).

    Example:
        >>> [round(w, 4) for w in class_weights_from_counts([90, 10, 0]).tolist()]
        [0.0111, 0.1, 0.0]
    """
    c = torch.as_tensor(counts, dtype=torch.float32)
    if c.dim() != 1 or c.numel() == 0:
        V.fail("counts", "a 1-D sequence of class counts", V.describe(c))
    if c.device.type == "cpu" and not V._compiling() and bool(((c < 0) | ~c.isfinite()).any()):
        V.fail("counts", "non-negative finite counts", c.tolist())
    return torch.where(c > 0, c.clamp_min(1e-30).pow(-float(power)), torch.zeros_like(c))


def check_class_weights(
    class_weights: ClassWeights, num_classes: int | None = None, name: str = "class_weights"
) -> str | Tensor | None:
    """``None``, ``"inverse_frequency"`` or a 1-D float32 tensor of non-negative finite weights."""
    if class_weights is None or isinstance(class_weights, str):
        if class_weights is not None:
            V.check_choice(class_weights, ("inverse_frequency",), name)
        return class_weights
    if isinstance(class_weights, Tensor):
        w = class_weights
    elif isinstance(class_weights, Sequence) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in class_weights
    ):
        w = torch.tensor([float(v) for v in class_weights])
    else:
        V.fail(
            name,
            "None, 'inverse_frequency' or one weight per class",
            V.describe(class_weights),
            kind=TypeError,
        )
    if w.dim() != 1 or w.numel() == 0 or w.is_complex() or w.dtype == torch.bool:
        V.fail(name, "a 1-D tensor with one weight per class", V.describe(w))
    if num_classes is not None and w.shape[0] != num_classes:
        V.fail(name, f"{num_classes} weights (one per class)", f"{w.shape[0]} weights")
    w = w.to(torch.float32)
    if V._compiling():
        return w
    bad = (w < 0) | ~w.isfinite()
    if w.device.type == "cpu":
        if bool(bad.any()):
            V.fail(name, "non-negative finite weights", w.tolist())
    else:
        torch._assert_async(~bad.any(), f"{name}: expected non-negative finite weights")
    return w


def partner_weights(labels: Tensor, class_weights: ClassWeights = "inverse_frequency") -> Tensor:
    """Each sample's weight ``(N,)`` (float32) as a mixing partner, from its class.

    ``labels`` are class ids ``(N,)`` or soft / multi-hot ``(N, C)`` (a sample's weight is then the
    label-weighted mean of its classes' weights). ``class_weights`` is one weight per class, or
    ``"inverse_frequency"``: ``1 / count`` of the class in this batch, so that every class present
    is picked as a partner equally often. No host synchronisation.

    Example:
        >>> [round(w, 4) for w in partner_weights(torch.tensor([0, 0, 0, 1])).tolist()]
        [0.3333, 0.3333, 0.3333, 1.0]
    """
    V.check_tensor(labels, "labels")
    w = check_class_weights(class_weights)
    if labels.dim() == 1 and not (labels.is_floating_point() or labels.dtype == torch.bool):
        if isinstance(w, str):
            same = labels[:, None] == labels[None, :]
            return 1.0 / same.sum(1).to(torch.float32)
        assert isinstance(w, Tensor)
        w = w.to(labels.device)
        if labels.numel() and not V._compiling():
            if labels.device.type == "cpu":
                lo, hi = int(labels.min()), int(labels.max())
                if lo < 0:
                    V.fail("labels", "class ids >= 0", f"class id {lo}")
                if hi >= w.shape[0]:
                    V.fail(
                        "class_weights",
                        f"one weight per class (at least {hi + 1} for class id {hi})",
                        f"{w.shape[0]} weights",
                    )
            else:
                ok = ((labels >= 0) & (labels < w.shape[0])).all()
                torch._assert_async(ok, "class_weights: expected one weight per class id")
        return w[labels.long().clamp(0, w.shape[0] - 1)]
    if labels.dim() != 2:
        V.fail("labels", "class ids (N,) or soft / multi-hot labels (N, C)", V.describe(labels))
    y = labels.to(torch.float32)
    if isinstance(w, str):
        counts = y.sum(0)
        w = torch.where(counts > 0, 1.0 / counts.clamp_min(1e-30), torch.zeros_like(counts))
    else:
        assert isinstance(w, Tensor)
        if w.shape[0] != y.shape[1]:
            V.fail(
                "class_weights", f"{y.shape[1]} weights (one per class)", f"{w.shape[0]} weights"
            )
        w = w.to(y.device)
    return (y * w).sum(1) / y.sum(1).clamp_min(1e-30)


def _weighted_partners(
    n: int,
    mode: str,
    labels: Tensor | None,
    class_weights: ClassWeights,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Partner ``j != i`` drawn per sample with probability proportional to ``weights[j]``."""
    if mode == "pair":
        V.fail("mode", "'sample' or 'batch' with class_weights (pairs are not weighted)", "'pair'")
    if labels is None:
        V.fail("labels", "the batch's labels when partners are weighted by class", None)
    assert labels is not None
    if labels.dim() == 0 or labels.shape[0] != n:
        V.fail("labels", f"{n} labels (one per sample)", V.describe(labels))
    weights = partner_weights(labels, class_weights).to(device)
    if n == 1:
        return torch.zeros(1, dtype=torch.int64, device=device)
    others = 1.0 - torch.eye(n, dtype=torch.float32, device=device)
    rows = weights[None, :] * others
    # A row with no weight left (every other sample weighs 0) falls back to uniform over the others.
    rows = torch.where(rows.sum(1, keepdim=True) > 0, rows, others)
    return torch.multinomial(rows, 1, generator=generator).squeeze(1)
