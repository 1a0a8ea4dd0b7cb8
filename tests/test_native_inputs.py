"""What reaches the C kernel: every shape, dtype, device and layout it relies on is checked in
Python, every box and partner in C before anything is written, tensors whose bytes are not their
values go to the eager kernels, and raw writes bump autograd's version counter.

Inputs that used to crash the process run in a subprocess, so a segfault is a failure here, not
the end of the test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix import MixParams, _native
from cutmix.functional import _images as F
from helpers import HAS_C_COMPILER

pytestmark = pytest.mark.skipif(not HAS_C_COMPILER, reason="the C kernel needs a C compiler")


def _reference(x: torch.Tensor, perm: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    expected = x.clone()
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        expected[i, :, y1:y2, x1:x2] = x[int(perm[i]), :, y1:y2, x1:x2]
    return expected


def _targets(labels: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor, c: int) -> torch.Tensor:
    out = torch.zeros(len(labels), c)
    out.scatter_(1, labels.view(-1, 1), lam.view(-1, 1))
    return out.scatter_add_(1, labels[perm].view(-1, 1), 1 - lam.view(-1, 1))


# Each case builds its inputs inside the try: hand-built MixParams may be refused when built.
_CRASHERS = {
    "cut_images boxes (0, 4)": "F.cut_images(x, MixParams(perm, lam, torch.zeros(0, 4, dtype=torch.long), (8, 8)))",
    "cut_images inplace boxes (0, 4)": "F.cut_images(x, MixParams(perm, lam, torch.zeros(0, 4, dtype=torch.long), (8, 8)), inplace=True)",
    "cut_images boxes on meta": "F.cut_images(x, MixParams(perm, lam, boxes.to('meta'), (8, 8)))",
    "cut_images out= boxes on meta": "F.cut_images(x, MixParams(perm, lam, boxes.to('meta'), (8, 8)), out=torch.empty_like(x))",
    "cut_images perm (N, 0)": "F.cut_images(x, MixParams(torch.zeros(4, 0, dtype=torch.long), lam, boxes, (8, 8)))",
    "cut_images boxes (N, 2)": "F.cut_images(x, MixParams(perm, lam, boxes[:, :2], (8, 8)))",
    "cut_images float perm": "F.cut_images(x, MixParams(perm.float(), lam, boxes, (8, 8)))",
    "cut_images bool perm": "F.cut_images(x, MixParams(perm > 0, lam, boxes, (8, 8)))",
    "cut_images float boxes": "F.cut_images(x, MixParams(perm, lam, boxes.float(), (8, 8)))",
    "mix_labels lam empty": "F.mix_labels(labels, MixParams(perm, torch.ones(0), None, None), 5)",
    "mix_labels lam on meta": "F.mix_labels(labels, MixParams(perm, torch.ones(4, device='meta'), None, None), 5)",
    "mix_labels lam shorter than N": "F.mix_labels(labels, MixParams(perm, torch.ones(2), None, None), 5)",
    "mix_labels perm (N, 0)": "F.mix_labels(labels, MixParams(torch.zeros(4, 0, dtype=torch.long), lam, None, None), 5)",
    "cut_rows perm on meta": "_native.cut_rows(x, perm.to('meta'), boxes, torch.empty_like(x))",
    "cut_rows perm (2,)": "_native.cut_rows(x, perm[:2], boxes, None)",
    "cut_rows float perm": "_native.cut_rows(x, perm.float(), boxes, None)",
    "cut_rows boxes (N, 3)": "_native.cut_rows(x, perm, boxes[:, :3], torch.empty_like(x))",
    "cut_rows boxes (N, 4, 1)": "_native.cut_rows(x, perm, boxes[..., None], torch.empty_like(x))",
    "cut_rows out smaller": "_native.cut_rows(x, perm, boxes, torch.empty(1, 3, 8, 8))",
    "soft_targets lam empty": "_native.soft_targets(labels, perm, torch.ones(0), torch.empty(4, 5))",
    "soft_targets lam on meta": "_native.soft_targets(labels, perm, lam.to('meta'), torch.empty(4, 5))",
    "soft_targets labels (N, 1)": "_native.soft_targets(labels[:, None], perm, lam, torch.empty(4, 5))",
    "soft_targets labels on meta": "_native.soft_targets(labels.to('meta'), perm, lam, torch.empty(4, 5))",
    "soft_targets perm (2,)": "_native.soft_targets(labels, perm[:2], lam, torch.empty(4, 5))",
    "soft_targets out on meta": "_native.soft_targets(labels, perm, lam, torch.empty(4, 5, device='meta'))",
}

_SCRIPT = """
import json, sys, torch
from cutmix import MixParams, _native
from cutmix import functional as F
torch.set_num_threads(1)
x = torch.rand(4, 3, 8, 8)
perm = torch.tensor([1, 0, 3, 2]); lam = torch.full((4,), 0.5); labels = torch.tensor([0, 1, 2, 3])
boxes = torch.tensor([[0, 0, 4, 4]] * 4)
before = x.clone()
for name, code in json.loads(sys.argv[1]).items():
    print("start", name, flush=True)
    try:
        eval(code)
        outcome = "no error"
    except (ValueError, TypeError) as exc:
        outcome = type(exc).__name__ + ": " + str(exc)
    except Exception as exc:
        outcome = "raw " + type(exc).__name__ + ": " + str(exc)
    print("done", name, "|", outcome.replace(chr(10), " "), "| changed" if not torch.equal(x, before) else "", flush=True)
