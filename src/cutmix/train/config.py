"""The configuration of one training run: plain Python values only (JSON and checkpoint friendly).

Example:
    >>> c = TrainConfig(mix="cutmix", epochs=10, mix_off_epochs=2)
    >>> c.validate().mix_epochs
    8
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, fields
from typing import Any

from cutmix.train.errors import UsageError
from cutmix.train.imbalance import parse_partner_weights
from cutmix.train.logs import parse_log_kinds
from cutmix.train.models import MODELS, parse_model_kwargs

__all__ = [
    "MAX_IMAGE_SIZE",
    "MIX_CHOICES",
    "TrainConfig",
    "check_device",
    "check_out_dir",
    "check_out_outside_data",
]

MIX_CHOICES = ("none", "cutmix", "mixup", "randommix")
MAX_IMAGE_SIZE = 2048  # larger sides do not fit a dataset in memory anyway
MAX_EPOCHS = 1_000_000  # sensible ranges: beyond them a typo, not a plan
MAX_BATCH = 1 << 20
MAX_WORKERS = 256


def check_out_dir(out: Any, flag: str = "out") -> None:
    """``out`` must name a folder that can be created: not empty, not a file, not below a file.

    Example:
        >>> check_out_dir("")
        Traceback (most recent call last):
        ...
        cutmix.train.errors.UsageError: out: expected a folder path, got ''
    """
    if not isinstance(out, (str, os.PathLike)) or str(out).strip() == "":
        raise UsageError(f"{flag}: expected a folder path, got {out!r}")
    p = os.path.abspath(os.path.expanduser(os.fspath(out)))
    if os.path.exists(p) and not os.path.isdir(p):
        raise UsageError(f"{flag}: expected a folder, got the existing file {str(out)!r}")
    parent = os.path.dirname(p)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise UsageError(
            f"{flag}: expected a folder path, got {str(out)!r} below the file {parent!r}"
        )


def check_out_outside_data(out: str, data: str, flag: str = "out") -> None:
    """The run folder must not lie in the data folder: it would become a class folder without
    images there (created by the run's lock before the data is read) and break every later run.

    Example:
        >>> check_out_outside_data("runs/x", "digits")
    """
    if data == "digits":
        return
    d = os.path.realpath(os.path.expanduser(data))
    if not os.path.isdir(d):
        return
    o = os.path.realpath(os.path.expanduser(out))
    if o == d or o.startswith(d.rstrip(os.sep) + os.sep):
        raise UsageError(
            f"{flag}: expected a folder outside the data folder {data!r}, got {out!r} (inside it, it "
            "would be read as a class folder)"
        )


def check_device(name: Any) -> None:
    """``name`` must be ``auto`` or a torch device that exists on this machine."""
    if not isinstance(name, str):
        raise UsageError(f"device: expected a device name, got {name!r}")
    if name == "auto":
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise UsageError(f"device: expected auto, cpu, cuda or cuda:K, got {name!r}") from e
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device: expected an available device, got {name!r} (no CUDA)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(
                f"device: expected cuda:0..cuda:{torch.cuda.device_count() - 1}, got {name!r}"
            )
        return
    if (
        dev.type == "mps"
        and getattr(torch.backends, "mps", None)
        and torch.backends.mps.is_available()
    ):
        return
    raise UsageError(f"device: expected auto, cpu or an available cuda device, got {name!r}")


def _check_types(cfg: Any) -> None:
    """Every field holds a value of its declared type (configs also come from checkpoints)."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        hint = hints.get(f.name)
        allowed: list[type] = []
        for t in typing.get_args(hint) or (hint,):
            t = typing.get_origin(t) or t
            if isinstance(t, type):
                allowed.append(t)
        if not allowed or (v is None and type(None) in allowed):
            continue
        ok = any(
            (isinstance(v, t) and not (t is int and isinstance(v, bool)))
            or (t is float and isinstance(v, int) and not isinstance(v, bool))
            for t in allowed
            if t is not type(None)
        )
        if not ok:
            names = " or ".join(t.__name__ for t in allowed)
            raise UsageError(f"{f.name.replace('_', '-')}: expected {names}, got {v!r}")


@dataclass
class TrainConfig:
    """Every option of a training run (the CLI's ``cutmix train`` flags map 1:1 onto these)."""

    # data
    data: str = "digits"
    image_size: int = 32
    val_fraction: float | None = None
    split_seed: int = 0
    train_subset: int | None = None
    limit_per_class: int | None = None
    cache: bool = True
    # model and optimisation
    model: str = "tutorial"
    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    label_smoothing: float = 0.0
    # augmentation
    flip: bool = False
    crop_padding: int = 0
    # mixing
    mix: str = "cutmix"
    alpha: float = 1.0
    mixup_alpha: float = 0.2
    p: float = 0.5
    mode: str = "sample"
    mix_off_epochs: int = 0
    mix_in: str = "loop"
    workers: int = 0
    # run
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    out: str = "runs/train"
    stop_after: int | None = None
    eval_every: int = 1
    quiet: bool = False
    log: str = ""  # extra metric logs: "tensorboard", "csv" (cutmix.train.logs)
    # imbalanced data and model options (issue 12)
    imbalance: float | None = None
    partner_weights: str = "none"
    model_kwargs: str | None = None

    @property
    def mix_epochs(self) -> int:
        """Epochs that mix (all but the last ``mix_off_epochs``)."""
        return self.epochs - self.mix_off_epochs

    def validate(self) -> TrainConfig:
        """Check option values and combinations; raises :class:`UsageError` with a clear message."""

        def bad(name: str, expected: str, got: Any) -> None:
            raise UsageError(f"{name.replace('_', '-')}: expected {expected}, got {got!r}")

        _check_types(self)
        if not 1 <= self.epochs <= MAX_EPOCHS:
            bad("epochs", f"1..{MAX_EPOCHS}", self.epochs)
        if not 1 <= self.batch_size <= MAX_BATCH:
            bad("batch_size", f"1..{MAX_BATCH}", self.batch_size)
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "a positive finite learning rate", self.lr)
        if not 0 <= self.momentum < 1:
            bad("momentum", "a value in [0, 1)", self.momentum)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            bad("weight_decay", "a non-negative finite value", self.weight_decay)
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            bad("warmup_epochs", "a non-negative finite number of epochs", self.warmup_epochs)
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", "a value in [0, 1)", self.label_smoothing)
        if self.optimizer not in ("sgd", "adamw"):
            bad("optimizer", "'sgd' or 'adamw'", self.optimizer)
        if self.mix not in MIX_CHOICES:
            bad("mix", " or ".join(MIX_CHOICES), self.mix)
        if self.mode not in ("batch", "pair", "sample"):
            bad("mode", "'batch', 'pair' or 'sample'", self.mode)
        if self.mix_in not in ("loop", "workers"):
            bad("mix_in", "'loop' or 'workers'", self.mix_in)
        if not 0 <= self.mix_off_epochs <= self.epochs:
            bad("mix_off_epochs", f"0..{self.epochs} (at most --epochs)", self.mix_off_epochs)
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            bad("alpha", "a positive finite Beta concentration", self.alpha)
        if not (math.isfinite(self.mixup_alpha) and self.mixup_alpha > 0):
            bad("mixup_alpha", "a positive finite Beta concentration", self.mixup_alpha)
        if not 0 <= self.p <= 1:
            bad("p", "a probability in [0, 1]", self.p)
        if not 1 <= self.image_size <= MAX_IMAGE_SIZE:
            bad("image_size", f"a side in 1..{MAX_IMAGE_SIZE} pixels", self.image_size)
        if not 0 <= self.crop_padding <= self.image_size:
            # checked again against the real image side once the data is read
            bad(
                "crop_padding",
                f"a padding in 0..{self.image_size} (at most --image-size)",
                self.crop_padding,
            )
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            bad("val_fraction", "a number in (0, 1)", self.val_fraction)
        if not 0 <= self.split_seed < 2**63:
            bad("split_seed", "a seed in [0, 2**63)", self.split_seed)
        if self.train_subset is not None and self.train_subset < 1:
            bad("train_subset", "at least 1 image", self.train_subset)
        if self.limit_per_class is not None and self.limit_per_class < 1:
            bad("limit_per_class", "at least 1 image per class", self.limit_per_class)
        if not 0 <= self.workers <= MAX_WORKERS:
            bad("workers", f"a count in 0..{MAX_WORKERS}", self.workers)
        if self.eval_every < 1:
            bad("eval_every", "at least 1 epoch", self.eval_every)
        if self.stop_after is not None and self.stop_after < 1:
            bad("stop_after", "at least 1 epoch", self.stop_after)
        if not 0 <= self.seed < 2**63:
            bad("seed", "a seed in [0, 2**63)", self.seed)
        check_out_dir(self.out, "out")
        check_device(self.device)
        parse_log_kinds(self.log)  # before any data is read or any run file is (re)written
        self._validate_imbalance()
        return self

    def _validate_imbalance(self) -> None:

        if self.imbalance is not None and not (
            isinstance(self.imbalance, (int, float)) and 1 <= self.imbalance < float("inf")
        ):
            raise UsageError(
                f"imbalance: expected a ratio R >= 1 (largest / smallest class), got {self.imbalance!r}"
            )
        power = parse_partner_weights(self.partner_weights)
        if (
            power is not None
            and self.mode == "pair"
            and self.mix in ("cutmix", "mixup", "randommix")
        ):
            raise UsageError(
                f"partner-weights: expected --mode sample or batch (pairs are not weighted), "
                f"got --mode pair with --partner-weights {self.partner_weights}"
            )
        kwargs = parse_model_kwargs(self.model_kwargs)
        if kwargs and self.model in MODELS:
            raise UsageError(
                f"model-kwargs: expected none for the built-in model {self.model!r} (they go to timm "
                f"models), got {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_args(self) -> list[str]:
        """The ``cutmix train`` flags that reproduce this config (defaults left out, but ``--mix``
        always written: it is what a reader of a command looks for first)."""
        default = TrainConfig()
        args: list[str] = []
        for f in fields(self):
            v, d = getattr(self, f.name), getattr(default, f.name)
            if (v == d and f.name != "mix") or f.name in ("quiet",):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(v, bool):
                args.append(flag if v else "--no-" + f.name.replace("_", "-"))
            elif v is not None:
                args += [flag, str(v)]
        return args
