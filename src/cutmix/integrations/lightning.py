"""Lightning: ``MixCallback`` mixes training batches after they reach the device.

Works with ``lightning`` (``lightning.pytorch``) and ``pytorch_lightning``, whichever is installed
(with both, the callback is an instance of both ``Callback`` classes). Glue::

    trainer = Trainer(callbacks=[MixCallback(cutmix.CutMix(1.0, num_classes=10))])
    # in training_step: loss = cutmix.soft_target_cross_entropy(self(x), y)   (y: soft targets)
    #                   self.acc(self(x).argmax(1), self.hard_labels)          (metrics)

How: the callback wraps the module's ``on_after_batch_transfer`` (the hook that returns the batch,
so tuple batches work too) and mixes only while ``trainer.training`` (never validation, test or
predict batches). Per batch it

- replaces the images and labels of the batch (tuple, list or dict: ``image_key`` / ``label_key``,
  by default position 0 / 1, or the first of ``pixel_values, image, images, x, input`` /
  ``labels, label, y, target``) with the mixed images and float32 soft targets, same structure;
- keeps the hard labels: ``pl_module.hard_labels`` (``hard_labels_attr``), and for dict batches
  also ``batch["hard_labels"]`` (``hard_labels_key``; ``None`` to leave the dict alone);
- logs the batch's mean λ as ``"cutmix/lambda"`` (``log_name``; ``None`` to not log);
- draws from its own generator per device, seeded from ``seed`` (default: ``torch.initial_seed()``,
  which ``seed_everything`` sets alike on all ranks) and the global rank: each DDP rank its own
  stream, reproducible.

``off_last_epochs=K`` turns mixing off for the last ``K`` epochs of ``max_epochs`` (targets are then
one-hot floats, so the loss is unchanged).

Example:
    >>> import cutmix
    >>> from cutmix.integrations.lightning import MixCallback
    >>> cb = MixCallback(cutmix.CutMix(1.0, num_classes=10), off_last_epochs=2)
    >>> cb.off_last_epochs
    2
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

import cutmix
from cutmix.integrations._common import describe, fail

_BASES: list[type] = []
_IS_OVERRIDDEN: list[Any] = []
for _name in ("lightning.pytorch", "pytorch_lightning"):
    try:
        _mod = importlib.import_module(_name)
        _BASES.append(_mod.Callback)
        _IS_OVERRIDDEN.append(
            importlib.import_module(f"{_name}.utilities.model_helpers").is_overridden
        )
    except ImportError:
        continue
if not _BASES:
    raise ImportError(
        "cutmix.integrations.lightning needs lightning or pytorch_lightning: "
        "pip install 'cutmix[lightning]'"
    )

__all__ = ["MixCallback"]

_IMAGE_KEYS = ("pixel_values", "image", "images", "x", "input")
_LABEL_KEYS = ("labels", "label", "y", "target")
_MASK64 = (1 << 63) - 1


def _overridden(name: str, obj: Any) -> bool:
    """Lightning's ``is_overridden`` from whichever package ``obj`` comes from."""
    for is_overridden in _IS_OVERRIDDEN:
        try:
            return bool(is_overridden(name, obj))
        except ValueError:  # obj is from the other package
            continue
    return False


