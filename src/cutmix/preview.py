"""Grids of mixed samples as PNG: pasted boxes outlined, label weights written under each image.

For detection and segmentation batches the same grid also draws the mixed targets: object boxes
(``target_boxes``, outlined in green with their class) and class maps (``masks``, a translucent
colour per class over the pixels they label).

Like the tutorial's ``{Dog: 0.6, Cat: 0.4}`` figure, but drawn from the very :class:`~cutmix.MixParams`
that mixed the batch, so the outline is exactly the pasted region and the weights are exactly λ and
``1 - λ``. Needs Pillow (the ``cli`` extras).

Example:
    >>> import torch, cutmix
    >>> x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    >>> y = torch.tensor([0, 1, 2, 3])
    >>> mix = cutmix.CutMix(1.0, num_classes=4)
    >>> p = mix.sample(x, generator=torch.Generator().manual_seed(0))
    >>> img = render_grid(mix.apply(x, y, p)[0], y, p, classes=list("abcd"), cols=2, scale=4)
    >>> img.size == grid_size(4, 8, 8, cols=2, scale=4)
    True
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from cutmix.params import MixParams

__all__ = ["class_color", "grid_size", "render_grid"]

PAD = 4
TEXT_H = 26  # two lines of Pillow's default font
BOX_COLOR = (255, 40, 40)
TARGET_BOX_COLOR = (40, 220, 60)


def class_color(k: int) -> tuple[int, int, int]:
    """A fixed, well-spread RGB colour for class ``k`` (golden-ratio hues).

    Example:
        >>> class_color(0) != class_color(1)
        True
    """
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((k * 0.618033988749895) % 1.0, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def _overlay_mask(tile: Any, mask: Tensor, alpha: float, skip: set[int]) -> Any:
    """Blend a colour per class over the labelled pixels of ``tile`` (a PIL image at mask size)."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(tile).astype(np.float32)
    m = mask.cpu().numpy()
    for k in np.unique(m).tolist():
        if int(k) in skip:
            continue
        sel = m == k
        arr[sel] = (1 - alpha) * arr[sel] + alpha * np.array(class_color(int(k)), np.float32)
    return Image.fromarray(arr.round().clip(0, 255).astype(np.uint8))


def grid_size(n: int, h: int, w: int, *, cols: int = 8, scale: int = 4) -> tuple[int, int]:
    """``(width, height)`` in pixels of the grid :func:`render_grid` draws for ``n`` images.

    Example:
        >>> grid_size(16, 32, 32, cols=8, scale=4)
        (1060, 320)
    """
    c = max(1, min(cols, n))
    r = math.ceil(n / c)
    cw = max(w * scale, 64)
    return c * (cw + PAD) + PAD, r * (h * scale + TEXT_H + PAD) + PAD


def _label_text(classes: list[str] | None, a: int | None, b: int | None, lam: float) -> list[str]:
    if classes is None or a is None or b is None:  # no image-level labels (detection)
        return [f"own: {lam:.2f}"]
    if lam >= 1.0:
        return [f"{classes[a]}: 1.00"]
    if a == b:  # pasted from an image of the same class
        return [f"{classes[a]}: {lam:.2f} + {1 - lam:.2f}"]
    return [f"{classes[a]}: {lam:.2f}", f"{classes[b]}: {1 - lam:.2f}"]


