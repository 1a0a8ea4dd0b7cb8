"""Helpers shared by the dense-target kernels (masks, boxes, batches): tv_tensors, blend flags, checks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cutmix import _validate as V
from cutmix.params import MixParams


def _is_tv(value: Any) -> bool:
    return isinstance(value, Tensor) and type(value).__module__.startswith("torchvision.")


def _plain(t: Tensor) -> Tensor:
    return t.as_subclass(Tensor) if type(t) is not Tensor else t


def _blend_flags(params: MixParams, device: torch.device) -> Tensor:
    n = params.perm.shape[0]
    if params.boxes is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    if params.blend is None:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return params.blend.to(device)


def _check_thresholds(min_visibility: Any, min_area: Any) -> tuple[float, float]:
    for value, name in ((min_visibility, "min_visibility"), (min_area, "min_area")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            V.fail(name, "a float", V.describe(value), kind=TypeError)
    if not 0.0 <= min_visibility <= 1.0:
        V.fail("min_visibility", "a fraction in [0, 1]", min_visibility)
    if not min_area >= 0.0:
        V.fail("min_area", "an area >= 0 (pixels)", min_area)
    return float(min_visibility), float(min_area)
