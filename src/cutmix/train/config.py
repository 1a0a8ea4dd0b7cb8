"""The configuration of one training run: plain Python values only (JSON and checkpoint friendly).

Example:
    >>> c = TrainConfig(mix="cutmix", epochs=10, mix_off_epochs=2)
    >>> c.validate().mix_epochs
    8
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from cutmix.train.errors import UsageError

__all__ = ["MIX_CHOICES", "TrainConfig"]

MIX_CHOICES = ("none", "cutmix", "mixup", "randommix")


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

        if self.epochs < 1:
            bad("epochs", "at least 1", self.epochs)
        if self.batch_size < 1:
            bad("batch_size", "at least 1", self.batch_size)
        if not self.lr > 0:
            bad("lr", "a positive learning rate", self.lr)
        if self.weight_decay < 0:
            bad("weight_decay", "a non-negative value", self.weight_decay)
        if not self.warmup_epochs >= 0:
            bad("warmup_epochs", "a non-negative number of epochs", self.warmup_epochs)
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
        if not self.alpha > 0 or not self.mixup_alpha > 0:
            bad("alpha", "a positive Beta concentration", min(self.alpha, self.mixup_alpha))
        if not 0 <= self.p <= 1:
            bad("p", "a probability in [0, 1]", self.p)
        if self.crop_padding < 0:
            bad("crop_padding", "a non-negative padding", self.crop_padding)
        if self.workers < 0:
            bad("workers", "a non-negative count", self.workers)
        if self.eval_every < 1:
            bad("eval_every", "at least 1 epoch", self.eval_every)
        if self.stop_after is not None and self.stop_after < 1:
            bad("stop_after", "at least 1 epoch", self.stop_after)
        self._validate_imbalance()
        return self

    def _validate_imbalance(self) -> None:
        from cutmix.train.imbalance import parse_partner_weights
        from cutmix.train.models import parse_model_kwargs

        if self.imbalance is not None and not (
            isinstance(self.imbalance, (int, float)) and 1 <= self.imbalance < float("inf")
        ):
            raise UsageError(
                f"imbalance: expected a ratio R >= 1 (largest / smallest class), got {self.imbalance!r}"
            )
        power = parse_partner_weights(self.partner_weights)
        if power is not None and self.mode == "pair" and self.mix in ("cutmix", "mixup", "randommix"):
            raise UsageError(
                f"partner-weights: expected --mode sample or batch (pairs are not weighted), "
                f"got --mode pair with --partner-weights {self.partner_weights}"
            )
        parse_model_kwargs(self.model_kwargs)

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
