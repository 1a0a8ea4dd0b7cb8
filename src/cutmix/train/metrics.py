"""Metrics for imbalanced data: balanced accuracy and many / medium / few-shot group accuracy.

- **balanced accuracy**: the mean per-class recall over the classes that have validation images
  (each class counts the same, whatever its size);
- **per-class accuracy**: the recall of every class (``None`` for a class with no images);
- **group accuracy** (long-tailed runs): classes are grouped by their number of *training* images,
  the CIFAR-LT / ImageNet-LT convention: **many-shot** > 100 images, **few-shot** < 20 images,
  **medium-shot** 20–100. A group's accuracy is the mean recall of its classes (``None`` when the
  group has no class).

Example:
    >>> balanced_accuracy([1.0, 0.5, 0.0], [10, 10, 0])
    0.75
    >>> group_accuracy([0.9, 0.5, 0.1], [500, 50, 5])
    {'many': 0.9, 'medium': 0.5, 'few': 0.1}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "FEW_SHOT_BELOW",
    "MANY_SHOT_ABOVE",
    "balanced_accuracy",
    "group_accuracy",
    "is_imbalanced",
    "json_safe",
    "shot_groups",
]

MANY_SHOT_ABOVE = 100
FEW_SHOT_BELOW = 20


def balanced_accuracy(
    per_class: Sequence[float | None], counts: Sequence[int] | None = None
) -> float:
    """Mean recall over the classes with at least one evaluated image (``counts`` > 0).

    Without ``counts``, every class whose recall is not ``None`` counts. ``nan`` when none does.
    """
    if counts is None:
        vals = [float(a) for a in per_class if a is not None]
    else:
        vals = [float(a) for a, n in zip(per_class, counts) if n > 0 and a is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def shot_groups(
    train_counts: Sequence[int], many: int = MANY_SHOT_ABOVE, few: int = FEW_SHOT_BELOW
) -> dict[str, list[int]]:
    """Class ids of the many (> ``many``), medium and few (< ``few``) training-image groups.

    Example:
        >>> shot_groups([101, 100, 20, 19])
        {'many': [0], 'medium': [1, 2], 'few': [3]}
    """
    out: dict[str, list[int]] = {"many": [], "medium": [], "few": []}
    for c, n in enumerate(train_counts):
        out["many" if n > many else "few" if n < few else "medium"].append(c)
    return out


def group_accuracy(
    per_class: Sequence[float | None],
    train_counts: Sequence[int],
    many: int = MANY_SHOT_ABOVE,
    few: int = FEW_SHOT_BELOW,
) -> dict[str, float | None]:
    """Mean recall of the many / medium / few-shot classes (``None`` for an empty group)."""
    res: dict[str, float | None] = {}
    for g, ids in shot_groups(train_counts, many, few).items():
        vals = [float(per_class[c]) for c in ids if per_class[c] is not None]  # type: ignore[arg-type]
        res[g] = sum(vals) / len(vals) if vals else None
    return res


def eval_extras(
    per_class: Sequence[float | None],
    class_count: Sequence[int],
    train_counts: Sequence[int] | None,
    long_tailed: bool,
    prefix: str = "val_",
) -> dict[str, object]:
    """The balanced / per-class / group fields a metrics row or summary gains from one evaluation.

    Example:
        >>> eval_extras([1.0, 0.0], [5, 5], [200, 10], True)["val_few"]
        0.0
    """
    pc = [None if n == 0 or a is None else float(a) for a, n in zip(per_class, class_count)]
    out: dict[str, object] = {
        f"{prefix}balanced_acc": balanced_accuracy(pc, class_count),
        f"{prefix}per_class": pc,
    }
    if long_tailed and train_counts is not None:
        for g, v in group_accuracy(pc, train_counts).items():
            out[f"{prefix}{g}"] = v
    return out


def is_imbalanced(train_counts: Sequence[int], imbalance: float | None = None) -> bool:
    """Whether ``compare`` reports balanced accuracy: ``--imbalance`` was given, or the largest
    training class has at least 1.5 × the images of the smallest (a stratified split of a balanced
    source, 35 vs 37 images, stays balanced and keeps plain accuracy as its headline).

    Example:
        >>> is_imbalanced([35, 37]), is_imbalanced([30, 45]), is_imbalanced([5, 5], 1.0)
        (False, True, True)
    """
    if imbalance is not None:
        return True
    return bool(train_counts) and max(train_counts) >= 1.5 * max(1, min(train_counts))


def json_safe(obj: object) -> object:
    """``obj`` with every non-finite float (a CI of one seed, a balanced accuracy of nothing)
    replaced by ``None``, so that ``json.dumps(..., allow_nan=False)`` writes strict JSON.

    Example:
        >>> json_safe({"ci": [float("nan"), 0.5], "p": float("inf")})
        {'ci': [None, 0.5], 'p': None}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
