"""The one-call form: mix_batch / DenseMix over detection and segmentation batches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.dense import DenseMix, cut_boxes, cut_masks, mix_batch
from helpers import hand_params

P = hand_params


def _detection_batch(g, n=3, h=6, w=8):
    images = torch.rand(n, 3, h, w, generator=g)
    targets = []
    for i in range(n):
        k = i + 1 if i < n - 1 else 0  # the last image has no boxes
        x1 = torch.randint(0, w - 1, (k,), generator=g)
        y1 = torch.randint(0, h - 1, (k,), generator=g)
        x2 = x1 + 1 + (torch.rand(k, generator=g) * (w - 1 - x1)).long()
        y2 = y1 + 1 + (torch.rand(k, generator=g) * (h - 1 - y1)).long()
        boxes = torch.stack([x1, y1, x2, y2], 1).float()
        masks = torch.zeros(k, h, w, dtype=torch.uint8)
        for j in range(k):
            masks[j, y1[j] : y2[j], x1[j] : x2[j]] = 1
        targets.append(
            {
                "boxes": boxes,
                "labels": torch.arange(k) + 10 * i,
                "masks": masks,
                "iscrowd": torch.zeros(k, dtype=torch.int64),
                "image_id": i,
            }
        )
    return images, targets


def test_hand_built_detection_batch():
    images = torch.zeros(2, 1, 2, 4)
    images[1] = 1
    targets = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 4.0, 2.0]]),
            "labels": torch.tensor([7]),
            "masks": torch.ones(1, 2, 4, dtype=torch.uint8),
            "image_id": 0,
        },
        {
            "boxes": torch.tensor([[2.0, 0.0, 4.0, 1.0]]),
            "labels": torch.tensor([8]),
            "masks": torch.ones(1, 2, 4, dtype=torch.uint8),
            "image_id": 1,
        },
    ]
    p = P([1, 0], [[2, 0, 4, 2], [0, 0, 0, 0]], (2, 4))
    x, t = mix_batch(images, targets, p)
    assert x[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    # own box: right half pasted over -> trimmed to [0,0,2,2]; partner box [2,0,4,1] fully inside
    assert t[0]["boxes"].tolist() == [[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 1.0]]
    assert t[0]["labels"].tolist() == [7, 8]
    assert t[0]["box_weights"].tolist() == [0.5, 1.0]
    assert t[0]["masks"].tolist() == [[[1, 1, 0, 0], [1, 1, 0, 0]], [[0, 0, 1, 1], [0, 0, 1, 1]]]
    assert t[0]["image_id"] == 0 and t[1]["image_id"] == 1
    assert t[1]["boxes"].tolist() == [[2.0, 0.0, 4.0, 1.0]] and t[1]["masks"].tolist() == [
        [[1] * 4] * 2
    ]
    # Inputs untouched.
    assert (
        targets[0]["boxes"].tolist() == [[0.0, 0.0, 4.0, 2.0]] and "box_weights" not in targets[0]
    )
    assert bool((images[0] == 0).all())


@given(st.integers(0, 2**31 - 1), st.sampled_from(["cutmix", "mixup"]))
def test_property_every_target_consistent_with_images(seed, kind):
    g = torch.Generator().manual_seed(seed)
    images, targets = _detection_batch(g)
    n, _, h, w = images.shape
    if kind == "cutmix":
        p = cutmix.sample_cutmix(n, (h, w), generator=g)
    else:
        p = cutmix.sample_mixup(n, (h, w), alpha=1.0, generator=g)
    x, t = mix_batch(images, targets, p, min_visibility=0.2)
    assert torch.equal(x, cutmix.functional.apply_images(images, p))
    res = cut_boxes(
        [d["boxes"] for d in targets],
        [d["labels"] for d in targets],
        p,
        min_visibility=0.2,
        return_weights=True,
    )
    label_owner = {int(lab): i for i, d in enumerate(targets) for lab in d["labels"]}
    for i in range(n):
        assert torch.equal(t[i]["boxes"], res.boxes[i])
        assert torch.equal(t[i]["labels"], res.labels[i])
        assert torch.equal(t[i]["box_weights"], res.weights[i])
        assert t[i]["masks"].shape == (len(t[i]["boxes"]), h, w)
        assert t[i]["iscrowd"].shape == t[i]["labels"].shape
        for m, lab in zip(t[i]["masks"], t[i]["labels"].tolist()):
            src = label_owner[lab]
            original = targets[src]["masks"][list(targets[src]["labels"]).index(lab)]
            if kind == "mixup":
                assert torch.equal(m, original)
                continue
            inside = cutmix.functional.box_mask(p.boxes[i : i + 1], (h, w))[0, 0]
            # Each instance keeps exactly its pixels that the mixed image shows from its image.
            region = inside if src != i else ~inside
            if src == i and int(p.perm[i]) == i:
                region = torch.ones_like(inside)
            assert torch.equal(m.bool(), original.bool() & region)


def test_semantic_maps_in_dicts_and_batch_dict():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 5, 6, generator=g)
    maps = torch.randint(0, 3, (4, 5, 6), generator=g)
    p = cutmix.sample_cutmix(4, (5, 6), generator=g)
    expected = cut_masks(maps, p)
    _, t = mix_batch(images, [{"masks": m} for m in maps], p)
    assert torch.equal(torch.stack([d["masks"] for d in t]), expected)
    _, t = mix_batch(images, {"masks": maps}, p)
    assert torch.equal(t["masks"], expected)
    # Batch dict with boxes too.
    boxes = [torch.tensor([[0, 0, 6, 5]])] * 4
    labels = [torch.tensor([i]) for i in range(4)]
    _, t = mix_batch(images, {"masks": maps[:, None], "boxes": boxes, "labels": labels}, p)
    assert t["masks"].shape == (4, 1, 5, 6) and torch.equal(t["masks"][:, 0], expected)
    b, lab = cut_boxes(boxes, labels, p)
    assert all(torch.equal(a, c) for a, c in zip(t["boxes"], b))
    assert all(torch.equal(a, c) for a, c in zip(t["labels"], lab))
    # Semantic maps alongside boxes in list form.
    tl = [{"boxes": boxes[i], "labels": labels[i], "masks": maps[i]} for i in range(4)]
    _, t = mix_batch(images, tl, p)
    assert torch.equal(torch.stack([d["masks"] for d in t]), expected)


def test_dense_mix_is_reproducible_and_keeps_params():
    g = torch.Generator().manual_seed(0)
    images, targets = _detection_batch(g)
    dm = DenseMix(cutmix.CutMix(1.0), min_visibility=0.3)
    x1, t1 = dm(images, targets, generator=torch.Generator().manual_seed(4))
    p1 = dm.last_params
    x2, t2 = dm(images, targets, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x1, x2) and torch.equal(p1.perm, dm.last_params.perm)
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(t1, t2))
    assert "DenseMix(CutMix(" in repr(dm)


def test_mixup_semantic_maps_need_mix_masks():
    images = torch.rand(2, 3, 4, 4)
    p = P([1, 0], None, (4, 4), lam=[0.5, 0.5])
    with pytest.raises(
        ValueError, match=r"params: expected CutMix params \(for MixUp use cutmix.dense.mix_masks"
    ):
        mix_batch(images, {"masks": torch.zeros(2, 4, 4, dtype=torch.long)}, p)
    with pytest.raises(
        ValueError, match=r"targets: expected semantic masks only with CutMix params"
    ):
        mix_batch(images, [{"masks": torch.zeros(4, 4, dtype=torch.long)}] * 2, p)


def test_bad_targets():
    images = torch.rand(2, 3, 4, 4)
    p = P([1, 0], [[0, 0, 2, 2], [0, 0, 0, 0]], (4, 4))
    with pytest.raises(
        ValueError, match=r"targets: expected 2 target dicts \(one per image\), got 1"
    ):
        mix_batch(images, [{}], p)
    with pytest.raises(
        ValueError,
        match=r"targets: expected a dict with keys 'boxes', 'labels', 'masks', got keys \['scores'\]",
    ):
        mix_batch(images, {"scores": torch.zeros(2)}, p)
    with pytest.raises(TypeError, match=r"targets\[1\]: expected a dict"):
        mix_batch(images, [{}, 3], p)
    with pytest.raises(
        ValueError, match=r"targets: expected 'boxes' in every target dict or in none"
    ):
        mix_batch(images, [{"boxes": torch.zeros(0, 4)}, {}], p)
    with pytest.raises(
        TypeError, match=r"targets\['masks'\]: expected integer \(or bool\) masks, not floats"
    ):
        mix_batch(images, {"masks": torch.zeros(2, 4, 4)}, p)
    with pytest.raises(
        ValueError,
        match=r"targets\[0\]\['masks'\]: expected masks of the images' size \(4, 4\) \(H, W\), got Tensor of shape \(3, 3\)",
    ):
        mix_batch(images, [{"masks": torch.zeros(3, 3, dtype=torch.long)}] * 2, p)
    bad = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]]),
            "labels": torch.tensor([1]),
            "masks": torch.zeros(2, 4, 4, dtype=torch.uint8),
        }
    ] * 2
    with pytest.raises(
        ValueError,
        match=r"targets: expected 'masks' as per-instance \(K, H, W\) with one mask per box",
    ):
        mix_batch(images, bad, p)
    bad = [{"boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "labels": torch.tensor([1, 2])}] * 2
    with pytest.raises(ValueError, match=r"labels\[0\]: expected 1 labels \(one per box\)"):
        mix_batch(images, bad, p)
    with pytest.raises(
        ValueError, match=r"params: expected params for a batch of 3, got params for a batch of 2"
    ):
        mix_batch(torch.rand(3, 3, 4, 4), [{}] * 3, p)


def test_masks_in_some_dicts_only_is_an_error():
    images = torch.rand(2, 3, 4, 4)
    p = P([1, 0], [[0, 0, 2, 2], [0, 0, 0, 0]], (4, 4))
    t = [
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.long),
            "masks": torch.zeros(0, 4, 4),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    with pytest.raises(
        ValueError,
        match=r"targets: expected 'masks' in every target dict or in none, got \[True, False\]",
    ):
        mix_batch(images, t, p)
