"""cut_masks / mix_masks / mixed_mask_cross_entropy: exact maps, ignore_index, MixUp, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.dense import MaskMix, cut_masks, mix_masks, mixed_mask_cross_entropy
from helpers import hand_params

P = hand_params


def test_hand_built_masks_with_ignore_index():
    # Three 3x4 maps; 255 is the ignore label.
    masks = torch.tensor(
        [
            [[0, 0, 0, 0], [0, 255, 0, 0], [0, 0, 0, 255]],
            [[1, 1, 255, 1], [1, 1, 1, 1], [1, 1, 1, 1]],
            [[2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2]],
        ],
        dtype=torch.uint8,
    )
    # 0 <- 1 in x 1..3, y 0..2; 1 <- 2 in x 3..4, y 2..3; 2 not mixed.
    p = P([1, 2, 0], [[1, 0, 3, 2], [3, 2, 4, 3], [0, 0, 0, 0]], (3, 4))
    out = cut_masks(masks, p)
    expected = torch.tensor(
        [
            # own 255 at (1,1) is inside the box: replaced by the partner's 1;
            # the partner's 255 at (0,2) is pasted as 255; own 255 at (2,3) outside stays.
            [[0, 1, 255, 0], [0, 1, 1, 0], [0, 0, 0, 255]],
            [[1, 1, 255, 1], [1, 1, 1, 1], [1, 1, 1, 2]],
            [[2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2]],
        ],
        dtype=torch.uint8,
    )
    assert out.dtype == torch.uint8
    assert torch.equal(out, expected)
    # (N, 1, H, W) keeps its shape; the caller's maps are untouched.
    out4 = cut_masks(masks[:, None].clone(), p)
    assert out4.shape == (3, 1, 3, 4) and torch.equal(out4[:, 0], expected)
    assert masks[0, 1, 1] == 255


def test_names_are_reexported():
    assert cutmix.functional.cut_masks is cut_masks
    assert cutmix.cut_masks is cut_masks and cutmix.mix_masks is mix_masks


@st.composite
def mask_cases(draw):
    n = draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    mode = draw(st.sampled_from(["sample", "pair", "batch"]))
    placement = draw(st.sampled_from(["center", "inside"]))
    dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.bool]))
    four_d = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return n, h, w, mode, placement, dtype, four_d, seed


@given(mask_cases())
def test_property_every_mask_pixel_is_its_image_pixels_label(case):
    n, h, w, mode, placement, dtype, four_d, seed = case
    g = torch.Generator().manual_seed(seed)
    params = cutmix.sample_cutmix(
        n, (h, w), alpha=1.0, p=0.7, mode=mode, placement=placement, generator=g
    )
    hi = 2 if dtype == torch.bool else 6
    masks = torch.randint(0, hi, (n, h, w), generator=g).to(dtype)
    if four_d:
        masks = masks[:, None]
    before = masks.clone()
    # Images whose pixel value names the sample it comes from.
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, h, w).contiguous()
    source = cutmix.functional.cut_images(images, params)[:, 0].long()
    out = cut_masks(masks, params)
    assert out.shape == masks.shape and out.dtype == dtype
    maps = masks.reshape(n, h, w)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    expected = maps[source, yy.expand(n, h, w), xx.expand(n, h, w)]
    assert torch.equal(out.reshape(n, h, w), expected)
    assert torch.equal(masks, before)
    # mix_masks agrees for CutMix params: one exact map, weight 1.
    mm = mix_masks(masks, params)
    assert torch.equal(mm.masks, out) and torch.equal(mm.partner, out)
    assert torch.equal(mm.lam, torch.ones(n))


def test_mixup_masks_two_maps_and_loss_matches_mixed_cross_entropy():
    g = torch.Generator().manual_seed(3)
    n, c, h, w = 4, 5, 6, 7
    masks = torch.randint(0, c, (n, h, w), generator=g)
    masks[masks == 4] = 255  # some ignore pixels
    params = cutmix.sample_mixup(n, (h, w), alpha=0.4, generator=g)
    mm = mix_masks(masks, params)
    assert isinstance(mm, MaskMix)
    assert torch.equal(mm.masks, masks)
    assert torch.equal(mm.partner, masks[params.perm])
    assert torch.equal(mm.lam, params.lam)
    logits = torch.randn(n, c, h, w, generator=g)
    ours = mixed_mask_cross_entropy(logits, mm, ignore_index=255)
    # The library's loss weighs the two maps per sample with λ...
    lib = cutmix.mixed_cross_entropy(logits, masks, params, ignore_index=255)
    # ...and both equal the formula written out pixel by pixel.
    ce = lambda y: F.cross_entropy(logits, y, ignore_index=255, reduction="none")  # noqa: E731
    lam = params.lam.view(-1, 1, 1)
    per_px = lam * ce(masks) + (1 - lam) * ce(masks[params.perm])
    valid = (masks != 255) | (masks[params.perm] != 255)
    ref = per_px.sum() / valid.sum()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(lib, ref)
    torch.testing.assert_close(
        mixed_mask_cross_entropy(logits, mm, ignore_index=255, reduction="none"), per_px
    )
    torch.testing.assert_close(
        mixed_mask_cross_entropy(logits, mm, ignore_index=255, reduction="sum"), per_px.sum()
    )


def test_cutmix_loss_is_plain_cross_entropy_of_the_cut_map():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 3, (3, 5, 5), generator=g)
    params = cutmix.sample_cutmix(3, (5, 5), generator=g)
    logits = torch.randn(3, 3, 5, 5, generator=g)
    ours = mixed_mask_cross_entropy(logits, mix_masks(masks, params))
    torch.testing.assert_close(ours, F.cross_entropy(logits, cut_masks(masks, params)))


def test_random_mix_per_sample_masks():
    masks = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]], [[2, 2], [2, 2]]])
    # 0 is cut from 1 at column 0; 1 is blended with 2 at λ = 0.25; 2 untouched.
    p = P(
        [1, 2, 0],
        [[0, 0, 1, 2], [0, 0, 0, 0], [0, 0, 0, 0]],
        (2, 2),
        lam=[0.5, 0.25, 1.0],
        blend=[False, True, False],
    )
    mm = mix_masks(masks, p)
    assert mm.masks.tolist() == [[[1, 0], [1, 0]], [[1, 1], [1, 1]], [[2, 2], [2, 2]]]
    assert mm.partner.tolist() == [[[1, 0], [1, 0]], [[2, 2], [2, 2]], [[2, 2], [2, 2]]]
    assert mm.lam.tolist() == [1.0, 0.25, 1.0]
    with pytest.raises(
        ValueError, match=r"params: expected CutMix params .*got params with blended samples"
    ):
        cut_masks(masks, p)


def test_transform_params_drive_masks():
    images = torch.rand(6, 3, 8, 8)
    masks = torch.randint(0, 4, (6, 8, 8))
    mix = cutmix.CutMix(1.0, num_classes=4)
    params = mix.sample(images, generator=torch.Generator().manual_seed(0))
    mixed = cutmix.functional.cut_images(images, params)
    out = cut_masks(masks, params)
    inside = cutmix.functional.box_mask(params.boxes, (8, 8))[:, 0]
    assert torch.equal(out[inside], masks[params.perm][inside])
    assert torch.equal(out[~inside], masks[~inside])
    assert torch.equal(
        mixed.permute(1, 0, 2, 3)[:, inside], images[params.perm].permute(1, 0, 2, 3)[:, inside]
    )


def test_bad_masks():
    p = P([1, 0], [[0, 0, 1, 1], [0, 0, 0, 0]], (3, 4))
    with pytest.raises(
        TypeError,
        match=r"masks: expected integer \(or bool\) class maps, not floats, got Tensor of shape \(2, 3, 4\), dtype torch.float32",
    ):
        cut_masks(torch.zeros(2, 3, 4), p)
    with pytest.raises(
        ValueError,
        match=r"masks: expected maps of the images' size \(3, 4\) \(H, W\), got Tensor of shape \(2, 4, 3\)",
    ):
        cut_masks(torch.zeros(2, 4, 3, dtype=torch.long), p)
    with pytest.raises(
        ValueError,
        match=r"masks: expected 2 maps \(one per image of the params' batch\), got Tensor of shape \(3, 3, 4\)",
    ):
        cut_masks(torch.zeros(3, 3, 4, dtype=torch.long), p)
    with pytest.raises(
        ValueError,
        match=r"masks: expected class maps \(N, H, W\) or \(N, 1, H, W\), got Tensor of shape \(2, 2, 3, 4\)",
    ):
        cut_masks(torch.zeros(2, 2, 3, 4, dtype=torch.long), p)
    with pytest.raises(TypeError, match=r"masks: expected a torch.Tensor, got list"):
        cut_masks([[0]], p)
    mixup = P([1, 0], None, (3, 4), lam=[0.5, 0.5])
    with pytest.raises(
        ValueError,
        match=r"params: expected CutMix params \(for MixUp use cutmix.dense.mix_masks.*got MixUp params \(boxes=None\)",
    ):
        cut_masks(torch.zeros(2, 3, 4, dtype=torch.long), mixup)
    with pytest.raises(TypeError, match=r"mixed: expected a cutmix.dense.MaskMix"):
        mixed_mask_cross_entropy(torch.zeros(2, 3, 3, 4), torch.zeros(2, 3, 4, dtype=torch.long))
    mm = mix_masks(torch.zeros(2, 3, 4, dtype=torch.long), mixup)
    with pytest.raises(ValueError, match=r"logits: expected spatial size \(3, 4\) like the masks"):
        mixed_mask_cross_entropy(torch.zeros(2, 3, 4, 4), mm)


def test_cut_and_mix_masks_compile_without_graph_breaks():
    """The mask kernels have no host sync: torch.compile captures them whole."""
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 4, (5, 6, 7), generator=g)
    params = cutmix.sample_cutmix(5, (6, 7), generator=g)
    cut = torch.compile(cut_masks, fullgraph=True, backend="eager")
    assert torch.equal(cut(masks, params), cut_masks(masks, params))
    mix = torch.compile(lambda m, p: tuple(mix_masks(m, p)), fullgraph=True, backend="eager")
    for a, b in zip(mix(masks, params), mix_masks(masks, params)):
        assert torch.equal(a, b)
