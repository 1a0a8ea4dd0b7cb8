"""Every image strategy gives bitwise the reference result; the fused soft targets match the formula.

The reference is the obvious per-sample paste on a private copy. Partners here are arbitrary maps
(cycles, self-partners, several readers of one sample), which is what makes in-place pasting subtle.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cutmix
from cutmix.functional import _images as F
from cutmix.params import MixParams
from helpers import FORCED, HAS_C_COMPILER

# "auto" as users get it, and as it is without the C kernel (CUTMIX_NATIVE=0 or no compiler).
AUTO = ["auto", "auto without native"]


def cut(images: torch.Tensor, p: MixParams, strategy: str, **kw) -> torch.Tensor:
    """``F.cut_images`` with ``strategy``; "auto without native" sets CUTMIX_NATIVE=0 for the call."""
    if strategy != "auto without native":
        return F.cut_images(images, p, strategy=strategy, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUTMIX_NATIVE", "0")
        kernel = F._route(images, "auto", kw.get("inplace", False), kw.get("out"))
        assert kernel not in ("c_rows", "c_paste")
        return F.cut_images(images, p, strategy="auto", **kw)


def reference_cut(images: torch.Tensor, perm: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    out = images.clone()
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        j = int(perm[i])
        out[i, :, y1:y2, x1:x2] = images[j, :, y1:y2, x1:x2]
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[torch.Tensor, MixParams]:
    n = draw(st.integers(1, 7))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    c = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.uint8, torch.bfloat16, torch.float64]))
    channels_last = draw(st.booleans())
    any_map = draw(st.booleans())
    if any_map:
        perm = [draw(st.integers(0, n - 1)) for _ in range(n)]
    else:
        perm = draw(st.permutations(list(range(n))))
    boxes = []
    for _ in range(n):
        x1 = draw(st.integers(0, w))
        y1 = draw(st.integers(0, h))
        boxes.append([x1, y1, draw(st.integers(x1, w)), draw(st.integers(y1, h))])
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, h, w), generator=g).to(dtype)
    if dtype.is_floating_point:
        images = images + torch.rand(n, c, h, w, generator=g).to(dtype)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    b = torch.tensor(boxes, dtype=torch.int64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lam = (1 - area.double() / (h * w)).float()
    return images, MixParams(perm=torch.tensor(perm), lam=lam, boxes=b, size=(h, w))


@pytest.mark.parametrize("strategy", FORCED + AUTO)
@given(case=cases())
def test_strategy_equals_reference_bitwise(strategy: str, case) -> None:
    images, p = case
    before = images.clone()
    expected = reference_cut(images, p.perm, p.boxes)

    got = cut(images, p, strategy)
    assert torch.equal(images, before), "input modified"
    assert torch.equal(got, expected)
    assert got.dtype == images.dtype
    assert got.stride() == torch.empty_like(images).stride()  # memory format kept

    out = torch.full_like(images, 7)
    res = cut(images, p, strategy, out=out)
    assert res.data_ptr() == out.data_ptr()
    assert torch.equal(out, expected)
    assert torch.equal(images, before)

    work = images.clone()
    res = cut(work, p, strategy, inplace=True)
    assert res.data_ptr() == work.data_ptr()
    assert torch.equal(work, expected)


@given(case=cases(), samples_per_chunk=st.integers(1, 4))
def test_masked_chunks_cover_the_batch(case, samples_per_chunk: int) -> None:
    # The CPU masked kernel works through the batch in chunks of _CHUNK_BYTES; with a few samples
    # per chunk every boundary case (one sample, a short last chunk, partners in other chunks) runs.
    images, p = case
    expected = reference_cut(images, p.perm, p.boxes)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "_CHUNK_BYTES", samples_per_chunk * images[0].numel() * images.element_size())
        assert torch.equal(F.cut_images(images, p, strategy="masked"), expected)
        out = torch.full_like(images, 3)
        F.cut_images(images, p, out=out, strategy="masked")
        assert torch.equal(out, expected)
        work = images.clone()
        F.cut_images(work, p, inplace=True, strategy="masked")
        assert torch.equal(work, expected)


@given(case=cases())
def test_one_box_for_the_whole_batch(case) -> None:
    # mode="batch" gives every sample the same box: the CPU masked path then copies the batch and
    # gathers the box once. Same result as the reference for any partner map, also in place.
    images, p = case
    boxes = p.boxes[:1].expand_as(p.boxes).contiguous()
    p = MixParams(perm=p.perm, lam=p.lam, boxes=boxes, size=p.size)
    expected = reference_cut(images, p.perm, boxes)
    for strategy in FORCED:
        assert torch.equal(F.cut_images(images, p, strategy=strategy), expected)
        out = torch.full_like(images, 5)
        assert F.cut_images(images, p, out=out, strategy=strategy).data_ptr() == out.data_ptr()
        assert torch.equal(out, expected)
        work = images.clone()
        F.cut_images(work, p, inplace=True, strategy=strategy)
        assert torch.equal(work, expected)


@pytest.mark.parametrize("strategy", FORCED + AUTO)
def test_out_in_another_memory_format(strategy: str) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, 6, 7, generator=g)
    p = cutmix.sample_cutmix(5, (6, 7), generator=g)
    expected = reference_cut(x, p.perm, p.boxes)
    for src, dst in (
        (x, torch.channels_last),
        (x.contiguous(memory_format=torch.channels_last), None),
    ):
        out = torch.empty_like(x, memory_format=dst or torch.contiguous_format)
        assert cut(src, p, strategy, out=out).data_ptr() == out.data_ptr()
        assert torch.equal(out, expected)
    # Neither W nor C innermost: the kernels fall back (masked to where(), native to the loop, or
    # under "auto" to the eager kernel it would pick).
    odd = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
    assert odd.stride(-1) != 1 and odd.stride(1) != 1
    assert torch.equal(cut(odd, p, strategy), expected)
    assert torch.equal(cut(odd, p, strategy, out=torch.empty_like(odd)), expected)


@pytest.mark.skipif(not HAS_C_COMPILER, reason="the native kernel needs a C compiler")
def test_native_refuses_params_outside_the_batch() -> None:
    x = torch.rand(3, 2, 5, 4)
    good = torch.tensor([[0, 0, 2, 2], [1, 1, 4, 5], [0, 0, 0, 0]])
    cases = [
        (torch.tensor([1, 3, 0]), good, "partner 3 and box [1, 1, 4, 5] for sample 1"),
        (
            torch.tensor([1, 2, 0]),
            good + torch.tensor([0, 0, 1, 0]),
            "box [1, 1, 5, 5] for sample 1",
        ),
        (
            torch.tensor([1, 2, 0]),
            good - torch.tensor([1, 0, 0, 0]),
            "box [-1, 0, 2, 2] for sample 0",
        ),
    ]
    for perm, boxes, what in cases:
        p = MixParams(perm=perm, lam=torch.ones(3), boxes=boxes, size=(5, 4))
        out = torch.zeros_like(x)
        # Refused at the public boundary (MixParams._check_values) before the C kernel's own check.
        with pytest.raises(ValueError, match=r"^params\.(perm|boxes): expected"):
            F.cut_images(x, p, out=out, strategy="native")
        try:
            F.cut_images(x, p, out=out, strategy="native")
        except ValueError as exc:
            assert "for " + what.rsplit(" for ", 1)[1] in str(exc)
        assert not out.any()  # checked before anything is written


@pytest.mark.parametrize("strategy", FORCED)
def test_every_forced_strategy_is_differentiable(strategy: str) -> None:
    # Only the masked kernel has a derivative: with an input that needs grad every strategy runs it.
    x = torch.rand(3, 2, 5, 4, requires_grad=True)
    p = cutmix.sample_cutmix(3, (5, 4), generator=torch.Generator().manual_seed(0))
    assert F._route(x, strategy, False, None) == "where"
    weights = torch.rand(3, 2, 5, 4)
    (F.cut_images(x, p, strategy=strategy) * weights).sum().backward()
    # d out[i] / d x: own pixels outside the box, and each partner's box pixels.
    expected = torch.zeros_like(x)
    inside = F.box_mask(p.boxes, (5, 4))
    expected += weights * ~inside
    expected.index_add_(0, p.perm, weights * inside)
    assert torch.equal(x.grad, expected)


@pytest.mark.parametrize("strategy", FORCED)
@given(case=cases())
def test_cropped_views_bitwise(strategy: str, case) -> None:
    # The same cases as a view into a bigger batch (rows not back to back, a storage offset).
    images, p = case
    n, c, h, w = images.shape
    big = torch.zeros(n, c, h + 1, w + 2, dtype=images.dtype)
    view = big[:, :, 1:, 1:-1]
    view.copy_(images)
    expected = reference_cut(images, p.perm, p.boxes)
    assert torch.equal(F.cut_images(view, p, strategy=strategy), expected)
    out_big = torch.full_like(big, 9)
    F.cut_images(view, p, out=out_big[:, :, :-1, 2:], strategy=strategy)
    assert torch.equal(out_big[:, :, :-1, 2:], expected)
    assert (out_big[:, :, -1:] == 9).all() and (out_big[..., :2] == 9).all()  # nothing outside


def test_inplace_cycle_with_overlapping_boxes() -> None:
    # A 3-cycle whose boxes all overlap: an in-place paste that overwrote before reading would
    # propagate one sample's pixels around the cycle.
    x = torch.arange(3 * 1 * 4 * 4, dtype=torch.float32).view(3, 1, 4, 4)
    p = MixParams(
        perm=torch.tensor([1, 2, 0]),
        lam=torch.full((3,), 0.25),
        boxes=torch.tensor([[0, 0, 2, 2], [1, 1, 3, 3], [0, 1, 2, 3]]),
        size=(4, 4),
    )
    for strategy in FORCED:
        work = x.clone()
        F.cut_images(work, p, inplace=True, strategy=strategy)
        assert torch.equal(work[0, 0, :2, :2], x[1, 0, :2, :2])
        assert torch.equal(work[1, 0, 1:3, 1:3], x[2, 0, 1:3, 1:3])
        assert torch.equal(work[2, 0, 1:3, 0:2], x[0, 0, 1:3, 0:2])


def test_sampled_params_all_strategies_agree() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(9, 3, 40, 33, generator=g)
    for mode in cutmix.params.MODES:
        p = cutmix.sample_cutmix(9, (40, 33), mode=mode, p=0.7, generator=g)
        results = [F.cut_images(x, p, strategy=s) for s in F.STRATEGIES]
        assert all(torch.equal(results[0], r) for r in results[1:])


def reference_targets(labels, perm, lam, classes, eps):
    onehot = torch.nn.functional.one_hot(labels, classes).float()
    t = torch.zeros(len(labels), classes)
    t.scatter_add_(1, labels.view(-1, 1), lam.view(-1, 1))
    t.scatter_add_(1, labels[perm].view(-1, 1), (1 - lam).view(-1, 1))
    assert torch.allclose(
        t, lam.view(-1, 1) * onehot + (1 - lam.view(-1, 1)) * onehot[perm], atol=1e-6
    )
    return t * (1.0 - eps) + eps / classes if eps else t


@given(
    n=st.integers(1, 9),
    classes=st.integers(1, 6),
    eps=st.sampled_from([0.0, 0.1, 0.37]),
    seed=st.integers(0, 2**16),
)
def test_mix_labels_bitwise_equals_two_scatter_formula(n, classes, eps, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    perm = torch.randint(0, n, (n,), generator=g)
    lam = torch.rand(n, generator=g)
    p = MixParams(perm=perm, lam=lam, boxes=None, size=None)
    expected = reference_targets(labels, perm, lam, classes, eps)
    # On CPU unsmoothed targets come from the C kernel where it builds; also without it, and into
    # a non-contiguous out= (which the C kernel leaves to PyTorch's scatters).
    for native in ("1", "0"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CUTMIX_NATIVE", native)
            got = F.mix_labels(labels, p, classes, label_smoothing=eps)
            assert got.dtype == torch.float32
            assert torch.equal(got, expected)
            assert torch.allclose(got.sum(1), torch.ones(n), atol=1e-5)
            strided = torch.full((classes, n), float("nan")).t()
            assert F.mix_labels(labels, p, classes, label_smoothing=eps, out=strided) is strided
            assert torch.equal(strided, expected)


@pytest.mark.skipif(not HAS_C_COMPILER, reason="the native kernel needs a C compiler")
def test_native_targets_refuse_ids_outside_the_batch() -> None:
    from cutmix import _native

    out = torch.zeros(3, 4)
    lam = torch.full((3,), 0.5)
    for labels, perm, what in (
        (torch.tensor([0, 1, 2]), torch.tensor([1, 3, 0]), "partner 3 and class id 1 for sample 1"),
        (torch.tensor([0, 4, 2]), torch.tensor([1, 2, 0]), "partner 2 and class id 4 for sample 1"),
        (
            torch.tensor([-1, 1, 2]),
            torch.tensor([1, 2, 0]),
            "partner 1 and class id -1 for sample 0",
        ),
    ):
        with pytest.raises(ValueError, match=r"params: expected partners in \[0, 3\) and labels"):
            _native.soft_targets(labels, perm, lam, out)
        try:
            _native.soft_targets(labels, perm, lam, out)
        except ValueError as exc:
            assert what in str(exc)
        assert not out.any()  # checked before anything is written


def _hard_case() -> tuple[torch.Tensor, MixParams]:
    """A 3-cycle with overlapping boxes, a sample read by two others, a self-partner, an empty box."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, 7, 5, generator=g)
    p = MixParams(
        perm=torch.tensor([1, 2, 0, 1, 4, 3]),
        lam=torch.ones(6),  # not used by the image kernels
        boxes=torch.tensor(
            [[0, 0, 3, 4], [1, 2, 5, 7], [0, 1, 2, 6], [2, 3, 5, 5], [0, 0, 5, 7], [1, 1, 1, 4]]
        ),
        size=(7, 5),
    )
    return x, p


