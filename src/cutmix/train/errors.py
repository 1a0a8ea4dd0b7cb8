"""The one exception the CLI turns into a clear message and a non-zero exit (no traceback)."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad input from the user: a missing folder, an unknown model, incompatible options...

    Example:
        >>> str(UsageError("data: expected a folder, got 'x'"))
        "data: expected a folder, got 'x'"
    """
