"""Small helpers shared by the integrations (argument checks in the house style)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["describe", "fail", "rank_seed_offset", "require"]


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def fail(name: str, expected: str, got: Any, *, kind: type[Exception] = ValueError) -> None:
    raise kind(f"{name}: expected {expected}, got {got}")


def require(module: str, extra: str) -> Any:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"this cutmix integration needs {module}: pip install 'cutmix[{extra}]'"
        ) from err


def rank_seed_offset() -> int:
    """This process's ``torch.distributed`` rank (0 when not initialised)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0