def test_cutmix_strategy_option() -> None:
    x, _ = _hard_case()
    labels = torch.arange(6) % 3
    runs = {
        s: cutmix.CutMix(num_classes=3, strategy=s)(x, labels, torch.Generator().manual_seed(3))
        for s in FORCED
    }
    first = runs[FORCED[0]]
    assert all(torch.equal(r[0], first[0]) and torch.equal(r[1], first[1]) for r in runs.values())
    assert "strategy='loop'" in repr(cutmix.CutMix(num_classes=3, strategy="loop"))
    with pytest.raises(ValueError, match="strategy: expected one of 'auto'"):
        cutmix.CutMix(num_classes=3, strategy="fastest")


def test_non_contiguous_views_with_storage_offset() -> None:
    # The loop builds its views from strides and storage offsets: a cropped view of a bigger batch.
    g = torch.Generator().manual_seed(5)
    for dtype in (torch.float32, torch.uint8):
        big = torch.randint(0, 256, (7, 4, 12, 11), generator=g).to(dtype)
        x = big[1:, 1:, 2:, 1:-1]
        p = cutmix.sample_cutmix(6, (10, 9), p=0.8, generator=g)
        expected = reference_cut(x, p.perm, p.boxes)
        for strategy in FORCED:
            assert torch.equal(F.cut_images(x, p, strategy=strategy), expected), strategy
            work = big.clone()
            view = work[1:, 1:, 2:, 1:-1]
            F.cut_images(view, p, inplace=True, strategy=strategy)
            assert torch.equal(view, expected), strategy
            outside = torch.ones_like(big, dtype=torch.bool)
            outside[1:, 1:, 2:, 1:-1] = False
            assert torch.equal(work[outside], big[outside]), strategy  # nothing written outside


