"""Checks of untrusted inputs that are not options: checkpoints (for ``evaluate`` and ``--resume``)
and the ``preview`` command's arguments. Each failure is one :class:`UsageError` naming what was
expected and what came.

Example:
    >>> check_checkpoint({"format": "cutmix-checkpoint/1"}, "ck.pt")
    Traceback (most recent call last):
    ...
    cutmix.train.errors.UsageError: checkpoint: expected 'model_name' in ck.pt, got a checkpoint without it
"""

from __future__ import annotations

import json
import math
from typing import Any

from cutmix.train.config import MAX_IMAGE_SIZE, TrainConfig, check_out_dir
from cutmix.train.errors import UsageError

__all__ = ["MAX_CLASSES", "check_checkpoint", "check_preview_args", "check_resume_state"]

MAX_CLASSES = 100_000  # more classes than any real dataset; bounds the model and class-name lists

_CONFIG_KEYS = (
    "data",
    "image_size",
    "val_fraction",
    "split_seed",
    "train_subset",
    "limit_per_class",
    "model",
    "seed",
    "batch_size",
    "epochs",
)


def _need(state: dict[str, Any], key: str, kind: Any, what: str, where: Any) -> Any:
    if key not in state:
        raise UsageError(f"checkpoint: expected {key!r} in {where}, got a checkpoint without it")
    v = state[key]
    bad = not isinstance(v, kind) or (kind is int and isinstance(v, bool))
    if bad:
        raise UsageError(f"checkpoint: expected {key!r} to be {what} in {where}, got {v!r:.80}")
    return v


def _int(state: dict[str, Any], key: str, lo: int, hi: int, where: Any) -> int:
    v = _need(state, key, int, "an int", where)
    if not lo <= v <= hi:
        raise UsageError(f"checkpoint: expected {key!r} in {lo}..{hi} in {where}, got {v}")
    return int(v)


def check_checkpoint(state: dict[str, Any], where: Any) -> None:
    """What ``evaluate`` reads from a checkpoint: names, sizes, classes, normalisation, config."""
    import torch

    _need(state, "model_name", str, "a model name", where)
    n = _int(state, "num_classes", 1, MAX_CLASSES, where)
    c = _int(state, "in_channels", 1, 64, where)
    _int(state, "image_size", 1, MAX_IMAGE_SIZE, where)
    classes = _need(state, "classes", list, "a list of class names", where)
    if len(classes) != n or not all(isinstance(s, str) for s in classes):
        raise UsageError(
            f"checkpoint: expected 'classes' to be {n} names (num_classes) in {where}, "
            f"got {len(classes)} entries"
        )
    for key in ("mean", "std"):
        v = _need(state, key, list, "a list of numbers", where)
        ok = len(v) == c and all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in v
        )
        if not ok or (key == "std" and min(v) <= 0):
            raise UsageError(
                f"checkpoint: expected {key!r} to be {c} finite numbers (one per channel"
                f"{', positive' if key == 'std' else ''}) in {where}, got {v!r:.80}"
            )
    weights = _need(state, "model", dict, "a dict of tensors", where)
    if not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise UsageError(f"checkpoint: expected 'model' to be a dict of tensors in {where}")
    cfg = _need(state, "config", dict, "a dict", where)
    missing = [k for k in _CONFIG_KEYS if k not in cfg]
    if missing:
        raise UsageError(
            f"checkpoint: expected a config with {', '.join(missing)} in {where}, got one without"
        )
    _need(state, "epoch", int, "an int", where)
    try:
        TrainConfig.from_dict({**cfg, "out": ".", "device": "cpu"}).validate()
    except UsageError as e:
        raise UsageError(f"checkpoint: expected a valid config in {where}, got {e}") from e
    except TypeError as e:
        raise UsageError(f"checkpoint: expected a valid config in {where}, got {e}") from e


def check_resume_state(state: dict[str, Any], where: Any) -> None:
    """Everything ``--resume`` restores: the above, plus optimiser, position, history and RNG state."""
    import torch

    check_checkpoint(state, where)
    epochs = state["config"]["epochs"]
    _int(state, "epoch", 0, epochs, where)
    _int(state, "step", 0, 2**62, where)
    opt = _need(state, "optimizer", dict, "an optimizer state dict", where)
    if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        raise UsageError(
            f"checkpoint: expected 'optimizer' with 'state' and 'param_groups' in {where}, "
            f"got keys {sorted(map(str, opt))}"
        )
    hist = _need(state, "history", list, "a list of epoch rows", where)
    if not all(isinstance(r, dict) for r in hist):
        raise UsageError(f"checkpoint: expected 'history' to be a list of dicts in {where}")
    try:  # the rows are written back to metrics.jsonl, which stays strict JSON
        json.dumps(hist, allow_nan=False)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"checkpoint: expected 'history' rows of finite numbers and strings in {where}, got: {e}"
        ) from e
    rng = _need(state, "rng", dict, "a dict", where)
    t = rng.get("torch")
    want = torch.get_rng_state()
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.shape == want.shape):
        got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else repr(t)[:60]
        raise UsageError(
            f"checkpoint: expected rng['torch'] to be a uint8 tensor of shape {tuple(want.shape)} "
            f"in {where}, got {got}"
        )
    try:  # the generator checks its own state: try it, then put the current one back
        torch.set_rng_state(t)
    except RuntimeError as e:
        raise UsageError(
            f"checkpoint: expected a valid torch RNG state in {where}, got: {e}"
        ) from e
    finally:
        torch.set_rng_state(want)


def check_preview_args(args: Any) -> None:
    """``cutmix preview``: an output file (not a folder), sizes and mixing numbers in range."""
    import os

    out = args.out
    if not isinstance(out, str) or not out.strip():
        raise UsageError(f"out: expected a PNG file path, got {out!r}")
    if os.path.isdir(out):
        raise UsageError(f"out: expected a PNG file path, got the folder {out!r}")
    parent = os.path.dirname(os.path.abspath(out))
    if os.path.isfile(parent):
        raise UsageError(f"out: expected a PNG file path, got {out!r} below the file {parent!r}")
    check_out_dir(parent, "out")
    checks = (
        (
            "image-size",
            args.image_size,
            1 <= args.image_size <= MAX_IMAGE_SIZE,
            f"1..{MAX_IMAGE_SIZE}",
        ),
        ("num", args.num, 1 <= args.num <= 1024, "1..1024 images"),
        ("cols", args.cols, 1 <= args.cols <= 1024, "1..1024"),
        ("scale", args.scale, 1 <= args.scale <= 64, "a zoom in 1..64"),
        (
            "alpha",
            args.alpha,
            math.isfinite(args.alpha) and args.alpha > 0,
            "a positive finite number",
        ),
        (
            "mixup-alpha",
            args.mixup_alpha,
            math.isfinite(args.mixup_alpha) and args.mixup_alpha > 0,
            "a positive finite number",
        ),
        ("p", args.p, 0 <= args.p <= 1, "a probability in [0, 1]"),
        ("seed", args.seed, 0 <= args.seed < 2**63, "a seed in [0, 2**63)"),
    )
    for name, v, ok, expected in checks:
        if not ok:
            raise UsageError(f"{name}: expected {expected}, got {v!r}")
