"""Extra metric logs next to ``metrics.jsonl``: TensorBoard event files and ``metrics.csv``.

``cutmix train/compare --log tensorboard,csv`` writes, in the run folder, ``metrics.csv`` (one row
per epoch, the columns of ``metrics.jsonl``; rewritten whole after each epoch, so a resumed run's
file matches its ``metrics.jsonl``) and ``tensorboard/`` (event files: every numeric field of an
epoch's row as a scalar, the epoch as the step; open with ``tensorboard --logdir RUN``).

Example:
    >>> import tempfile, csv
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> logs = MetricLogs.open(out, "csv", history=[])
    >>> logs.write([{"epoch": 1, "train_loss": 0.5, "val_acc": None}])
    >>> logs.close()
    >>> next(csv.DictReader(open(out / "metrics.csv")))["train_loss"]
    '0.5'
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cutmix.train.errors import UsageError

__all__ = ["LOG_KINDS", "MetricLogs", "parse_log_kinds"]

LOG_KINDS: tuple[str, ...] = ("tensorboard", "csv")


def parse_log_kinds(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"tensorboard,csv"`` → ``("tensorboard", "csv")``; unknown kinds are a :class:`UsageError`.

    Example:
        >>> parse_log_kinds("csv, tensorboard")
        ('csv', 'tensorboard')
    """
    if not spec:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    kinds: list[str] = []
    for item in items:
        kind = str(item).strip().lower()
        if not kind:
            continue
        if kind not in LOG_KINDS:
            raise UsageError(f"log: expected a comma-separated list of {', '.join(LOG_KINDS)}, "
                             f"got {item!r}")  # fmt: skip
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One metrics row with lists (per-class accuracy) spread over ``key/0``, ``key/1``, ... columns.

    Example:
        >>> flat_row({"epoch": 1, "val_per_class": [0.5, None]})
        {'epoch': 1, 'val_per_class/0': 0.5, 'val_per_class/1': None}
    """
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, (list, tuple)):
            flat.update({f"{key}/{i}": v for i, v in enumerate(value)})
        elif isinstance(value, dict):
            flat[key] = json.dumps(value)
        else:
            flat[key] = value
    return flat


def _cell(value: Any) -> Any:
    return "" if value is None else value


class MetricLogs:
    """The extra logs of one run folder; ``write(history)`` after each epoch, ``close()`` at the end."""

    def __init__(self, out: Path, kinds: tuple[str, ...], writer: Any) -> None:
        self.out, self.kinds, self._tb = Path(out), kinds, writer
        self._tb_epochs: set[int] = set()

    @classmethod
    def open(
        cls, out: str | Path, spec: str | Sequence[str] | None, history: list[dict]
    ) -> MetricLogs:
        """Check ``spec`` and open the logs (an error, before training, if tensorboard is missing)."""
        kinds = parse_log_kinds(spec)
        writer = None
        if "tensorboard" in kinds:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise UsageError(
                    "log: tensorboard logs need the tensorboard package "
                    "(pip install 'cutmix[tensorboard]')"
                ) from err
            writer = SummaryWriter(log_dir=str(Path(out) / "tensorboard"))
        logs = cls(Path(out), kinds, writer)
        # On resume the epochs already logged stay as they are (their events are on disk).
        logs._tb_epochs.update(int(r["epoch"]) for r in history if "epoch" in r)
        if history:
            logs._write_csv(history)
        return logs

    def write(self, history: list[dict]) -> None:
        """Log the rows of ``history`` not logged yet (TensorBoard) and rewrite ``metrics.csv``."""
        if "csv" in self.kinds:
            self._write_csv(history)
        if self._tb is not None:
            for row in history:
                epoch = int(row.get("epoch", len(self._tb_epochs) + 1))
                if epoch in self._tb_epochs:
                    continue
                for key, value in flat_row(row).items():
                    if key != "epoch" and isinstance(value, (int, float)):
                        self._tb.add_scalar(key, float(value), global_step=epoch)
                self._tb_epochs.add(epoch)
            self._tb.flush()

    def _write_csv(self, history: list[dict]) -> None:
        if "csv" not in self.kinds:
            return
        rows = [flat_row(row) for row in history]
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(row.get(k)) for k in columns})
        tmp = self.out / "metrics.csv.tmp"
        tmp.write_text(buf.getvalue())
        os.replace(tmp, self.out / "metrics.csv")  # a reader never sees half a file

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