def test_special_float_bit_patterns_are_copied_exactly() -> None:
    # NaN payloads, signed zeros and infinities: the CPU bit-select must move raw bits, not values.
    specials = torch.tensor([float("nan"), -0.0, 0.0, float("inf"), -float("inf"), 1e-45, -1.5])
    g = torch.Generator().manual_seed(6)
    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        x = specials.to(dtype)[torch.randint(0, 7, (5, 2, 6, 7), generator=g)]
        raw = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
        x.view(raw)[0, 0, 0, :3] ^= torch.tensor([1, 2, 3], dtype=raw)  # NaN payloads / odd bits
        p = cutmix.sample_cutmix(5, (6, 7), generator=g)
        expected = reference_cut(x, p.perm, p.boxes).view(raw)
        for strategy in FORCED:
            assert torch.equal(F.cut_images(x, p, strategy=strategy).view(raw), expected)
            work = x.clone()
            F.cut_images(work, p, inplace=True, strategy=strategy)
            assert torch.equal(work.view(raw), expected)


# ----------------------------------------------------------------------------------------------
# Every kernel _route can return, called directly (including "where" on CPU, which no forced
# strategy reaches for ordinary layouts), and the routing table in _route's docstring.

KERNELS = [k for k in F._KERNELS if HAS_C_COMPILER or not k.startswith("c_")]


