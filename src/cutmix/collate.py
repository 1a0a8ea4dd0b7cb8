"""Mix inside DataLoader workers: :class:`MixCollate`.

Mixing on the CPU in the workers overlaps it with training and keeps uint8 batches uint8 (4× less
to move than float32). Each worker draws from its own stream, seeded from the DataLoader's per-worker
seed (which the DataLoader derives from its ``generator`` or the global seed, anew every epoch) and
from ``seed``: runs are reproducible, and workers and epochs differ. Without workers the stream is
seeded once from ``seed`` (or from the global RNG) and runs on across epochs.

Example:
    >>> import torch, cutmix
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> data = TensorDataset(torch.rand(16, 3, 8, 8), torch.randint(0, 4, (16,)))
    >>> collate = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=4), seed=0)
    >>> images, targets = next(iter(DataLoader(data, batch_size=8, collate_fn=collate)))
    >>> targets.shape
    torch.Size([8, 4])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate, get_worker_info

from cutmix import _validate as V
from cutmix.transforms import CutMix, MixUp, RandomMix

__all__ = ["MixCollate"]

_MASK64 = (1 << 63) - 1


class MixCollate:
    """A ``collate_fn`` that batches samples, then mixes the batch with ``mix``.

    Args:
        mix: a :class:`~cutmix.CutMix`, :class:`~cutmix.MixUp` or :class:`~cutmix.RandomMix`.
        collate_fn: how samples become ``(images, labels)``; ``default_collate`` by default.
        seed: mixed into every stream; give distinct seeds to distinct DDP ranks.
    """

    def __init__(
        self,
        mix: CutMix | MixUp | RandomMix,
        collate_fn: Callable[[list[Any]], Any] = default_collate,
        *,
        seed: int | None = None,
    ) -> None:
        if not isinstance(mix, (CutMix, MixUp, RandomMix)):
            V.fail("mix", "a CutMix, MixUp or RandomMix", V.describe(mix), kind=TypeError)
        if not callable(collate_fn):
            V.fail("collate_fn", "a callable", V.describe(collate_fn), kind=TypeError)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            V.fail("seed", "None or an int", V.describe(seed), kind=TypeError)
        self.mix = mix
        self.collate_fn = collate_fn
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._stream_key: object = None

    def _stream(self) -> torch.Generator:
        info = get_worker_info()
        if info is not None:
            key: object = ("worker", info.id, info.seed)
            base = info.seed
        else:
            key = "main"
            base = None
        if self._generator is None or key != self._stream_key:
            if base is None:
                base = self.seed if self.seed is not None else int(torch.randint(0, 2**62, ()))
            elif self.seed is not None:
                base = (base * 1_000_003 + self.seed) & _MASK64
            self._generator = torch.Generator().manual_seed(base & _MASK64)
            self._stream_key = key
        return self._generator

    def __call__(self, samples: list[Any]) -> tuple[Tensor, Tensor]:
        batch = self.collate_fn(samples)
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            V.fail("collate_fn", "a batch (images, labels)", V.describe(batch), kind=TypeError)
        images, labels = batch
        return self.mix(images, labels, generator=self._stream())

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Generators do not pickle; each worker builds its own stream.
        state["_generator"] = None
        state["_stream_key"] = None
        return state