def render_grid(
    images: Tensor,
    labels: Tensor | None,
    params: MixParams,
    *,
    classes: list[str] | None = None,
    cols: int = 8,
    scale: int = 4,
    masks: Tensor | None = None,
    target_boxes: list[Tensor] | None = None,
    target_labels: list[Tensor] | None = None,
    mask_alpha: float = 0.45,
    mask_skip: tuple[int, ...] = (0, 255),
) -> Any:
    """Draw mixed ``images`` (N, C, H, W) with the boxes and label weights of ``params``.

    ``labels`` are the image-level class ids (``None`` for detection batches: then only λ is
    written). Dense targets, already mixed with the same params, are drawn too: ``masks``
    ``(N, H, W)`` class maps as a translucent colour per class (classes in ``mask_skip``, by
    default background 0 and ignore 255, stay clear), ``target_boxes`` (per image ``(K, 4)`` XYXY)
    outlined in green with their ``target_labels``. Returns a ``PIL.Image`` of size
    :func:`grid_size`.

    Example:
        >>> p = MixParams(perm=torch.tensor([1, 0]), lam=torch.tensor([0.75, 1.0]),
        ...               boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]), size=(4, 4))
        >>> masks = torch.ones(2, 4, 4, dtype=torch.long)
        >>> img = render_grid(torch.zeros(2, 3, 4, 4), None, p, masks=masks, cols=2,
        ...                   target_boxes=[torch.tensor([[1, 1, 3, 3]]), torch.zeros(0, 4)])
        >>> img.size == grid_size(2, 4, 4, cols=2, scale=4)
        True
    """
    from PIL import Image, ImageDraw, ImageFont

    n, c, h, w = images.shape
    if images.dtype != torch.uint8:
        images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if c == 1:
        images = images.expand(n, 3, h, w)
    elif c != 3:
        images = images[:, :3]
    if labels is not None:
        classes = classes or [str(i) for i in range(int(labels.max()) + 1)]
    if masks is not None and masks.dim() == 4:
        masks = masks[:, 0]
    if masks is not None and (masks.shape[0] != n or tuple(masks.shape[-2:]) != (h, w)):
        raise ValueError(f"masks: expected ({n}, {h}, {w}) class maps, got {tuple(masks.shape)}")
    if target_boxes is not None and len(target_boxes) != n:
        raise ValueError(f"target_boxes: expected {n} per-image tensors, got {len(target_boxes)}")
    width, height = grid_size(n, h, w, cols=cols, scale=scale)
    ncols = max(1, min(cols, n))
    cw = max(w * scale, 64)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    perm = params.perm.cpu().tolist()
    lam = params.lam.cpu().tolist()
    boxes = None if params.boxes is None else params.boxes.cpu().tolist()
    blend = None if params.blend is None else params.blend.cpu().tolist()
    ys = None if labels is None else labels.cpu().tolist()
    arr = images.cpu().permute(0, 2, 3, 1).contiguous().numpy()
    for i in range(n):
        r, k = divmod(i, ncols)
        x0 = PAD + k * (cw + PAD) + (cw - w * scale) // 2
        y0 = PAD + r * (h * scale + TEXT_H + PAD)
        tile = Image.fromarray(arr[i])
        if masks is not None:
            tile = _overlay_mask(tile, masks[i], mask_alpha, set(mask_skip))
        tile = tile.resize((w * scale, h * scale), Image.Resampling.NEAREST)
        canvas.paste(tile, (x0, y0))
        if target_boxes is not None:
            names = None if target_labels is None else target_labels[i].cpu().tolist()
            for k, (tx1, ty1, tx2, ty2) in enumerate(target_boxes[i].cpu().tolist()):
                rect = (
                    x0 + tx1 * scale,
                    y0 + ty1 * scale,
                    x0 + tx2 * scale - 1,
                    y0 + ty2 * scale - 1,
                )
                draw.rectangle(rect, outline=TARGET_BOX_COLOR, width=1)
                if names is not None:
                    name = (
                        classes[names[k]] if classes and names[k] < len(classes) else str(names[k])
                    )
                    draw.text(
                        (rect[0] + 2, rect[1] + 1), name[:10], fill=TARGET_BOX_COLOR, font=font
                    )
        if boxes is not None and not (blend is not None and blend[i]):
            bx1, by1, bx2, by2 = boxes[i]
            if bx2 > bx1 and by2 > by1:
                draw.rectangle(
                    (
                        x0 + bx1 * scale,
                        y0 + by1 * scale,
                        x0 + bx2 * scale - 1,
                        y0 + by2 * scale - 1,
                    ),
                    outline=BOX_COLOR,
                    width=max(1, scale // 2),
                )
        own = None if ys is None else ys[i]
        other = None if ys is None else ys[perm[i]]
        for j, line in enumerate(_label_text(classes, own, other, lam[i])):
            draw.text(
                (x0 - (cw - w * scale) // 2, y0 + h * scale + 1 + 12 * j),
                line[:24],
                fill=(0, 0, 0),
                font=font,
            )
    return canvas
