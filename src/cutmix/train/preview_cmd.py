"""``cutmix preview``: mix a few training images of a data set and write the grid as PNG.

The drawing itself is :func:`cutmix.preview.render_grid` (library side); this module adds what needs
the training tool: loading a data set and building the mix from a :class:`TrainConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cutmix.preview import render_grid
from cutmix.train.config import TrainConfig
from cutmix.train.data import load_data
from cutmix.train.errors import UsageError
from cutmix.train.loop import build_mix

__all__ = ["preview_from_data", "preview_from_splits"]


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
    return preview_from_splits(load_data(data, image_size=image_size), out=out, **kwargs)
