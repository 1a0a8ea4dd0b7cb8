"""Hugging Face ``transformers``: ``CutMixTrainer`` trains an image classifier with CutMix / MixUp.

A naive mixing ``data_collator`` fails silently twice: float (soft) labels make the model switch to
BCE (``problem_type`` becomes multi-label: loss 0.69 instead of 2.30 at the start), and the same
collator mixes the evaluation batches. ``CutMixTrainer`` mixes only the training batches (its
training ``DataLoader`` wraps the collator in :class:`cutmix.MixCollate`) and computes the
soft-target cross entropy itself for mixed batches, whatever the model's ``problem_type``;
evaluation batches keep their hard labels and the model's own loss. Glue::

    trainer = CutMixTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                            mix=cutmix.CutMix(1.0, num_classes=model.config.num_labels))

Samples are dicts (``pixel_values`` / ``labels`` by default: ``image_key`` / ``label_key``); the
collator is the Trainer's (``default_data_collator`` unless given). ``mix=None`` means
``cutmix.CutMix(1.0, num_classes=model.config.num_labels)``.

Example:
    >>> from cutmix.integrations.transformers import CutMixTrainer
    >>> CutMixTrainer.__mro__[1].__name__
    'Trainer'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import cutmix
from cutmix.integrations._common import describe, fail

try:
    import transformers as _transformers
except ImportError as err:  # pragma: no cover - only without transformers
    raise ImportError(
        "cutmix.integrations.transformers needs transformers: pip install 'cutmix[transformers]'"
    ) from err

__all__ = ["CutMixTrainer"]


class CutMixTrainer(_transformers.Trainer):  # type: ignore[misc]
    """A ``transformers.Trainer`` that mixes training batches and uses soft-target CE for them.

    Args:
        *args, **kwargs: as ``transformers.Trainer``.
        mix: a :class:`cutmix.CutMix`, :class:`cutmix.MixUp` or :class:`cutmix.RandomMix`.
        image_key, label_key: the sample / batch entries to mix.
        mix_seed: the :class:`cutmix.MixCollate` seed (per worker and DDP rank streams).
    """

    def __init__(
        self,
        *args: Any,
        mix: cutmix.CutMix | cutmix.MixUp | cutmix.RandomMix | None = None,
        image_key: str = "pixel_values",
        label_key: str = "labels",
        mix_seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if mix is None:
            num_labels = getattr(getattr(self.model, "config", None), "num_labels", None)
            if not isinstance(num_labels, int):
                fail("mix", "a cutmix transform (the model has no config.num_labels)", None)
            mix = cutmix.CutMix(1.0, num_classes=num_labels)
        if not isinstance(mix, (cutmix.CutMix, cutmix.MixUp, cutmix.RandomMix)):
            fail("mix", "a cutmix.CutMix, MixUp or RandomMix", describe(mix), kind=TypeError)
        self.mix = mix
        self.image_key, self.label_key = image_key, label_key
        self.mix_seed = mix_seed
        # Our soft-target CE is a per-batch mean: let the Trainer divide by the accumulation steps.
        self.loss_is_scaled_for_ga = False

    def get_train_dataloader(self) -> Any:
        """The Trainer's training loader, its collator wrapped in :class:`cutmix.MixCollate`."""
        plain: Any = self.data_collator
        self.data_collator = cutmix.MixCollate(
            self.mix,
            collate_fn=plain,
            seed=self.mix_seed,
            image_key=self.image_key,
            label_key=self.label_key,
        )
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = plain

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Any:
        """Soft-target CE for mixed (float ``(N, C)``) labels; the Trainer's loss otherwise."""
        labels = inputs.get(self.label_key)
        if not (isinstance(labels, Tensor) and labels.is_floating_point() and labels.dim() == 2):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        # The model never sees the float labels: it would pick BCE (problem_type multi-label).
        features = {k: v for k, v in inputs.items() if k != self.label_key}
        outputs = model(**features)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = cutmix.soft_target_cross_entropy(logits, labels.to(logits.device))
        return (loss, outputs) if return_outputs else loss
