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
from cutmix import functional as F
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
        assert F._pick_strategy(images, "auto", kw.get("inplace", False)) != "native"
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
    assert F._pick_strategy(x, strategy) == "masked"
    weights = torch.rand(3, 2, 5, 4)
    (F.cut_images(x, p, strategy=strategy) * weights).sum().backward()
    # d out[i] / d x: own pixels outside the box, and each partner's box pixels.
    expected = torch.zeros_like(x)
    inside = F.box_mask(p.boxes, (5, 4))
    expected += weights * ~inside
    expected.index_add_(0, p.perm, weights * inside)
    assert torch.equal(x.grad, expected)


@pytest.mark.skipif(not HAS_C_COMPILER, reason="the native kernel needs a C compiler")
def test_auto_picks_native_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(2, 1, 4, 4)
    assert F._pick_strategy(x, "native") == "native"
    assert F._pick_strategy(x, "auto") == "native"
    # In place the C kernel pastes saved boxes: samples under 192 KiB (one thread); the loop above.
    assert F._pick_strategy(x, "auto", inplace=True) == "native"
    assert F._pick_strategy(torch.rand(2, 3, 127, 128), "auto", inplace=True) == "native"
    assert F._pick_strategy(torch.rand(2, 3, 128, 128), "auto", inplace=True) == "loop"
    assert F._pick_strategy(torch.rand(2, 3, 224, 224), "auto", inplace=True) == "loop"
    assert F._pick_strategy(x.requires_grad_(), "auto") == "masked"
    with pytest.raises(ValueError, match="strategy: expected 'native' only on CPU tensors"):
        F._pick_strategy(torch.empty(2, 1, 4, 4, device="meta"), "native")
    assert F._pick_strategy(torch.empty(2, 1, 4, 4, device="meta"), "auto") == "masked"
    # With more intra-op threads PyTorch's parallel copies take samples of 192 KiB and more.
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert F._pick_strategy(torch.rand(2, 3, 224, 224), "auto") == "loop"
        assert F._pick_strategy(torch.rand(2, 3, 128, 128), "auto") == "loop"
        assert F._pick_strategy(torch.rand(2, 3, 127, 128), "auto") == "native"
        assert F._pick_strategy(torch.rand(2, 3, 64, 64), "auto") == "native"
        u8 = torch.zeros(2, 3, 224, 224, dtype=torch.uint8)
        assert F._pick_strategy(u8, "auto") == "native"
        assert F._pick_strategy(torch.zeros(2, 3, 512, 512, dtype=torch.uint8), "auto") == "loop"
        # In place with several threads: under 96 KiB.
        assert F._pick_strategy(torch.rand(2, 3, 80, 80), "auto", inplace=True) == "native"
        assert F._pick_strategy(torch.rand(2, 3, 96, 96), "auto", inplace=True) == "loop"
        assert not F._native_targets(torch.tensor([0, 1]), torch.ones(2), torch.empty(2, 3))
    finally:
        torch.set_num_threads(before)
    assert F._pick_strategy(torch.rand(2, 3, 224, 224), "auto") == "native"
    assert F._native_targets(torch.tensor([0, 1]), torch.ones(2), torch.empty(2, 3))
    assert not F._native_targets(torch.tensor([0, 1]), torch.ones(2), torch.empty(3, 2).t())
    for off in ("0", "false", "OFF"):
        monkeypatch.setenv("CUTMIX_NATIVE", off)
        assert not F._native_targets(torch.tensor([0, 1]), torch.ones(2), torch.empty(2, 3))
        assert F._pick_strategy(torch.rand(2, 1, 4, 4), "auto") == "masked"
        assert F._pick_strategy(torch.rand(2, 3, 224, 224), "auto") == "loop"
        assert F._pick_strategy(torch.rand(2, 1, 4, 4), "native") == "native"  # asked for: kept


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


def test_eager_choice_by_size() -> None:
    # What "auto" takes in place, and out of place without the C kernel.
    assert F._eager_cpu_strategy(torch.zeros(2, 3, 32, 32)) == "masked"
    assert F._eager_cpu_strategy(torch.zeros(2, 3, 224, 224)) == "loop"
    assert F._eager_cpu_strategy(torch.zeros(2, 3, 112, 112, dtype=torch.uint8)) == "masked"
    assert F._eager_cpu_strategy(torch.zeros(2, 3, 128, 128, dtype=torch.uint8)) == "loop"


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


# ----------------------------------------------------------------------------------------------
# The opt-in "compiled" strategy (torch.compile'd masked kernel). It is not in STRATEGIES, so the
# property tests above do not compile dozens of shapes; one small signature is compiled here (three
# compilations: out of place, out=, in place; ~10 s with a warm inductor cache, ~35 s cold).


def _has_cpp_compiler() -> bool:
    import shutil

    return any(shutil.which(c) for c in ("g++", "clang++", "c++"))


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


@pytest.mark.skipif(not _has_cpp_compiler(), reason="inductor on CPU needs a C++ compiler")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compiled_strategy_is_bitwise_equal_to_the_reference() -> None:
    x, p = _hard_case()
    before = x.clone()
    expected = reference_cut(x, p.perm, p.boxes)
    got = F.cut_images(x, p, strategy="compiled")
    assert torch.equal(got, expected) and torch.equal(x, before)
    out = torch.full_like(x, 7)
    assert F.cut_images(x, p, out=out, strategy="compiled").data_ptr() == out.data_ptr()
    assert torch.equal(out, expected) and torch.equal(x, before)
    work = x.clone()
    assert F.cut_images(work, p, inplace=True, strategy="compiled").data_ptr() == work.data_ptr()
    assert torch.equal(work, expected)
    # New params of the same shapes reuse the compiled kernel; CutMix takes the strategy through.
    q = cutmix.sample_cutmix(6, (7, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(F.cut_images(x, q, strategy="compiled"), reference_cut(x, q.perm, q.boxes))
    labels = torch.arange(6) % 3
    a = cutmix.CutMix(num_classes=3, strategy="compiled")(
        x, labels, torch.Generator().manual_seed(2)
    )
    b = cutmix.CutMix(num_classes=3)(x, labels, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_auto_never_picks_compiled_and_grad_falls_back() -> None:
    for shape in [(2, 3, 8, 8), (2, 3, 32, 32), (2, 3, 224, 224)]:
        assert F._pick_strategy(torch.zeros(shape), "auto") in ("loop", "masked", "native")
    leaf = torch.zeros(2, 3, 8, 8, requires_grad=True)
    assert F._pick_strategy(leaf, "compiled") == "masked"
    assert F._pick_strategy(torch.zeros(2, 3, 8, 8), "compiled") == "compiled"
    assert "compiled" not in F.STRATEGIES and "compiled" in F.OPT_IN_STRATEGIES


def test_compile_failure_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn, **kw):
        def run(*args):
            raise RuntimeError("no C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(F, "_COMPILED", {})
    x, p = _hard_case()
    with pytest.raises(RuntimeError, match=r"strategy: expected 'compiled' to compile.*no C\+\+"):
        F.cut_images(x[:, :1], p, strategy="compiled")
    assert F._COMPILED == {}  # a failed compilation is not cached


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