@pytest.mark.parametrize("kernel", KERNELS)
@given(case=cases())
def test_every_kernel_equals_the_reference_bitwise(kernel: str, case) -> None:
    images, p = case
    before = images.clone()
    expected = reference_cut(images, p.perm, p.boxes)
    run = F._KERNELS[kernel]
    if kernel != "c_paste":  # the in-place paste only writes in place
        assert torch.equal(run(images, p.perm, p.boxes, None, False), expected)
        out = torch.full_like(images, 7)
        assert run(images, p.perm, p.boxes, out, False).data_ptr() == out.data_ptr()
        assert torch.equal(out, expected)
        assert torch.equal(images, before)
    if kernel != "c_rows":
        work = images.clone()
        assert run(work, p.perm, p.boxes, None, True).data_ptr() == work.data_ptr()
        assert torch.equal(work, expected)


def routing_table() -> dict[int, tuple[str, str]]:
    """``{row: (strategy column, kernel)}`` parsed from the table in ``_route``'s docstring."""
    lines = (F._route.__doc__ or "").splitlines()
    rule = next(line for line in lines if line.strip().startswith("===="))
    # Column spans from the "====  ====" rule line of the reST table.
    spans, start = [], None
    for i, ch in enumerate(rule + " "):
        if ch == "=" and start is None:
            start = i
        elif ch != "=" and start is not None:
            spans.append((start, i))
            start = None
    rows: dict[int, tuple[str, str]] = {}
    for line in lines:
        cells = [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0] :].strip()]
        if cells[0].isdigit():
            rows[int(cells[0])] = (cells[1], cells[-1])
    return rows


