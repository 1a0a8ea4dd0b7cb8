"""Long-tailed training sets (``--imbalance R``) and partner weights from class counts.

The profile is the one of CIFAR-10-LT (Cao et al., 2019): class ``c`` (``c = 0 .. C-1``, in class-index
order, i.e. the sorted class-folder names) keeps ``n_c = floor(n_max · R^(-c / (C-1)))`` training
images, where ``n_max`` is the size of the largest training class. Class 0 keeps ``n_max``, the last
class ``floor(n_max / R)``; a class never keeps more than it has. Which images of a class are kept is
drawn once from the split seed: the same for every arm and every training seed. The validation split
is taken before the training set is thinned, so it stays as balanced as the source.

Example:
    >>> long_tail_counts(100, 3, 10.0)
    [100, 31, 10]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from cutmix.train.errors import UsageError

__all__ = [
    "PARTNER_WEIGHT_NAMES",
    "class_counts",
    "long_tail_counts",
    "long_tail_indices",
    "parse_partner_weights",
    "partner_class_weights",
]

PARTNER_WEIGHT_NAMES = {"none": None, "inverse_frequency": 1.0, "sqrt_inverse": 0.5}


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """``floor(n_max · ratio^(-c / (C-1)))`` for ``c = 0 .. C-1`` (exact integer floor).

    Example:
        >>> long_tail_counts(1000, 4, 100.0)
        [1000, 215, 46, 10]
    """
    if num_classes < 1:
        raise UsageError(f"imbalance: expected at least one class, got {num_classes}")
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 1):
        raise UsageError(
            f"imbalance: expected a ratio R >= 1 (largest / smallest class), got {ratio!r}"
        )
    if num_classes == 1:
        return [int(n_max)]
    out = []
    for c in range(num_classes):
        v = n_max * ratio ** (-c / (num_classes - 1))
        k = math.floor(v)
        if math.isclose(v, k + 1, rel_tol=1e-12):  # 1000 * 100**-1 = 9.999999999999998
            k += 1
        out.append(int(k))
    return out


def class_counts(y: torch.Tensor | np.ndarray, num_classes: int) -> list[int]:
    """Images per class id ``0 .. num_classes-1``.

    Example:
        >>> class_counts(torch.tensor([0, 2, 2]), 3)
        [1, 0, 2]
    """
    a = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y, dtype=np.int64)
    return [int(v) for v in np.bincount(a, minlength=num_classes)[:num_classes]]


def long_tail_indices(
    y: torch.Tensor | np.ndarray, num_classes: int, ratio: float, seed: int
) -> tuple[np.ndarray, list[int]]:
    """Sorted indices of the images kept by the long-tail profile, and the counts kept per class.

    The images of class ``c`` are permuted with a generator seeded from ``(seed, c)`` and the first
    ``n_c`` are kept, so the choice does not depend on the other classes or on the training seed.

    Example:
        >>> idx, counts = long_tail_indices(np.array([0] * 4 + [1] * 4), 2, 4.0, seed=0)
        >>> counts, len(idx)
        ([4, 1], 5)
    """
    a = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y, dtype=np.int64)
    have = class_counts(a, num_classes)
    target = long_tail_counts(max(have), num_classes, ratio)
    keep, kept = [], []
    for c in range(num_classes):
        idx = np.flatnonzero(a == c)
        k = min(target[c], len(idx))
        if k == 0 and len(idx):
            k = 1  # every class keeps at least one image (a class with none cannot be learnt)
        perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7919, c]).permutation(len(idx))
        keep.append(idx[np.sort(perm[:k])])
        kept.append(int(k))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64), kept


def parse_partner_weights(spec: str | float | None) -> float | None:
    """The power of ``counts ** -power`` for ``--partner-weights`` (``None``: uniform partners).

    ``none``, ``inverse_frequency`` (power 1), ``sqrt_inverse`` (power 0.5) or a number.

    Example:
        >>> parse_partner_weights("sqrt_inverse"), parse_partner_weights("2"), parse_partner_weights("none")
        (0.5, 2.0, None)
    """
    if spec is None:
        return None
    s = str(spec).strip()
    if s in PARTNER_WEIGHT_NAMES:
        return PARTNER_WEIGHT_NAMES[s]
    try:
        v = float(s)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v < 0:
        raise UsageError(
            "partner-weights: expected none, inverse_frequency, sqrt_inverse or a power >= 0, "
            f"got {spec!r}"
        )
    return v


def partner_class_weights(spec: str | float | None, counts: Sequence[int]) -> torch.Tensor | None:
    """Per-class partner weights ``counts ** -power`` from the *training set's* class counts.

    Example:
        >>> partner_class_weights("inverse_frequency", [100, 10]).tolist()
        [0.009999999776482582, 0.10000000149011612]
    """
    import cutmix

    power = parse_partner_weights(spec)
    if power is None:
        return None
    return cutmix.class_weights_from_counts([float(c) for c in counts], power=power)


def parse_arm(arm: str, default_weights: str, mixes: Sequence[str]) -> tuple[str, str]:
    """A ``compare`` arm: ``MIX`` or ``MIX+WEIGHTS`` -> ``(mix, partner_weights)``.

    ``cutmix+inverse_frequency`` is CutMix with partners drawn by inverse class frequency;
    a plain ``cutmix`` uses ``--partner-weights`` (default none).

    Example:
        >>> parse_arm("cutmix+inverse_frequency", "none", ("none", "cutmix"))
        ('cutmix', 'inverse_frequency')
        >>> parse_arm("none", "inverse_frequency", ("none", "cutmix"))
        ('none', 'none')
    """
    mix, plus, pw = arm.partition("+")
    if mix not in mixes:
        raise UsageError(
            f"arms: expected MIX or MIX+WEIGHTS with MIX from {', '.join(mixes)}, got {arm!r}"
        )
    if not plus:
        return mix, ("none" if mix == "none" else str(default_weights or "none"))
    if mix == "none":
        raise UsageError(f"arms: expected partner weights only on a mixing arm, got {arm!r}")
    try:
        parse_partner_weights(pw)
    except UsageError as e:
        raise UsageError(
            f"arms: expected MIX+WEIGHTS with {str(e).split('expected ', 1)[1]}"
        ) from None
    return mix, pw
