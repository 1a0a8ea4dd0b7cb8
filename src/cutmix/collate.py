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

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import default_collate, get_worker_info

from cutmix import _validate as V
from cutmix.transforms import CutMix, MixUp, RandomMix

__all__ = ["MixCollate"]

_MASK64 = (1 << 63) - 1


class MixCollate:
    """A ``collate_fn`` that batches samples, then mixes the batch with ``mix``.

    Args:
        mix: a :class:`~cutmix.CutMix`, :class:`~cutmix.MixUp` or :class:`~cutmix.RandomMix`.
        collate_fn: how samples become ``(images, labels)`` (or a dict); ``default_collate`` by
            default.
        seed: mixed into every stream. Under ``torch.distributed`` the rank is mixed in too, so
            ranks seeded alike (Lightning's ``seed_everything``) still draw different boxes.
        image_key, label_key: for dict samples / batches (Hugging Face style): the entries to
            mix; the batch comes back as a dict with those two replaced, the rest unchanged.

    Example:
        >>> import torch, cutmix
        >>> samples = [{"pixel_values": torch.rand(3, 4, 4), "labels": k} for k in range(4)]
        >>> batch = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=4), seed=0)(samples)
        >>> sorted(batch), batch["labels"].shape
        (['labels', 'pixel_values'], torch.Size([4, 4]))
    """

    def __init__(
        self,
        mix: CutMix | MixUp | RandomMix,
        collate_fn: Callable[[list[Any]], Any] = default_collate,
        *,
        seed: int | None = None,
        image_key: str = "pixel_values",
        label_key: str = "labels",
    ) -> None:
        if not isinstance(mix, (CutMix, MixUp, RandomMix)):
            V.fail("mix", "a CutMix, MixUp or RandomMix", V.describe(mix), kind=TypeError)
        if not callable(collate_fn):
            V.fail("collate_fn", "a callable", V.describe(collate_fn), kind=TypeError)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            V.fail("seed", "None or an int", V.describe(seed), kind=TypeError)
        self.mix = mix
        self.collate_fn = collate_fn
        for name, key in (("image_key", image_key), ("label_key", label_key)):
            if not isinstance(key, str):
                V.fail(name, "a str (a key of dict samples)", V.describe(key), kind=TypeError)
        self.seed = seed
        self.image_key, self.label_key = image_key, label_key
        self._rank: int | None = None  # set when pickled for workers (spawn loses the group)
        self._generator: torch.Generator | None = None
        self._stream_key: object = None

    def _stream(self) -> torch.Generator:
        info = get_worker_info()
        rank = self._rank if self._rank is not None else _dist_rank()
        if info is not None:
            key: object = ("worker", info.id, info.seed, rank)
            base = info.seed
        else:
            key = ("main", rank)
            base = None
        if self._generator is None or key != self._stream_key:
            if base is None:
                base = self.seed if self.seed is not None else int(torch.randint(0, 2**62, ()))
            elif self.seed is not None:
                base = (base * 1_000_003 + self.seed) & _MASK64
            if rank:
                base = (base * 1_000_033 + rank) & _MASK64
            self._generator = torch.Generator().manual_seed(base & _MASK64)
            self._stream_key = key
        return self._generator

    def __call__(self, samples: list[Any]) -> Any:
        if isinstance(samples, (list, tuple)) and not samples:
            V.fail("samples", "at least one sample (an empty batch cannot be mixed)", "none")
        batch = self.collate_fn(samples)
        if isinstance(batch, Mapping):
            missing = [k for k in (self.image_key, self.label_key) if k not in batch]
            if missing:
                V.fail("samples", f"dicts with keys {missing} (image_key / label_key)",
                       f"keys {sorted(map(str, batch))}")  # fmt: skip
            x, t = self.mix(batch[self.image_key], batch[self.label_key], generator=self._stream())
            return {**batch, self.image_key: x, self.label_key: t}
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            V.fail("collate_fn", "a batch (images, labels)", V.describe(batch), kind=TypeError)
        images, labels = batch
        return self.mix(images, labels, generator=self._stream())

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Generators do not pickle; each worker builds its own stream.
        state["_generator"] = None
        state["_stream_key"] = None
        state["_rank"] = _dist_rank()
        return state


def _dist_rank() -> int:
    """This process's ``torch.distributed`` rank, 0 when not initialised."""
    dist = torch.distributed
    return int(dist.get_rank()) if dist.is_available() and dist.is_initialized() else 0
