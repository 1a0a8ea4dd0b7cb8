"""MixCollate additions for the integrations: dict samples (HF style) and per-DDP-rank streams."""

from __future__ import annotations

import pickle

import pytest
import torch

import cutmix


def _dict_samples(n: int, image_key: str = "pixel_values", label_key: str = "labels") -> list:
    g = torch.Generator().manual_seed(0)
    return [
        {image_key: torch.rand(3, 6, 6, generator=g), label_key: k % 3, "id": k} for k in range(n)
    ]


def test_dict_samples_are_mixed_like_tuples() -> None:
    samples = _dict_samples(4)
    out = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=3), seed=5)(samples)
    tuples = [(s["pixel_values"], s["labels"]) for s in samples]
    x, t = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=3), seed=5)(tuples)
    assert set(out) == {"pixel_values", "labels", "id"}
    assert torch.equal(out["pixel_values"], x) and torch.equal(out["labels"], t)
    assert out["id"].tolist() == [0, 1, 2, 3]


def test_configurable_keys_and_missing_key_error() -> None:
    samples = _dict_samples(4, "img", "y")
    collate = cutmix.MixCollate(cutmix.MixUp(0.4, num_classes=3), image_key="img", label_key="y")
    out = collate(samples)
    assert out["y"].shape == (4, 3) and out["img"].shape == (4, 3, 6, 6)
    with pytest.raises(ValueError, match="pixel_values"):
        cutmix.MixCollate(cutmix.MixUp(0.4, num_classes=3))(samples)
    with pytest.raises(TypeError, match="image_key"):
        cutmix.MixCollate(cutmix.MixUp(0.4, num_classes=3), image_key=1)  # type: ignore[arg-type]


def _boxes_on_rank(rank: int, monkeypatch: pytest.MonkeyPatch, seed: int | None) -> torch.Tensor:
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: rank >= 0)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: max(rank, 0))
    torch.manual_seed(0)  # identical global seeds on every rank, as seed_everything does
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 16, 16).contiguous()
    collate = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=8), seed=seed)
    mixed, _ = collate([(x[i], i) for i in range(8)])
    return mixed


@pytest.mark.parametrize("seed", [None, 3])
def test_ranks_seeded_alike_draw_different_streams(monkeypatch, seed) -> None:
    r0 = _boxes_on_rank(0, monkeypatch, seed)
    r1 = _boxes_on_rank(1, monkeypatch, seed)
    again = _boxes_on_rank(1, monkeypatch, seed)
    assert not torch.equal(r0, r1) and torch.equal(r1, again)
    # Rank 0 (and no process group at all) keep the stream they always had.
    assert torch.equal(r0, _boxes_on_rank(-1, monkeypatch, seed))


def test_pickled_collate_remembers_the_rank(monkeypatch) -> None:
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 3)
    clone = pickle.loads(pickle.dumps(cutmix.MixCollate(cutmix.CutMix(1.0), seed=1)))
    assert clone._rank == 3