class _MixCallback:
    """The callback's behaviour; :class:`MixCallback` adds the installed ``Callback`` bases."""

    def __init__(
        self,
        mix: cutmix.CutMix | cutmix.MixUp | cutmix.RandomMix,
        *,
        image_key: int | str | None = None,
        label_key: int | str | None = None,
        off_last_epochs: int = 0,
        seed: int | None = None,
        hard_labels_attr: str = "hard_labels",
        hard_labels_key: str | None = "hard_labels",
        log_name: str | None = "cutmix/lambda",
    ) -> None:
        if not isinstance(mix, (cutmix.CutMix, cutmix.MixUp, cutmix.RandomMix)):
            fail("mix", "a cutmix.CutMix, MixUp or RandomMix", describe(mix), kind=TypeError)
        if isinstance(off_last_epochs, bool) or not isinstance(off_last_epochs, int):
            fail("off_last_epochs", "an int >= 0", describe(off_last_epochs), kind=TypeError)
        if off_last_epochs < 0:
            fail("off_last_epochs", "an int >= 0", off_last_epochs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            fail("seed", "None or an int", describe(seed), kind=TypeError)
        self.mix = mix
        self.image_key, self.label_key = image_key, label_key
        self.off_last_epochs = off_last_epochs
        self.seed = seed
        self.hard_labels_attr = hard_labels_attr
        self.hard_labels_key = hard_labels_key
        self.log_name = log_name
        self.last_params: cutmix.MixParams | None = None
        self._generators: dict[torch.device, torch.Generator] = {}
        self._pending_lam: Tensor | None = None
        self._patched: list[tuple[Any, bool]] = []

    # -- wiring -------------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit" or self._patched:
            return
        # Lightning calls a LightningDataModule's hook when it overrides it, else the module's:
        # wrap that one.
        dm = getattr(trainer, "datamodule", None)
        owner = dm if dm is not None and _overridden("on_after_batch_transfer", dm) else pl_module
        inner = owner.on_after_batch_transfer

        def on_after_batch_transfer(batch: Any, dataloader_idx: int) -> Any:
            batch = inner(batch, dataloader_idx)
            if trainer.training:
                batch = self.mix_batch(batch, trainer, pl_module)
            return batch

        self._patched.append((owner, vars(owner).get("on_after_batch_transfer")))
        owner.on_after_batch_transfer = on_after_batch_transfer

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        for owner, before in self._patched:
            if before is None:
                vars(owner).pop("on_after_batch_transfer", None)
            else:  # an instance attribute of the user's: put it back
                owner.on_after_batch_transfer = before
        self._patched.clear()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if not self.off_last_epochs:
            return  # leave mix.enabled to the user
        max_epochs = trainer.max_epochs
        off = (
            max_epochs is not None
            and max_epochs > 0
            and trainer.current_epoch >= max_epochs - self.off_last_epochs
        )
        self.mix.enabled = not off

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        lam, self._pending_lam = self._pending_lam, None
        if lam is not None and self.log_name is not None:
            pl_module.log(self.log_name, lam.float().mean(), on_step=True, on_epoch=True,
                          batch_size=int(lam.shape[0]))  # fmt: skip

    # -- mixing -------------------------------------------------------------------------------

    def _generator(self, device: torch.device, rank: int) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            base = self.seed if self.seed is not None else torch.initial_seed()
            gen = torch.Generator(device=device)
            gen.manual_seed((base * 1_000_003 + 7919 * rank + 1) & _MASK64)
            self._generators[device] = gen
        return gen

    def _keys(self, batch: Any) -> tuple[Any, Any]:
        if isinstance(batch, Mapping):
            ik = self.image_key if self.image_key is not None else next(
                (k for k in _IMAGE_KEYS if k in batch), None
            )  # fmt: skip
            lk = self.label_key if self.label_key is not None else next(
                (k for k in _LABEL_KEYS if k in batch), None
            )  # fmt: skip
            if ik not in batch or lk not in batch:
                fail("batch", f"a dict with image_key / label_key entries ({ik!r}, {lk!r})",
                     f"keys {sorted(map(str, batch))}")  # fmt: skip
            return ik, lk
        if isinstance(batch, (tuple, list)):
            ik = 0 if self.image_key is None else self.image_key
            lk = 1 if self.label_key is None else self.label_key
            if not (isinstance(ik, int) and isinstance(lk, int)) or max(ik, lk) >= len(batch):
                fail("batch", f"a tuple / list with items {ik!r} and {lk!r}", describe(batch))
            return ik, lk
        fail("batch", "a tuple, list or dict batch", describe(batch), kind=TypeError)
        raise AssertionError  # unreachable

    def mix_batch(self, batch: Any, trainer: Any = None, pl_module: Any = None) -> Any:
        """Mix one (device-side) batch; returns a batch of the same structure."""
        ik, lk = self._keys(batch)
        images, labels = batch[ik], batch[lk]
        if not isinstance(images, Tensor):  # the generator is made on images.device first
            fail(f"batch[{ik!r}]", "an image tensor (N, C, H, W)", describe(images), kind=TypeError)
        rank = int(getattr(trainer, "global_rank", 0) or 0)
        params = self.mix.sample(images, generator=self._generator(images.device, rank),
                                 labels=labels)  # fmt: skip
        mixed, targets = self.mix.apply(images, labels, params)
        self.last_params = params
        self._pending_lam = params.lam.detach()
        if pl_module is not None and self.hard_labels_attr:
            setattr(pl_module, self.hard_labels_attr, labels)
        if isinstance(batch, Mapping):
            out = dict(batch)
            out[ik], out[lk] = mixed, targets
            if self.hard_labels_key is not None:
                out[self.hard_labels_key] = labels
            return type(batch)(out) if type(batch) is not dict else out  # type: ignore[call-arg]
        items = list(batch)
        items[ik], items[lk] = mixed, targets
        if isinstance(batch, list):
            return items
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)

    def __repr__(self) -> str:
        return f"MixCallback({self.mix!r}, off_last_epochs={self.off_last_epochs})"


MixCallback = type("MixCallback", (_MixCallback, *_BASES), {"__module__": __name__})
MixCallback.__doc__ = """A Lightning ``Callback`` that mixes training batches on the device.

Args:
    mix: a :class:`cutmix.CutMix`, :class:`cutmix.MixUp` or :class:`cutmix.RandomMix` (its
        ``num_classes`` turns class ids into soft targets).
    image_key, label_key: where the images and labels are (tuple index or dict key); auto by default.
    off_last_epochs: no mixing in the last ``K`` epochs of ``trainer.max_epochs``.
    seed: the stream's seed (default ``torch.initial_seed()``); the global rank is mixed in.
    hard_labels_attr: the ``pl_module`` attribute that gets the batch's hard labels.
    hard_labels_key: the dict-batch key that gets them too (``None``: none).
    log_name: the name the mean λ is logged under (``None``: not logged).
"""
