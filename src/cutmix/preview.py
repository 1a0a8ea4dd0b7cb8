"""Grids of mixed samples as PNG: pasted boxes outlined, label weights written under each image.

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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cutmix.params import MixParams

__all__ = ["grid_size", "preview_from_data", "preview_from_splits", "render_grid"]

PAD = 4
TEXT_H = 26  # two lines of Pillow's default font
BOX_COLOR = (255, 40, 40)


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


def _label_text(classes: list[str], a: int, b: int, lam: float) -> list[str]:
    if lam >= 1.0:
        return [f"{classes[a]}: 1.00"]
    if a == b:  # pasted from an image of the same class
        return [f"{classes[a]}: {lam:.2f} + {1 - lam:.2f}"]
    return [f"{classes[a]}: {lam:.2f}", f"{classes[b]}: {1 - lam:.2f}"]


def render_grid(
    images: Tensor,
    labels: Tensor,
    params: MixParams,
    *,
    classes: list[str] | None = None,
    cols: int = 8,
    scale: int = 4,
) -> Any:
    """Draw mixed uint8 ``images`` (N, C, H, W) with the boxes and label weights of ``params``.

    Returns a ``PIL.Image`` of size :func:`grid_size`.
    """
    from PIL import Image, ImageDraw, ImageFont

    n, c, h, w = images.shape
    if images.dtype != torch.uint8:
        images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if c == 1:
        images = images.expand(n, 3, h, w)
    elif c != 3:
        images = images[:, :3]
    classes = classes or [str(i) for i in range(int(labels.max()) + 1)]
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
    ys = labels.cpu().tolist()
    arr = images.cpu().permute(0, 2, 3, 1).contiguous().numpy()
    for i in range(n):
        r, k = divmod(i, ncols)
        x0 = PAD + k * (cw + PAD) + (cw - w * scale) // 2
        y0 = PAD + r * (h * scale + TEXT_H + PAD)
        tile = Image.fromarray(arr[i]).resize((w * scale, h * scale), Image.Resampling.NEAREST)
        canvas.paste(tile, (x0, y0))
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
        for j, line in enumerate(_label_text(classes, ys[i], ys[perm[i]], lam[i])):
            draw.text(
                (x0 - (cw - w * scale) // 2, y0 + h * scale + 1 + 12 * j),
                line[:24],
                fill=(0, 0, 0),
                font=font,
            )
    return canvas


def preview_from_splits(
    splits: Any,
    *,
    out: str | Path,
    mix: str = "cutmix",
    alpha: float = 1.0,
    mixup_alpha: float = 0.2,
    p: float = 1.0,
    mode: str = "sample",
    num: int = 16,
    cols: int = 8,
    scale: int = 4,
    seed: int = 0,
) -> tuple[Path, tuple[int, int]]:
    """Mix ``num`` training images of ``splits`` and write the grid to ``out`` (PNG)."""
    from cutmix.train.config import TrainConfig
    from cutmix.train.errors import UsageError
    from cutmix.train.loop import build_mix

    if num < 1 or cols < 1 or scale < 1:
        raise UsageError(f"num/cols/scale: expected positive ints, got {num}/{cols}/{scale}")
    cfg = TrainConfig(mix=mix, alpha=alpha, mixup_alpha=mixup_alpha, p=p, mode=mode)
    m = build_mix(cfg, splits.num_classes)
    assert m is not None
    g = torch.Generator().manual_seed(seed)
    n = min(num, len(splits.train))
    idx = torch.randperm(len(splits.train), generator=g)[:n]
    x, y = splits.train.x[idx], splits.train.y[idx]
    params = m.sample(x, generator=g)
    mixed, _ = m.apply(x, y, params)
    img = render_grid(mixed, y, params, classes=splits.classes, cols=cols, scale=scale)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path, img.size


def preview_from_data(
    data: str, *, out: str | Path, image_size: int = 32, **kwargs: Any
) -> tuple[Path, tuple[int, int]]:
    """Load ``data`` (as ``cutmix train --data``) and write a preview grid; see :func:`preview_from_splits`."""
    from cutmix.train.data import load_data

    return preview_from_splits(load_data(data, image_size=image_size), out=out, **kwargs)
