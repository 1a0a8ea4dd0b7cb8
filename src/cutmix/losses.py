"""Losses that match mixed batches.

- :func:`mixed_cross_entropy`: the paper code's ``λ · CE(y) + (1 - λ) · CE(y[perm])`` with per-sample λ,
  one ``log_softmax``; works per pixel too (``(N, C, H, W)`` logits, ``(N, H, W)`` maps).
- :func:`soft_target_cross_entropy`: cross entropy against the float targets of a transform.
- :func:`mixed_binary_cross_entropy`: the right way for binary and multi-label models. A two-class
  model with one output logit needs float targets ``λ · y + (1 - λ) · y[perm]``, not class ids.

Example:
    >>> import torch, cutmix
    >>> p = cutmix.MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.7, 1.0]),
    ...                      boxes=None, size=None)
    >>> logits, labels = torch.zeros(2, 3), torch.tensor([0, 2])
    >>> round(cutmix.mixed_cross_entropy(logits, labels, p).item(), 4)  # log(3)
    1.0986
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from cutmix import _validate as V
from cutmix.params import MixParams

Reduction = Literal["mean", "sum", "none"]

__all__ = ["mixed_binary_cross_entropy", "mixed_cross_entropy", "soft_target_cross_entropy"]


def _reduce(loss: Tensor, reduction: str, weight: Tensor | None = None) -> Tensor:
    V.check_choice(reduction, ("mean", "sum", "none"), "reduction")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weight is None:
        return loss.mean()
    return loss.sum() / weight.sum().clamp_min(1)


def _check_logits(logits: Tensor, labels_shape: torch.Size) -> None:
    V.check_tensor(logits, "logits")
    if not logits.is_floating_point():
        V.fail("logits", "a floating-point tensor", V.describe(logits), kind=TypeError)
    if logits.dim() < 2 or logits.shape[0] != labels_shape[0]:
        V.fail("logits", f"(N, C, ...) with N = {labels_shape[0]}", V.describe(logits))


def _check_params(params: MixParams, n: int, device: torch.device) -> None:
    if not isinstance(params, MixParams):
        V.fail("params", "a cutmix.MixParams", V.describe(params), kind=TypeError)
    if params.perm.shape[0] != n:
        V.fail(
            "params", f"params for a batch of {n}", f"params for a batch of {params.perm.shape[0]}"
        )
    if params.device != device:
        V.fail("params", f"params on {device} (where the labels are)", f"on {params.device}")
    params._check_values()


def mixed_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    params: MixParams,
    *,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    """``λ_i · CE(logits_i, y_i) + (1 - λ_i) · CE(logits_i, y_perm[i])``, averaged over samples.

    ``logits`` are ``(N, C)`` with class ids ``(N,)``, or ``(N, C, *S)`` with maps ``(N, *S)`` (dense
    MixUp: each pixel weighs its own and its partner's class). Pixels equal to ``ignore_index`` in a
    map drop out of that map's term; the mean is over the elements with at least one valid label. Equal to
    :func:`soft_target_cross_entropy` on ``mix_labels`` targets for class ids.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.5, 1.0]), boxes=None,
        ...               size=None)
        >>> mixed_cross_entropy(torch.zeros(2, 2), torch.tensor([0, 1]), p).item() > 0
        True
    """
    V.check_tensor(labels, "labels")
    _check_logits(logits, labels.shape)
    V.check_smoothing(label_smoothing)
    if labels.is_complex():
        V.fail("labels", "integer class ids", V.describe(labels), kind=TypeError)
    if labels.is_floating_point() or labels.dim() != logits.dim() - 1:
        V.fail("labels", "class ids of shape (N,) or (N, *S) matching logits", V.describe(labels))
    if labels.shape[1:] != logits.shape[2:]:
        V.fail("labels", f"spatial shape {tuple(logits.shape[2:])}", V.describe(labels))
    _check_params(params, labels.shape[0], labels.device)
    logp = F.log_softmax(logits.float(), dim=1)
    num_classes = logits.shape[1]

    def nll(y: Tensor) -> tuple[Tensor, Tensor]:
        valid = y != ignore_index
        safe = torch.where(valid, y, torch.zeros_like(y)).long()
        V.check_class_range(safe, num_classes)
        picked = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)
        if label_smoothing:
            picked = (1 - label_smoothing) * picked - label_smoothing * logp.mean(dim=1)
        return picked * valid, valid

    lam = params.lam.view(-1, *([1] * (labels.dim() - 1))).float()
    own, valid_a = nll(labels)
    other, valid_b = nll(labels.index_select(0, params.perm))
    loss = lam * own + (1 - lam) * other
    if reduction == "none":
        return loss
    return _reduce(loss, reduction, valid_a | valid_b)


def soft_target_cross_entropy(
    logits: Tensor, targets: Tensor, *, reduction: Reduction = "mean"
) -> Tensor:
    """Cross entropy against float targets, ``-(targets · log_softmax(logits)).sum(1)``.

    Same as ``torch.nn.functional.cross_entropy(logits, targets)`` for probability targets; here for
    clarity and for ``(N, C, *S)`` dense soft targets.

    Example:
        >>> t = torch.tensor([[0.5, 0.5]])
        >>> round(soft_target_cross_entropy(torch.zeros(1, 2), t).item(), 4)
        0.6931
    """
    V.check_tensor(targets, "targets")
    _check_logits(logits, targets.shape)
    if targets.shape != logits.shape:
        V.fail(
            "targets",
            f"float targets shaped like logits {tuple(logits.shape)}",
            V.describe(targets),
        )
    loss = -(targets.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    return _reduce(loss, reduction)


def mixed_binary_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    params: MixParams,
    *,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Binary cross entropy with logits against mixed float targets ``λ · y + (1 - λ) · y[perm]``.

    ``labels`` are ``(N,)`` 0/1 values with ``(N,)`` or ``(N, 1)`` logits (a two-class model with
    one output), or ``(N, C)`` multi-hot with ``(N, C)`` logits (multi-label). This is the correct
    replacement for ``BCEWithLogitsLoss()(logits, class_ids)`` seen in tutorials, which ignores λ.
    ``label_smoothing`` ε smooths every target toward 1/2: ``t · (1 - ε) + ε / 2`` (per class, as
    timm's ``multi_label=True``; the same as ``mix_labels(..., multi_label=True)``).

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]), boxes=None,
        ...               size=None)
        >>> loss = mixed_binary_cross_entropy(torch.zeros(2), torch.tensor([1, 0]), p)
        >>> round(loss.item(), 4)  # log 2 whatever the target when the logit is 0
        0.6931
    """
    V.check_tensor(labels, "labels")
    V.check_tensor(logits, "logits")
    V.check_smoothing(label_smoothing)
    if not logits.is_floating_point():
        V.fail("logits", "a floating-point tensor", V.describe(logits), kind=TypeError)
    if labels.is_complex():
        V.fail(
            "labels",
            "0/1 values or multi-hot rows, not complex",
            V.describe(labels),
            kind=TypeError,
        )
    if labels.dim() == 0:
        V.fail("labels", "(N,) 0/1 values or (N, C) multi-hot", V.describe(labels))
    n = labels.shape[0]
    _check_params(params, n, labels.device)
    y = labels.float()
    if labels.dim() == 1:
        if not labels.is_floating_point() and not bool(torch.compiler.is_compiling()):
            V.check_class_range(labels, 2)
        if logits.shape not in ((n,), (n, 1)):
            V.fail("logits", f"({n},) or ({n}, 1) for 0/1 labels", V.describe(logits))
        logits = logits.reshape(n)
    elif labels.dim() == 2:
        if logits.shape != labels.shape:
            V.fail(
                "logits",
                f"shape {tuple(labels.shape)} like the multi-hot labels",
                V.describe(logits),
            )
    else:
        V.fail("labels", "(N,) 0/1 values or (N, C) multi-hot", V.describe(labels))
    lam = params.lam.view(-1, *([1] * (y.dim() - 1)))
    target = y * lam + y.index_select(0, params.perm) * (1 - lam)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / 2
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    return _reduce(loss, reduction)
