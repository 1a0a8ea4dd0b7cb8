"""The exceptions the CLI turns into a clear message and a non-zero exit (no traceback).

Exit statuses of the ``cutmix`` command: 0 success, 2 bad input (:class:`UsageError`), 3 a run that
diverged (:class:`TrainingDiverged`: a non-finite loss), 130 interrupted, 1 an internal error (a bug:
a traceback and a line asking to report it).
"""

from __future__ import annotations

__all__ = ["EXIT_DIVERGED", "EXIT_USAGE", "TrainingDiverged", "UsageError"]

EXIT_USAGE = 2
EXIT_DIVERGED = 3


class UsageError(Exception):
    """Bad input from the user: a missing folder, an unknown model, incompatible options...

    Example:
        >>> str(UsageError("data: expected a folder, got 'x'"))
        "data: expected a folder, got 'x'"
    """


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: the run stops (exit status 3), its last good checkpoint kept.

    Example:
        >>> str(TrainingDiverged("train: expected a finite loss, got nan at epoch 3"))
        'train: expected a finite loss, got nan at epoch 3'
    """
