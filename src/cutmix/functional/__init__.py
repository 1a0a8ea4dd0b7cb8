"""Pure kernels: apply :class:`~cutmix.MixParams` to images, labels, masks and boxes.

Nothing here draws random numbers; the same params always give the same tensors. Inputs are never
modified unless ``inplace=True``. The package's modules:

- ``_images``: :func:`cut_images`, :func:`mix_images`, :func:`apply_images`, :func:`box_mask`,
  :func:`one_hot`, :func:`mix_labels` and the private image kernels and their routing;
- :mod:`cutmix.functional.masks`: :func:`cut_masks`, :func:`mix_masks`,
  :func:`mixed_mask_cross_entropy`;
- :mod:`cutmix.functional.boxes`: :func:`cut_boxes`.

Example:
    >>> import torch, cutmix
    >>> from cutmix.functional import cut_images
    >>> x = torch.arange(2 * 1 * 2 * 2, dtype=torch.float32).view(2, 1, 2, 2)
    >>> p = cutmix.MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
    ...                      boxes=torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]]), size=(2, 2))
    >>> cut_images(x, p)[0, 0].tolist()
    [[4.0, 1.0], [2.0, 3.0]]
"""

from cutmix.functional._images import (
    OPT_IN_STRATEGIES,
    STRATEGIES,
    Strategy,
    apply_images,
    box_mask,
    cut_images,
    mix_images,
    mix_labels,
    one_hot,
)
from cutmix.functional.boxes import MixedBoxes, cut_boxes
from cutmix.functional.masks import MaskMix, cut_masks, mix_masks, mixed_mask_cross_entropy
from cutmix.params import MixParams as MixParams  # importable from here before the split

__all__ = [
    "OPT_IN_STRATEGIES",
    "STRATEGIES",
    "MaskMix",
    "MixedBoxes",
    "Strategy",
    "apply_images",
    "box_mask",
    "cut_boxes",
    "cut_images",
    "cut_masks",
    "mix_images",
    "mix_labels",
    "mix_masks",
    "mixed_mask_cross_entropy",
    "one_hot",
]