def _odd(x: torch.Tensor) -> torch.Tensor:
    """Neither W nor C innermost."""
    return x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)


def _grid() -> list[tuple[int, str, torch.Tensor, str, bool, torch.Tensor | None, bool]]:
    """(table row, what, images, strategy, inplace, out, with the C kernels available)."""
    small = torch.zeros(2, 3, 32, 32)
    big = torch.zeros(2, 3, 224, 224)
    cl = small.contiguous(memory_format=torch.channels_last)
    meta = torch.empty(2, 3, 8, 8, device="meta")
    grad = torch.zeros(2, 3, 8, 8, requires_grad=True)
    u8 = torch.zeros(2, 3, 128, 128, dtype=torch.uint8)
    u8_small = torch.zeros(2, 3, 112, 112, dtype=torch.uint8)
    on, off = True, False
    grid = [
        (1, "grad, forced loop", grad, "loop", False, None, on),
        (1, "grad, auto", grad, "auto", False, None, on),
        (3, "meta, native", meta, "native", False, None, on),
        (3, "meta, loop", meta, "loop", False, None, on),
        (4, "meta, auto", meta, "auto", False, None, on),
        (4, "meta, masked", meta, "masked", True, None, on),
        (5, "masked", small, "masked", False, None, on),
        (5, "masked channels_last in place", cl, "masked", True, None, on),
        (6, "masked odd layout", _odd(small), "masked", False, None, on),
        (7, "loop", big, "loop", True, None, on),
        (7, "loop odd layout", _odd(small), "loop", False, None, on),
        (8, "native", big, "native", False, None, on),
        (8, "native out= channels_last, both", cl, "native", False, torch.empty_like(cl), on),
        (8, "native with CUTMIX_NATIVE=0: asked for, kept", big, "native", False, None, off),
        (9, "native in place", big, "native", True, None, on),
        (10, "native odd layout", _odd(small), "native", False, None, on),
        (10, "native out= in another layout", small, "native", False, torch.empty_like(cl), on),
        (11, "auto large out of place", big, "auto", False, None, on),
        (11, "auto large out=", big, "auto", False, torch.empty_like(big), on),
        (11, "auto without C, 224²", big, "auto", False, None, off),
        (
            11,
            "auto large out= in another layout",
            big,
            "auto",
            False,
            big.contiguous(memory_format=torch.channels_last),
            on,
        ),
        (11, "auto f32 3x148² (257 KiB)", torch.zeros(2, 3, 148, 148), "auto", False, None, on),
        (12, "auto f32 3x147² (253 KiB)", torch.zeros(2, 3, 147, 147), "auto", False, None, on),
        (
            12,
            "auto uint8 3x224² (147 KiB)",
            torch.zeros(2, 3, 224, 224, dtype=torch.uint8),
            "auto",
            False,
            None,
            on,
        ),
        (12, "auto small", small, "auto", False, None, on),
        (12, "auto uint8 3x128² (48 KiB)", u8, "auto", False, None, on),
        (13, "auto in place 32²", small, "auto", True, None, on),
        (
            13,
            "auto in place just under 192 KiB",
            torch.zeros(2, 3, 127, 128),
            "auto",
            True,
            None,
            on,
        ),
        (14, "auto in place 192 KiB", torch.zeros(2, 3, 128, 128), "auto", True, None, on),
        (14, "auto in place 224²", big, "auto", True, None, on),
        (14, "auto without C, f32 3x64²", torch.zeros(2, 3, 64, 64), "auto", False, None, off),
        (14, "auto without C, uint8 3x128²", u8, "auto", False, None, off),
        (14, "auto odd layout", _odd(small), "auto", False, None, on),
        (15, "auto out= in another layout", small, "auto", False, torch.empty_like(cl), on),
        (15, "auto without C, 32²", small, "auto", False, None, off),
        (15, "auto without C, f32 3x63x64", torch.zeros(2, 3, 63, 64), "auto", True, None, off),
        (15, "auto without C, uint8 3x112²", u8_small, "auto", False, None, off),
    ]
    return grid


