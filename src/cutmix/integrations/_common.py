"""Small helpers shared by the integrations (argument checks in the house style)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["describe", "fail"]


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, torch.Tensor):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def fail(name: str, expected: str, got: Any, *, kind: type[Exception] = ValueError) -> None:
    """Raise ``kind`` naming the argument, what was expected and what came."""
    raise kind(f"{name}: expected {expected}, got {got}")
