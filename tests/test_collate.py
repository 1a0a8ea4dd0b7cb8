"""MixCollate in DataLoader workers: reproducible with a seed, distinct per worker and per epoch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import cutmix

BATCH, BATCHES = 8, 4


def dataset() -> TensorDataset:
    # Every batch of an unshuffled loader holds the same images and labels, so any difference
    # between two mixed batches comes from the mixing stream alone.
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (BATCH, 3, 8, 8), generator=g, dtype=torch.uint8)
    idx = torch.arange(BATCH * BATCHES) % BATCH
    return TensorDataset(base[idx], idx % 4)


def run(workers: int, *, shuffle: bool, loader_seed: int, mix_seed: int, epochs: int = 2):
    collate = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=4), seed=mix_seed)
    loader = DataLoader(
        dataset(),
        batch_size=BATCH,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(loader_seed),
    )
    return [list(loader) for _ in range(epochs)]


def same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("workers", [0, 2])
def test_reproducible_and_distinct_streams(workers):
    first = run(workers, shuffle=True, loader_seed=0, mix_seed=0)
    second = run(workers, shuffle=True, loader_seed=0, mix_seed=0)
    # Same DataLoader generator and MixCollate seed: identical batches, epoch after epoch.
    for e1, e2 in zip(first, second):
        assert len(e1) == BATCHES
        for b1, b2 in zip(e1, e2):
            assert same(b1, b2)
            images, targets = b1
            assert images.dtype == torch.uint8 and images.shape == (BATCH, 3, 8, 8)
            assert targets.dtype == torch.float32 and targets.shape == (BATCH, 4)
            torch.testing.assert_close(targets.sum(1), torch.ones(BATCH))
    # Another MixCollate seed gives other batches.
    other = run(workers, shuffle=True, loader_seed=0, mix_seed=1, epochs=1)
    assert not any(same(a, b) for a, b in zip(first[0], other[0]))


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_workers_and_epochs_differ(workers):
    epochs = run(workers, shuffle=False, loader_seed=0, mix_seed=0)
    # Unshuffled: every batch has the same input, so equal outputs would mean a repeated stream.
    outputs = [b for epoch in epochs for b in epoch]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not same(outputs[i], outputs[j]), (i, j)
    if workers == 2:
        # Batches 0 and 1 come from workers 0 and 1: the two workers draw different streams.
        assert not torch.equal(epochs[0][0][0], epochs[0][1][0])
    # Epoch 2 does not replay epoch 1.
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])


def test_collate_matches_the_transform_with_its_stream():
    # Without workers and with a seed, the stream is torch.Generator().manual_seed(seed).
    data = dataset()
    mix = cutmix.CutMix(1.0, num_classes=4)
    collate = cutmix.MixCollate(mix, seed=5)
    samples = [data[i] for i in range(BATCH)]
    images, targets = collate(samples)
    x = torch.stack([s[0] for s in samples])
    y = torch.stack([s[1] for s in samples])
    ref = mix(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(images, ref[0]) and torch.equal(targets, ref[1])
    # The stream runs on: the next call draws new params.
    again = collate(samples)
    assert not torch.equal(again[0], images)
