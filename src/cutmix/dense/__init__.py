"""Dense targets: segmentation masks, detection boxes and whole detection / segmentation batches.

One :class:`~cutmix.MixParams` drives the images and every target, so each pixel's label and each
box match the pixels the model sees:

- :func:`cut_masks`: ``(N, H, W)`` / ``(N, 1, H, W)`` class maps get exactly the images' pasted
  region. :func:`mix_masks` covers MixUp too (the two maps and a per-sample weight) and
  :func:`mixed_mask_cross_entropy` is the loss that weighs them.
- :func:`cut_boxes`: per-image ``(K_i, 4)`` XYXY pixel boxes and ``(K_i,)`` labels; own boxes kept when
  visible enough, the partner's clipped to the pasted region; per-box weights on request.
- :func:`mix_batch` / :class:`DenseMix`: the one-call form for torchvision-style batches (a list of
  ``{"boxes", "labels", "masks", ...}`` dicts, or one dict of batch entries).

``torchvision.tv_tensors`` (``Image``, ``BoundingBoxes`` in any axis-aligned format, ``Mask``) are
accepted everywhere and come back as the same types (see :mod:`cutmix.interop.torchvision`).

Example:
    >>> import torch, cutmix
    >>> p = cutmix.MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
    ...                      boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]), size=(4, 4))
    >>> masks = torch.stack([torch.zeros(4, 4, dtype=torch.long), torch.ones(4, 4, dtype=torch.long)])
    >>> cut_masks(masks, p)[0].tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    >>> boxes, labels = cut_boxes([torch.tensor([[0, 0, 4, 4]]), torch.tensor([[1, 1, 3, 3]])],
    ...                           [torch.tensor([7]), torch.tensor([8])], p)
    >>> boxes[0].tolist(), labels[0].tolist()
    ([[0, 0, 4, 4], [1, 1, 2, 2]], [7, 8])
"""

import sys

from cutmix.dense.batch import BOX_KEYS, DenseMix, mix_batch
from cutmix.functional import boxes, masks
from cutmix.functional.boxes import MixedBoxes, cut_boxes
from cutmix.functional.masks import MaskMix, cut_masks, mix_masks, mixed_mask_cross_entropy

# The mask and box kernels moved to cutmix.functional (they sit below the transforms); the old
# module paths keep working: `from cutmix.dense.masks import cut_masks`.
sys.modules.setdefault(f"{__name__}.boxes", boxes)
sys.modules.setdefault(f"{__name__}.masks", masks)

__all__ = [
    "BOX_KEYS",
    "DenseMix",
    "MaskMix",
    "MixedBoxes",
    "cut_boxes",
    "cut_masks",
    "mix_batch",
    "mix_masks",
    "mixed_mask_cross_entropy",
]