@pytest.mark.parametrize("threads", [1, 2])
def test_route_follows_its_docstring_table(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    table = routing_table()
    assert sorted(table) == list(range(1, len(table) + 1)) and len(table) == 15
    grid = _grid()
    assert {row for row, *_ in grid} == set(table) - {2}  # row 2 (compiling) is tested below
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the choice does not depend on the thread count
    try:
        for row, what, x, strategy, inplace, out, with_c in grid:
            if with_c and not HAS_C_COMPILER and table[row][1].startswith("c_"):
                continue
            column, kernel = table[row]
            assert column == "any" or strategy in column.split(", "), (row, what)
            monkeypatch.setenv("CUTMIX_NATIVE", "1" if with_c else "0")
            if kernel == "error":
                with pytest.raises(
                    ValueError, match=f"strategy: expected '{strategy}' only on CPU"
                ):
                    F._route(x, strategy, inplace, out)
            else:
                assert F._route(x, strategy, inplace, out) == kernel, (row, what)
    finally:
        torch.set_num_threads(before)


def test_route_under_compile_is_where(monkeypatch: pytest.MonkeyPatch) -> None:
    assert routing_table()[2] == ("any", "where")
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    for strategy in F.STRATEGIES:
        assert F._route(torch.zeros(2, 3, 64, 64), strategy, True, None) == "where"


def test_route_refuses_unknown_strategies() -> None:
    with pytest.raises(ValueError, match="strategy: expected one of 'auto'"):
        F._route(torch.zeros(2, 3, 4, 4), "fastest", False, None)


@pytest.mark.parametrize("strategy", [*FORCED, "auto"])
def test_cpu_kernels_run_with_one_intra_op_thread(strategy: str, monkeypatch) -> None:
    # Under load a parallel op waits at a barrier for descheduled threads: every CPU kernel runs
    # single-threaded, and the caller's thread count comes back, also after an error.
    x = torch.rand(3, 2, 5, 4)
    p = cutmix.sample_cutmix(3, (5, 4), generator=torch.Generator().manual_seed(0))
    seen: list[int] = []
    kernels = dict(F._KERNELS)
    for name, fn in kernels.items():

        def spy(*args, fn=fn):
            seen.append(torch.get_num_threads())
            return fn(*args)

        monkeypatch.setitem(F._KERNELS, name, spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert torch.equal(F.cut_images(x, p, strategy=strategy), reference_cut(x, p.perm, p.boxes))
        assert seen == [1] and torch.get_num_threads() == 2

        def boom(*args):
            raise RuntimeError("kernel failed")

        monkeypatch.setitem(F._KERNELS, F._route(x, strategy, False, None), boom)
        with pytest.raises(RuntimeError, match="kernel failed"):
            F.cut_images(x, p, strategy=strategy)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_compiled_strategy_is_deprecated_and_runs_as_auto() -> None:
    x, p = _hard_case()
    expected = reference_cut(x, p.perm, p.boxes)
    with pytest.warns(DeprecationWarning, match="strategy='compiled' is deprecated"):
        assert torch.equal(F.cut_images(x, p, strategy="compiled"), expected)
    labels = torch.arange(6) % 3
    with pytest.warns(DeprecationWarning, match="compiled"):
        a = cutmix.CutMix(num_classes=3, strategy="compiled")(
            x, labels, torch.Generator().manual_seed(2)
        )
    b = cutmix.CutMix(num_classes=3)(x, labels, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert "compiled" not in F.STRATEGIES


def test_thread_count_survives_concurrent_calls() -> None:
    # _one_thread sets and restores the calling thread's count: Python threads cutting at the same
    # time leave every thread, and threads started afterwards, with the caller's setting.
    import threading

    x = torch.rand(8, 3, 16, 16)
    p = cutmix.sample_cutmix(8, (16, 16), generator=torch.Generator().manual_seed(0))
    expected = reference_cut(x, p.perm, p.boxes)
    wrong: list[str] = []

    def work() -> None:
        for strategy in FORCED * 10:
            if not torch.equal(F.cut_images(x, p, strategy=strategy), expected):
                wrong.append(strategy)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen: list[int] = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert not wrong and torch.get_num_threads() == 2 and seen == [2]
    finally:
        torch.set_num_threads(before)
