"""cut_boxes: hand-computed cases, brute-force pixel-count properties, MixUp boxes, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.dense import MixedBoxes, cut_boxes
from helpers import hand_params

P = hand_params


def T(rows, dtype=torch.int64):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def L(values):
    return torch.tensor(values, dtype=torch.int64)


# --- hand-built cases ----------------------------------------------------------------------------


def test_hand_built_cut_in_two_trimmed_dropped_and_partner_clipped():
    # Image 0 (H=4, W=8) receives columns 2..3 (full height) from image 1.
    p = P([1, 0], [[2, 0, 4, 4], [0, 0, 0, 0]], (4, 8))
    boxes = [
        T([[0, 0, 8, 4], [1, 0, 3, 2], [2, 1, 4, 3], [0, 0, 3, 4]]),
        T([[0, 0, 3, 3], [6, 0, 8, 1], [3, 3, 4, 4]]),
    ]
    labels = [L([10, 11, 12, 13]), L([20, 21, 22])]
    out = cut_boxes(boxes, labels, p, min_visibility=0.3, min_area=1.0, return_weights=True)
    assert isinstance(out, MixedBoxes)
    # own [0,0,8,4]: cut in two, stays one box, 24/32 visible
    # own [1,0,3,2]: right half pasted over -> trimmed to [1,0,2,2], 2/4 visible
    # own [2,1,4,3]: fully covered -> dropped
    # own [0,0,3,4]: right column covered -> trimmed to [0,0,2,4], 8/12 visible
    # partner [0,0,3,3] -> clipped [2,0,3,3], 3/9 = 0.333 >= 0.3 kept
    # partner [6,0,8,1] -> no intersection, dropped; partner [3,3,4,4] -> inside, 1/1 kept
    assert out.boxes[0].tolist() == [
        [0, 0, 8, 4],
        [1, 0, 2, 2],
        [0, 0, 2, 4],
        [2, 0, 3, 3],
        [3, 3, 4, 4],
    ]
    assert out.labels[0].tolist() == [10, 11, 13, 20, 22]
    torch.testing.assert_close(out.weights[0], torch.tensor([24 / 32, 0.5, 8 / 12, 3 / 9, 1.0]))
    # Image 1 is not mixed: its boxes unchanged, weight 1, nothing from image 0.
    assert out.boxes[1].tolist() == boxes[1].tolist()
    assert out.labels[1].tolist() == [20, 21, 22]
    assert out.weights[1].tolist() == [1.0, 1.0, 1.0]
    # A stricter threshold drops the 1/3-visible partner box and the 1/2-visible own box.
    b2, l2 = cut_boxes(boxes, labels, p, min_visibility=0.6)
    assert l2[0].tolist() == [10, 13, 22]
    assert b2[0].tolist() == [[0, 0, 8, 4], [0, 0, 2, 4], [3, 3, 4, 4]]


def test_hand_built_hole_and_notch_keep_the_box_and_min_area():
    # 6x6 image 0 gets a 2x2 hole at (2,2)..(4,4) from image 1.
    p = P([1, 0], [[2, 2, 4, 4], [0, 0, 0, 0]], (6, 6))
    boxes = [
        T([[0, 0, 6, 6], [3, 0, 6, 3]], torch.float32),
        T([[0, 0, 6, 6], [3, 3, 6, 6]], torch.float32),
    ]
    labels = [L([1, 2]), L([3, 4])]
    out = cut_boxes(boxes, labels, p, min_visibility=0.0, min_area=2.0, return_weights=True)
    # own [0,0,6,6]: hole, unchanged, 32/36; own [3,0,6,3]: notch (1 px of 9), unchanged, 8/9
    # partner [0,0,6,6]: clipped to [2,2,4,4], 4/36, area 4 >= 2 kept
    # partner [3,3,6,6]: clipped to [3,3,4,4], 1/9, area 1 < min_area 2 -> dropped
    assert out.boxes[0].tolist() == [[0, 0, 6, 6], [3, 0, 6, 3], [2, 2, 4, 4]]
    assert out.boxes[0].dtype == torch.float32
    assert out.labels[0].tolist() == [1, 2, 3]
    torch.testing.assert_close(out.weights[0], torch.tensor([32 / 36, 8 / 9, 4 / 36]))


def test_default_return_is_two_lists_as_in_design():
    p = P([1, 0], [[0, 0, 1, 1], [0, 0, 0, 0]], (2, 2))
    boxes, box_labels = cut_boxes([T([[0, 0, 2, 2]]), T([[0, 0, 2, 2]])], [L([0]), L([1])], p)
    assert isinstance(boxes, list) and isinstance(box_labels, list) and len(boxes) == 2
    assert boxes[0].tolist() == [[0, 0, 2, 2], [0, 0, 1, 1]]


def test_functional_and_top_level_names():
    assert cutmix.functional.cut_boxes is cut_boxes
    assert cutmix.cut_boxes is cut_boxes


def test_empty_lists_and_images_without_boxes():
    p = P([1, 2, 0], [[0, 0, 2, 2], [1, 1, 3, 3], [0, 0, 4, 4]], (4, 4))
    empty = [torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0, 4)]
    labs = [torch.zeros(0, dtype=torch.int64)] * 3
    out = cut_boxes(empty, labs, p, return_weights=True)
    assert [b.shape for b in out.boxes] == [(0, 4)] * 3
    assert [lab.shape for lab in out.labels] == [(0,)] * 3
    assert [w.shape for w in out.weights] == [(0,)] * 3
    # Only image 1 has a box; image 0 receives it (clipped), image 2 loses it to the full paste.
    some = [torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.zeros(0, 4)]
    labs2 = [labs[0], L([5]), labs[0]]
    b, lab = cut_boxes(some, labs2, p, min_visibility=0.0)
    assert b[0].tolist() == [[0.0, 0.0, 2.0, 2.0]] and lab[0].tolist() == [5]
    assert b[1].tolist() == [[0.0, 0.0, 4.0, 4.0]]  # own box, 5/16 covered: cut, not trimmed
    assert b[2].shape == (0, 4)  # image 2 received image 0's (empty) region... and 0 has no boxes
    # A 1-D empty tensor is accepted as "no boxes" too.
    b, _ = cut_boxes([torch.zeros(0), some[1], torch.zeros(0)], labs2, p)
    assert b[0].shape == (1, 4)


def test_zero_area_boxes_are_dropped():
    p = cutmix.identity_params(1, (4, 4))
    b, lab = cut_boxes([T([[1, 1, 1, 3], [0, 0, 2, 2]])], [L([1, 2])], p, min_visibility=0.0)
    assert b[0].tolist() == [[0, 0, 2, 2]] and lab[0].tolist() == [2]


def test_mixup_boxes_union_with_blend_weights():
    p = P([1, 0], None, (4, 4), lam=[0.7, 0.2])
    boxes = [T([[0, 0, 2, 2]]), T([[1, 1, 4, 4], [0, 0, 1, 1]])]
    out = cut_boxes(boxes, [L([1]), L([2, 3])], p, min_visibility=0.25, return_weights=True)
    assert out.boxes[0].tolist() == [[0, 0, 2, 2], [1, 1, 4, 4], [0, 0, 1, 1]]
    assert out.labels[0].tolist() == [1, 2, 3]
    torch.testing.assert_close(out.weights[0], torch.tensor([0.7, 0.3, 0.3]))
    # Image 1 keeps its own with weight 0.2 < 0.25 -> dropped; image 0's box comes with 0.8.
    assert out.labels[1].tolist() == [1]
    torch.testing.assert_close(out.weights[1], torch.tensor([0.8]))


def test_random_mix_per_sample_blend_and_cut():
    # Sample 0 is cut (box), sample 1 blended with lam 0.6.
    p = cutmix.MixParams(
        perm=torch.tensor([1, 0]),
        lam=torch.tensor([0.75, 0.6]),
        boxes=torch.tensor([[0, 0, 2, 2], [0, 0, 0, 0]]),
        size=(4, 4),
        blend=torch.tensor([False, True]),
    )
    boxes = [T([[0, 0, 4, 4]]), T([[0, 0, 4, 4]])]
    out = cut_boxes(boxes, [L([1]), L([2])], p, min_visibility=0.1, return_weights=True)
    assert out.boxes[0].tolist() == [[0, 0, 4, 4], [0, 0, 2, 2]]
    torch.testing.assert_close(out.weights[0], torch.tensor([0.75, 0.25]))
    assert out.boxes[1].tolist() == [[0, 0, 4, 4], [0, 0, 4, 4]]
    assert out.labels[1].tolist() == [2, 1]
    torch.testing.assert_close(out.weights[1], torch.tensor([0.6, 0.4]))


def test_inputs_are_not_modified():
    p = P([1, 0], [[0, 0, 3, 3], [1, 1, 2, 2]], (4, 4))
    boxes = [T([[0, 0, 4, 2]]), T([[1, 1, 4, 4]])]
    labels = [L([1]), L([2])]
    copies = [b.clone() for b in boxes], [lab.clone() for lab in labels]
    cut_boxes(boxes, labels, p)
    assert all(torch.equal(a, b) for a, b in zip(boxes, copies[0]))
    assert all(torch.equal(a, b) for a, b in zip(labels, copies[1]))


# --- brute-force properties ----------------------------------------------------------------------


def _pixels(box, h, w):
    m = torch.zeros(h, w, dtype=torch.bool)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1:y2, x1:x2] = True
    return m


def _bbox(m):
    ys, xs = m.nonzero(as_tuple=True)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


@st.composite
def box_batches(draw):
    n = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    boxes = []
    for _ in range(n):
        k = draw(st.integers(0, 4))
        rows = []
        for _ in range(k):
            x1 = draw(st.integers(0, w - 1))
            y1 = draw(st.integers(0, h - 1))
            rows.append([x1, y1, draw(st.integers(x1 + 1, w)), draw(st.integers(y1 + 1, h))])
        boxes.append(T(rows))
    seed = draw(st.integers(0, 2**31 - 1))
    mode = draw(st.sampled_from(["sample", "pair", "batch"]))
    placement = draw(st.sampled_from(["center", "inside"]))
    g = torch.Generator().manual_seed(seed)
    params = cutmix.sample_cutmix(
        n, (h, w), alpha=1.0, p=0.8, mode=mode, placement=placement, generator=g
    )
    min_vis = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]))
    min_area = draw(st.sampled_from([0.0, 1.0, 3.0]))
    return boxes, params, (h, w), min_vis, min_area


@given(box_batches())
def test_property_against_brute_force_pixel_counts(case):
    boxes, params, (h, w), min_vis, min_area = case
    n = len(boxes)
    # Global box ids as labels: they identify each output box's source.
    offsets = [0]
    for b in boxes:
        offsets.append(offsets[-1] + b.shape[0])
    labels = [torch.arange(offsets[i], offsets[i + 1]) for i in range(n)]
    owner = {int(j): i for i in range(n) for j in labels[i]}
    flat = torch.cat(boxes)
    out = cut_boxes(
        boxes, labels, params, min_visibility=min_vis, min_area=min_area, return_weights=True
    )
    perm = params.perm.tolist()
    for i in range(n):
        paste = _pixels(params.boxes[i], h, w)
        ob, ol, ow = out.boxes[i], out.labels[i], out.weights[i]
        assert ob.shape == (ol.shape[0], 4) and ow.shape == ol.shape and ob.dtype == torch.int64
        # Inside the image.
        assert bool(((ob[:, 0] >= 0) & (ob[:, 1] >= 0) & (ob[:, 2] <= w) & (ob[:, 3] <= h)).all())
        assert bool(((ob[:, 2] > ob[:, 0]) & (ob[:, 3] > ob[:, 1])).all())
        expected = []
        for j in labels[i].tolist():  # own boxes, in order
            m = _pixels(flat[j], h, w)
            vis = m & ~paste
            frac = vis.sum().item() / m.sum().item()
            if frac > 0 and frac >= min_vis:
                expected.append((j, _bbox(vis), frac))
        for j in labels[perm[i]].tolist():  # partner boxes, in order
            m = _pixels(flat[j], h, w)
            seen = m & paste
            frac = seen.sum().item() / m.sum().item()
            if frac > 0 and frac >= min_vis and seen.sum().item() >= min_area:
                expected.append((j, _bbox(seen), frac))
        assert ol.tolist() == [e[0] for e in expected]
        assert ob.tolist() == [e[1] for e in expected]
        torch.testing.assert_close(ow, torch.tensor([e[2] for e in expected], dtype=torch.float32))
        for row, j in zip(ob.tolist(), ol.tolist()):
            if owner[j] == perm[i] and owner[j] != i:
                assert bool(paste[row[1] : row[3], row[0] : row[2]].all())  # inside the paste


# --- bad input -----------------------------------------------------------------------------------


@pytest.fixture
def p2():
    return P([1, 0], [[0, 0, 2, 2], [0, 0, 0, 0]], (4, 6))


def test_bad_boxes_shape(p2):
    with pytest.raises(
        ValueError,
        match=r"boxes\[1\]: expected \(K, 4\) boxes as x1, y1, x2, y2, got Tensor of shape \(2, 5\)",
    ):
        cut_boxes([T([]), torch.zeros(2, 5)], [L([]), L([1, 2])], p2)


def test_boxes_outside_the_image(p2):
    with pytest.raises(
        ValueError,
        match=r"boxes\[0\]: expected boxes inside the image \(0 <= x1 <= x2 <= W=6, 0 <= y1 <= y2 <= H=4\), got box 1 = \[0, 0, 7, 2\]",
    ):
        cut_boxes([T([[0, 0, 1, 1], [0, 0, 7, 2]]), T([])], [L([1, 2]), L([])], p2)
    with pytest.raises(
        ValueError, match=r"boxes\[1\]: expected boxes inside the image .*got box 0 = \[-1"
    ):
        cut_boxes([T([]), T([[-1, 0, 1, 1]])], [L([]), L([1])], p2)


def test_x2_less_than_x1(p2):
    with pytest.raises(
        ValueError,
        match=r"boxes\[0\]: expected x1 <= x2 and y1 <= y2 \(XYXY pixel boxes\), got box 0 = \[3, 0, 1, 2\]",
    ):
        cut_boxes([T([[3, 0, 1, 2]]), T([])], [L([1]), L([])], p2)


def test_labels_boxes_length_mismatch(p2):
    with pytest.raises(
        ValueError,
        match=r"labels\[0\]: expected 1 labels \(one per box\), got Tensor of shape \(2,\)",
    ):
        cut_boxes([T([[0, 0, 1, 1]]), T([])], [L([1, 2]), L([])], p2)
    with pytest.raises(
        ValueError, match=r"boxes: expected 2 entries \(one per image of the params' batch\), got 1"
    ):
        cut_boxes([T([])], [L([])], p2)
    with pytest.raises(TypeError, match=r"boxes: expected a list with one tensor per image"):
        cut_boxes(torch.zeros(2, 0, 4), [L([]), L([])], p2)
    with pytest.raises(ValueError, match=r"boxes\[0\]: expected finite coordinates"):
        cut_boxes([torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), T([])], [L([1]), L([])], p2)


def test_bad_thresholds(p2):
    with pytest.raises(
        ValueError, match=r"min_visibility: expected a fraction in \[0, 1\], got 1.5"
    ):
        cut_boxes([T([]), T([])], [L([]), L([])], p2, min_visibility=1.5)
    with pytest.raises(ValueError, match=r"min_area: expected an area >= 0 \(pixels\), got -1"):
        cut_boxes([T([]), T([])], [L([]), L([])], p2, min_area=-1)