"""


@pytest.mark.slow
def test_inputs_that_used_to_segfault_are_value_errors() -> None:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), json.dumps(_CRASHERS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    started = [line for line in res.stdout.splitlines() if line.startswith("start")]
    assert res.returncode != -11, f"segfault in {started[-1]}"
    assert res.returncode == 0, res.stderr[-2000:]
    done = {
        line.split("|")[0][5:].strip(): line.split("|", 1)[1]
        for line in res.stdout.splitlines()
        if line.startswith("done")
    }
    assert set(done) == set(_CRASHERS)
    for name, outcome in done.items():
        assert outcome.strip().startswith(("ValueError", "TypeError")), (name, outcome)
        field = "out" if "out smaller" in name or "out on meta" in name else None
        field = field or ("labels" if "labels" in name and "soft_targets" in name else "params")
        assert f"{field}" in outcome, (name, outcome)
        assert "changed" not in outcome, name


BAD_BOXES = [
    ([1, 0, 3, 2], [[3, 0, 1, 2]] + [[0, 0, 1, 1]] * 3, "x2 < x1"),
    ([1, 0, 3, 2], [[0, 3, 2, 1]] + [[0, 0, 1, 1]] * 3, "y2 < y1"),
    ([1, 0, 3, 2], [[0, 0, 1, 1]] * 3 + [[0, 0, 6, 1]], "x2 > W"),
    ([1, 0, 3, 2], [[0, 0, 1, 1]] * 3 + [[0, 0, 1, 7]], "y2 > H"),
    ([1, 0, 3, 2], [[0, 0, 1, 1]] * 3 + [[-1, 0, 1, 1]], "x1 < 0"),
    ([1, 0, 3, 2], [[0, 0, 1, 1]] * 3 + [[0, 0, 2**62, 1]], "huge"),
    ([1, 0, 3, -1], [[0, 0, 1, 1]] * 4, "partner -1"),
    ([1, 0, 3, 4], [[0, 0, 1, 1]] * 4, "partner N"),
]


@pytest.mark.parametrize(("perm", "boxes", "what"), BAD_BOXES, ids=[b[2] for b in BAD_BOXES])
def test_bad_boxes_and_partners_are_refused_before_writing(
    perm: list[int], boxes: list[list[int]], what: str
) -> None:
    x = torch.rand(4, 2, 6, 5)
    before = x.clone()
    perm_t, boxes_t = torch.tensor(perm), torch.tensor(boxes)
    out = torch.zeros_like(x)
    match = r"params: expected partners in \[0, 4\) and boxes with 0 <= x1 <= x2 <= 5"
    with pytest.raises(ValueError, match=match):
        _native.cut_rows(x, perm_t, boxes_t, out)
    with pytest.raises(ValueError, match=match):
        _native.cut_rows(x, perm_t, boxes_t, None)
    assert torch.equal(x, before) and not out.any()  # nothing written, in place or not
    cl = x.contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=match):
        _native.cut_rows(cl, perm_t, boxes_t, None)
    assert torch.equal(cl, before)


def test_empty_and_full_boxes_and_empty_batches() -> None:
    x = torch.rand(3, 2, 6, 5)
    perm = torch.tensor([1, 2, 0])
    boxes = torch.tensor([[5, 6, 5, 6], [0, 0, 5, 6], [2, 3, 2, 6]])  # at the edge, full, empty
    expected = _reference(x, perm, boxes)
    assert torch.equal(_native.cut_rows(x, perm, boxes, torch.empty_like(x)), expected)
    assert torch.equal(_native.cut_rows(x.clone(), perm, boxes, None), expected)
    none = torch.empty(0, 2, 6, 5)
    empty = torch.empty(0, dtype=torch.long)
    assert _native.cut_rows(none, empty, empty.view(0, 4), None) is none
    flat = torch.empty(3, 2, 0, 5)
    zero = torch.zeros(3, 4, dtype=torch.long)
    assert _native.cut_rows(flat, perm, zero, torch.empty_like(flat)).shape == flat.shape


def test_index_tensors_of_any_integer_dtype_and_layout() -> None:
    x = torch.rand(4, 2, 6, 5)
    perm = torch.tensor([1, 0, 3, 2])
    boxes = torch.tensor([[0, 0, 2, 3], [1, 1, 5, 6], [0, 0, 0, 0], [2, 2, 4, 4]])
    expected = _reference(x, perm, boxes)
    for p, b in (
        (perm.int(), boxes.short()),
        (perm.to(torch.uint8), boxes.t().contiguous().t()),
        (torch.stack([perm, perm], 1)[:, 0], boxes.int()),
        (torch._neg_view(-perm), torch._neg_view(-boxes)),
    ):
        assert torch.equal(_native.cut_rows(x, p, b, torch.empty_like(x)), expected)


def test_negative_and_conjugate_views_are_read_as_their_values() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 6, 5, generator=g)
    p = cutmix.sample_cutmix(4, (6, 5), generator=g)
    neg = torch._neg_view(x)
    assert neg.is_neg() and neg.is_contiguous()
    expected = _reference(-x, p.perm, p.boxes)
    # Out of place the values are resolved first; in place the bytes move within one view.
    assert torch.equal(_native.cut_rows(neg, p.perm, p.boxes, torch.empty_like(x)), expected)
    inplace = torch._neg_view(x.clone())
    assert torch.equal(_native.cut_rows(inplace, p.perm, p.boxes, None), expected)
    for strategy in ("auto", "native"):
        assert torch.equal(F.cut_images(neg, p, strategy=strategy), expected)
        # The public boundary refuses a lazily negated view in place, untouched (edges' policy).
        inplace = torch._neg_view(x.clone())
        before = inplace.clone()
        with pytest.raises(ValueError, match="images: expected a tensor without the negative"):
            F.cut_images(inplace, p, inplace=True, strategy=strategy)
        assert torch.equal(inplace, before)
    # The case: the imaginary part of a conjugate, one pixel wide (contiguous rows).
    z = torch.randn(4, 3, 6, 1, dtype=torch.complex64, generator=g)
    imag = z.conj().imag
    assert imag.is_neg()
    q = cutmix.MixParams(p.perm, p.lam, p.boxes.clamp(max=1), (6, 1))
    assert torch.equal(F.cut_images(imag, q), _reference(-z.imag, q.perm, q.boxes))
    conj = z.conj()
    got = _native.cut_rows(conj, q.perm, q.boxes, torch.empty_like(z))
    assert torch.equal(got, _reference(z.conj().resolve_conj(), q.perm, q.boxes))
    # An output with the negative bit: its bytes are not its values, left to the eager kernels.
    out = torch._neg_view(torch.zeros_like(x))
    assert _native.cut_rows(x, p.perm, p.boxes, out) is None
    assert not out.any()


def test_outputs_that_overlap_go_to_the_eager_kernels() -> None:
    base = torch.arange(4 * 2 * 6 * 12, dtype=torch.float32).view(4, 2, 6, 12)
    before = base.clone()
    perm = torch.tensor([1, 0, 3, 2])
    boxes = torch.tensor([[0, 0, 4, 4]] * 4)
    # Non-dense views sharing memory: base[..., :8] into base[..., 4:12].
    assert _native.cut_rows(base[..., :8], perm, boxes, base[..., 4:12]) is None
    expanded = torch.empty(1, 2, 6, 8).expand(4, 2, 6, 8)  # one sample's memory for all four
    assert _native.cut_rows(base[..., :8], perm, boxes, expanded) is None
    assert _native.cut_rows(expanded, perm, boxes, None) is None
    assert torch.equal(base, before)


def test_raw_writes_bump_the_version_counter() -> None:
    # The eager kernels raise in backward when a tensor saved for it was changed; so must the C one.
    x = torch.rand(4, 3, 8, 8)
    p = cutmix.sample_cutmix(4, (8, 8), generator=torch.Generator().manual_seed(1))
    assert F._route(x, "auto", True, None) == "c_paste"
    for strategy in ("auto", "native", "loop", "masked"):
        w = torch.rand(4, 3, 8, 8, requires_grad=True)
        y = (w * x).sum()  # saves x for w's gradient
        F.cut_images(x, p, inplace=True, strategy=strategy)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
    out = torch.empty_like(x)
    w = torch.rand(4, 3, 8, 8, requires_grad=True)
    y = (w * out).sum()
    version = out._version
    F.cut_images(x, p, out=out, strategy="native")
    assert out._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    targets = torch.empty(4, 5)
    w = torch.rand(4, 5, requires_grad=True)
    y = (w * targets).sum()
    assert F._native_targets(torch.tensor([0, 1, 2, 3]), p.lam, targets)
    F.mix_labels(torch.tensor([0, 1, 2, 3]), p, 5, out=targets)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("strategy", ["auto", "native", "loop", "masked"])
def test_in_place_on_a_leaf_that_requires_grad_is_refused(strategy: str) -> None:
    # Refused before any kernel runs (with grad enabled every strategy takes the masked kernel,
    # and PyTorch refuses an in-place write into such a leaf); the tensor is unchanged.
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    before = x.detach().clone()
    p = cutmix.sample_cutmix(4, (8, 8), generator=torch.Generator().manual_seed(1))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.cut_images(x, p, inplace=True, strategy=strategy)
    assert torch.equal(x.detach(), before)


def test_inference_tensors_are_written_as_pytorch_allows() -> None:
    with torch.inference_mode():
        x = torch.rand(4, 3, 8, 8)
    p = cutmix.sample_cutmix(4, (8, 8), generator=torch.Generator().manual_seed(1))
    assert _native.cut_rows(x, p.perm, p.boxes, None) is None  # outside inference mode: eager
    expected = _reference(x, p.perm, p.boxes)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        x.add_(0)  # PyTorch's rule, which the C kernel leaves to the eager ones
    with torch.inference_mode():
        assert torch.equal(_native.cut_rows(x, p.perm, p.boxes, None), expected)


def test_soft_targets_check_their_inputs() -> None:
    labels, perm = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 0, 3, 2])
    lam = torch.tensor([0.25, 0.5, 1.0, 0.0])
    out = torch.empty(4, 5)
    expected = _targets(labels, perm, lam, 5)
    assert torch.equal(_native.soft_targets(labels, perm, lam, out), expected)
    for y, q, lm in (
        (torch.stack([labels, labels], 1)[:, 1], perm.int(), torch.stack([lam, lam], 1)[:, 0]),
        (torch._neg_view(-labels), torch._neg_view(-perm), torch._neg_view(-lam)),
        (labels.to(torch.uint8), perm, lam.double()),
    ):
        assert torch.equal(_native.soft_targets(y, q, lm, torch.empty(4, 5)), expected)
    for bad, name in (
        ((labels.float(), perm, lam), "labels"),
        ((labels > 0, perm, lam), "labels"),
        ((labels[:3], perm, lam), "labels"),
        ((labels, perm.float(), lam), "params"),
        ((labels, perm, lam.long()), "params"),
        ((labels, perm, lam[:, None]), "params"),
        ((labels, perm, lam[:3]), "params"),
    ):
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            _native.soft_targets(*bad, torch.empty(4, 5))
    for bad_out in (torch.empty(4, 5, dtype=torch.float64), torch.empty(20), "no"):
        with pytest.raises(ValueError, match=r"^out: expected a float32"):
            _native.soft_targets(labels, perm, lam, bad_out)  # type: ignore[arg-type]
    # Outputs that are not plain contiguous buffers are written through a copy.
    for odd in (torch.empty(5, 4).t(), torch._neg_view(torch.empty(4, 5))):
        assert _native.soft_targets(labels, perm, lam, odd) is odd
        assert torch.equal(odd, expected)
    leaf = torch.empty(4, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        _native.soft_targets(labels, perm, lam, leaf)


def test_mix_labels_through_the_c_kernel_equals_the_eager_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 7, (9,), generator=g)
    p = cutmix.sample_cutmix(9, (8, 8), generator=g)
    native = F.mix_labels(labels, p, 7)
    monkeypatch.setenv("CUTMIX_NATIVE", "0")
    assert torch.equal(native, F.mix_labels(labels, p, 7))
    assert torch.equal(native, _targets(labels, p.perm, p.lam, 7))


def test_hand_built_params_reach_the_kernel_checked() -> None:
    # Through the public function, with each kernel: a ValueError naming params, nothing written.
    x = torch.rand(2, 1, 4, 4)
    before = x.clone()
    boxes = torch.tensor([[3, 0, 1, 2], [0, 0, 1, 1]])  # x2 < x1
    for strategy in ("auto", "native"):
        with pytest.raises(ValueError, match="params"):  # may be refused when built
            p = MixParams(torch.tensor([1, 0]), torch.ones(2), boxes, (4, 4))
            F.cut_images(x, p, inplace=True, strategy=strategy)
        assert torch.equal(x, before)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Valid partners and boxes, half the time with one value broken (any field, any sample)."""
    n = draw(st.integers(0, 5))
    h, w = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    dtype = draw(st.sampled_from([torch.float32, torch.uint8, torch.float64]))
    x = torch.randint(0, 200, (n, 2, h, w)).to(dtype)
    if draw(st.booleans()):
        x = x.contiguous(memory_format=torch.channels_last)
    perm = [draw(st.integers(0, n - 1)) for _ in range(n)]
    boxes = []
    for _ in range(n):
        xs = sorted(draw(st.lists(st.integers(0, w), min_size=2, max_size=2)))
        ys = sorted(draw(st.lists(st.integers(0, h), min_size=2, max_size=2)))
        boxes.append([xs[0], ys[0], xs[1], ys[1]])
    if n and draw(st.booleans()):
        i, field = draw(st.integers(0, n - 1)), draw(st.integers(0, 4))
        if field == 4:
            perm[i] = draw(st.sampled_from([-1, n, n + 7, -(2**63)]))
        else:
            boxes[i][field] = draw(st.integers(-3, max(h, w) + 3))
    return (
        x,
        torch.tensor(perm, dtype=torch.long),
        torch.tensor(boxes, dtype=torch.long).view(n, 4),
        draw(st.booleans()),
    )


@given(_cases())
def test_fuzz_any_box_and_partner_gives_the_reference_or_a_value_error(
    case: tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool],
) -> None:
    x, perm, boxes, inplace = case
    n, _, h, w = x.shape
    x1, y1, x2, y2 = boxes.unbind(1) if n else (torch.zeros(0),) * 4
    valid = bool(
        ((perm >= 0) & (perm < n)).all()
        and ((x1 >= 0) & (x1 <= x2) & (x2 <= w) & (y1 >= 0) & (y1 <= y2) & (y2 <= h)).all()
    )
    before = x.clone()
    out = None if inplace else torch.zeros_like(x)
    if not valid:
        with pytest.raises(ValueError, match=r"^params: expected partners"):
            _native.cut_rows(x, perm, boxes, out)
        assert torch.equal(x, before)
        assert out is None or not out.any()
        return
    got = _native.cut_rows(x, perm, boxes, out)
    assert got is (x if inplace else out)
    assert torch.equal(got, _reference(before, perm, boxes))
