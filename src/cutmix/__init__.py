"""cutmix: correct, fast, reproducible CutMix and MixUp for PyTorch.

Example:
    >>> import torch, cutmix
    >>> mix = cutmix.CutMix(alpha=1.0, num_classes=10)
    >>> x, t = mix(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    >>> t.dtype
    torch.float32
"""

from cutmix import dense, functional
from cutmix.collate import MixCollate
from cutmix.dense import DenseMix, cut_boxes, cut_masks, mix_batch, mix_masks
from cutmix.losses import mixed_binary_cross_entropy, mixed_cross_entropy, soft_target_cross_entropy
from cutmix.params import (
    MixParams,
    class_weights_from_counts,
    identity_params,
    partner_weights,
    sample_cutmix,
    sample_mixup,
    sample_partners,
)
from cutmix.transforms import CutMix, MixUp, RandomMix

__version__ = "0.1.0"

__all__ = [
    "CutMix",
    "DenseMix",
    "MixCollate",
    "MixParams",
    "MixUp",
    "RandomMix",
    "__version__",
    "class_weights_from_counts",
    "cut_boxes",
    "cut_masks",
    "dense",
    "functional",
    "identity_params",
    "mix_batch",
    "mix_masks",
    "mixed_binary_cross_entropy",
    "mixed_cross_entropy",
    "partner_weights",
    "sample_cutmix",
    "sample_mixup",
    "sample_partners",
    "soft_target_cross_entropy",
]
