"""Helpers shared by the test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import pytest
import torch

import cutmix

HAS_C_COMPILER = any(shutil.which(c) for c in ("cc", "gcc", "clang"))
# Every kernel "auto" can pick, each forced in turn (the C kernel only where a compiler builds it).
FORCED = [
    s for s in cutmix.functional.STRATEGIES if s != "auto" and (s != "native" or HAS_C_COMPILER)
]


def hand_params(
    perm: Sequence[int],
    boxes: Sequence[Sequence[int]] | None,
    size: tuple[int, int] | None,
    lam: Sequence[float] | torch.Tensor | None = None,
    blend: Sequence[bool] | None = None,
) -> cutmix.MixParams:
    """Hand-built :class:`cutmix.MixParams`; ``lam`` defaults to the kept-pixel fraction of the boxes."""
    boxes_t = None if boxes is None else torch.tensor(boxes, dtype=torch.int64)
    if lam is None:
        assert boxes_t is not None and size is not None
        h, w = size
        area = (boxes_t[:, 2] - boxes_t[:, 0]) * (boxes_t[:, 3] - boxes_t[:, 1])
        lam = (1 - area.double() / (h * w)).float()
    return cutmix.MixParams(
        perm=torch.tensor(perm),
        lam=torch.as_tensor(lam, dtype=torch.float32).reshape(len(perm)),
        boxes=boxes_t,
        size=size,
        blend=None if blend is None else torch.tensor(blend),
    )


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``cutmix.cli.main(argv)`` in process: (exit code, stdout, stderr)."""
    from cutmix.cli import main  # the CLI needs the `cli` extra; most tests do not

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err
