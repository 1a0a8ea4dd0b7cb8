"""Fuzz hand-built MixParams: every field's shape, dtype, device and values, in and out of range.

Every case, against every strategy, ``inplace=True``, ``out=``, and the label, mask and box entry
points, gives either a ValueError / TypeError whose message names ``params``, or the result of the
slow reference below: never a crash (a segfault kills this process, so it shows), a raw torch
error, or a changed input. Run with the C kernel (the default) and with ``CUTMIX_NATIVE=0``, which
``cutmix._native.available`` reads at call time.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cutmix import MixParams
from cutmix import functional as F

N, C, H, W = 3, 2, 5, 6
CLASSES = 4

INT_DTYPES = [torch.int64, torch.int32, torch.int16, torch.uint8]
BAD_DTYPES = [torch.bool, torch.float32, torch.complex64]
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16]


def _tensor(values, dtype, device):
    t = torch.tensor(values)
    if dtype.is_complex:
        t = t.to(torch.complex64)
    elif dtype == torch.bool:
        t = t != 0
    else:
        t = t.to(dtype) if (dtype.is_floating_point or t.min() >= 0 or dtype != torch.uint8) else t
        t = t.to(dtype)
    return t.to(device) if device == "meta" else t


devices = st.sampled_from(["cpu"] * 15 + ["meta"])
# A bad kind one draw in ~6 per field: about half the cases reach the kernels.
OK = ["ok"] * 12


@st.composite
def perms(draw):
    kind = draw(st.sampled_from([*OK, "range", "shape", "dtype", "list", "view", "view"]))
    n = N
    if kind == "view":  # a strided view of valid partners
        values = draw(st.lists(st.integers(0, n - 1), min_size=2 * n, max_size=2 * n))
        return torch.tensor(values)[::2]
    if kind == "shape":
        shape = draw(st.sampled_from([(N, 1), (0,), (N + 1,), (N - 1,), ()]))
        return torch.zeros(shape, dtype=torch.int64)
    if kind == "list":
        return [1, 2, 0]
    lo, hi = (0, n - 1) if kind != "range" else (-3, n + 3)
    values = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    dtype = draw(st.sampled_from(INT_DTYPES if kind != "dtype" else BAD_DTYPES))
    if dtype == torch.uint8:
        values = [v % 256 for v in values]
    return _tensor(values, dtype, draw(devices))


@st.composite
def lams(draw):
    kind = draw(st.sampled_from([*OK, "range", "shape", "dtype"]))
    if kind == "shape":
        shape = draw(st.sampled_from([(0,), (N - 1,), (N + 1,), (N, 1), ()]))
        return torch.ones(shape)
    if kind == "range":
        bad = st.sampled_from([2.0, -0.5, float("nan"), float("inf"), -float("inf"), 1.0 + 1e-6])
        values = draw(st.lists(st.one_of(bad, st.floats(0, 1)), min_size=N, max_size=N))
    else:
        values = draw(st.lists(st.floats(0, 1), min_size=N, max_size=N))
    dtype = draw(
        st.sampled_from(
            FLOAT_DTYPES if kind != "dtype" else [torch.int64, torch.bool, *BAD_DTYPES[2:]]
        )
    )
    return _tensor(values, dtype, draw(devices))


@st.composite
def box_tensors(draw):
    kind = draw(
        st.sampled_from([*OK, "none", "none", "range", "shape", "dtype", "expanded", "expanded"])
    )
    if kind == "none":
        return None
    if kind == "expanded":  # one box for every sample, stride 0 (as batch mode could give)
        x1, x2 = sorted(draw(st.lists(st.integers(0, W), min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(st.integers(0, H), min_size=2, max_size=2)))
        return torch.tensor([[x1, y1, x2, y2]]).expand(N, 4)
    if kind == "shape":
        shape = draw(st.sampled_from([(0, 4), (N, 3), (N + 1, 4), (N,), (N, 4, 1)]))
        return torch.zeros(shape, dtype=torch.int64)
    rows = []
    for _ in range(N):
        if kind == "range":
            rows.append(draw(st.lists(st.integers(-3, max(H, W) + 3), min_size=4, max_size=4)))
        else:
            x1, x2 = sorted(draw(st.lists(st.integers(0, W), min_size=2, max_size=2)))
            y1, y2 = sorted(draw(st.lists(st.integers(0, H), min_size=2, max_size=2)))
            rows.append([x1, y1, x2, y2])
    dtype = draw(st.sampled_from(INT_DTYPES[:2] if kind != "dtype" else BAD_DTYPES))
    return _tensor(rows, dtype, draw(devices))


sizes = st.sampled_from([*[(H, W)] * 12, None, None, (H + 1, W), (W, H), (0, W), "5x6", (H, W, 1)])


@st.composite
def blends(draw):
    kind = draw(st.sampled_from(["none", "none", "ok", "bad"]))
    if kind == "none":
        return None
    if kind == "ok":
        return torch.tensor(draw(st.lists(st.booleans(), min_size=N, max_size=N)))
    return draw(st.sampled_from([torch.ones(N), torch.ones(N + 1, dtype=torch.bool)]))


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, (ValueError, TypeError)) and "params" in str(exc)


# --- The slow reference ------------------------------------------------------------------------------


def ref_cut(x, p):
    out = x.clone()
    for i in range(N):
        x1, y1, x2, y2 = p.boxes[i].tolist()
        j = int(p.perm[i])
        out[i, ..., y1:y2, x1:x2] = x[j, ..., y1:y2, x1:x2]
    return out


def ref_mix(x, p):
    lam = p.lam.double().view(-1, 1, 1, 1)
    mixed = x.double() * lam + x[p.perm].double() * (1 - lam)
    if x.dtype == torch.uint8:
        mixed = mixed.round()
    return torch.where(lam == 1, x.double(), mixed)


def ref_apply(x, p):
    if p.boxes is None:
        return ref_mix(x, p)
    cut = ref_cut(x, p).double()
    if p.blend is None:
        return cut
    return torch.where(p.blend.view(-1, 1, 1, 1), ref_mix(x, p), cut)


def ref_labels(y, p):
    onehot = torch.nn.functional.one_hot(y, CLASSES).double()
    lam = p.lam.double().view(-1, 1)
    return onehot * lam + onehot[p.perm] * (1 - lam)


def _close(got, ref, dtype):
    tol = 1.0 if dtype == torch.uint8 else 2e-2  # float16 λ and uint8 rounding
    return got.shape == ref.shape and bool(((got.double() - ref).abs() <= tol).all())


# --- The fuzz test -------------------------------------------------------------------------------------


def _check_images_call(call, x, expected, inplace):
    before = x.clone()
    try:
        got = call()
    except Exception as exc:
        assert _refused(exc), f"{type(exc).__name__}: {exc}"
        assert torch.equal(x, before), "an input changed before the error"
        return
    assert expected is not None, "accepted params the reference refuses"
    assert _close(got, expected, x.dtype)
    if inplace:
        assert got.data_ptr() == x.data_ptr()
    else:
        assert torch.equal(x, before), "the input changed"


@pytest.mark.parametrize("native", ["1", "0"])
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    perm=perms(),
    lam=lams(),
    boxes=box_tensors(),
    size=sizes,
    blend=blends(),
    dtype=st.sampled_from([torch.float32, torch.uint8]),
    seed=st.integers(0, 2**16),
)
def test_hand_built_params_are_refused_or_exact(native, perm, lam, boxes, size, blend, dtype, seed):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUTMIX_NATIVE", native)
        _run_case(perm, lam, boxes, size, blend, dtype, seed)


def _run_case(perm, lam, boxes, size, blend, dtype, seed):
    try:
        p = MixParams(perm=perm, lam=lam, boxes=boxes, size=size, blend=blend)
    except Exception as exc:
        assert _refused(exc), f"{type(exc).__name__}: {exc}"
        event("refused when built")
        return
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(N, C, H, W, generator=g) * 255).to(dtype)
    y = torch.randint(0, CLASSES, (N,), generator=g)
    # What the reference accepts: CPU params with values in range, of this size for images.
    ok = (
        p.device.type == "cpu"
        and bool(((p.perm >= 0) & (p.perm < N)).all())
        and bool(((p.lam >= 0) & (p.lam <= 1)).all())
    )
    fits = ok and (p.size is None or p.size == (H, W))

    def boxes_inside(hw):
        b = p.boxes
        good = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
        if hw is not None:
            good &= (b[:, 2] <= hw[1]) & (b[:, 3] <= hw[0])
        return bool(good.all())

    box_ok = fits and p.boxes is not None and boxes_inside((H, W))
    # cut_images pastes every box (blend flags are apply_images' business); cut_masks refuses
    # params with blended samples (they need two maps).
    cut_ok = box_ok
    masks_ok = box_ok and p.blend is None
    apply_ok = fits and (p.boxes is None or box_ok)
    boxes_ok = ok and (p.boxes is None or boxes_inside(p.size))
    event(f"cut {'exact' if cut_ok else 'refused'}, apply {'exact' if apply_ok else 'refused'}")
    cut_ref = ref_cut(x, p) if cut_ok else None
    for strategy in F.STRATEGIES:
        _check_images_call(lambda s=strategy: F.cut_images(x, p, strategy=s), x, cut_ref, False)
        _check_images_call(
            lambda s=strategy: F.cut_images(x, p, strategy=s, out=torch.empty_like(x)),
            x,
            cut_ref,
            False,
        )
        xi = x.clone()
        _check_images_call(
            lambda s=strategy, xi=xi: F.cut_images(xi, p, strategy=s, inplace=True),
            xi,
            cut_ref,
            True,
        )
    apply_ref = ref_apply(x, p) if apply_ok else None
    _check_images_call(lambda: F.apply_images(x, p), x, apply_ref, False)
    xi = x.clone()
    _check_images_call(lambda: F.apply_images(xi, p, inplace=True), xi, apply_ref, True)
    mix_ref = ref_mix(x, p) if fits else None
    _check_images_call(lambda: F.mix_images(x, p, out=torch.empty_like(x)), x, mix_ref, False)

    y_before = y.clone()
    try:
        t = F.mix_labels(y, p, CLASSES)
    except Exception as exc:
        assert _refused(exc), f"{type(exc).__name__}: {exc}"
    else:
        assert ok and torch.allclose(t.double(), ref_labels(y, p), atol=1e-3)
    assert torch.equal(y, y_before)

    masks = torch.randint(0, CLASSES, (N, H, W), generator=g)
    try:
        m = F.cut_masks(masks, p)
    except Exception as exc:
        # A size mismatch names the masks ("masks: expected maps of the images' size ...").
        assert _refused(exc) or str(exc).startswith("masks: expected maps of the images' size")
    else:
        assert masks_ok and torch.equal(m, ref_cut(masks, p))

    boxes_in = [torch.tensor([[0.0, 0.0, 3.0, 2.0]]) for _ in range(N)]
    labels_in = [torch.tensor([i]) for i in range(N)]
    try:
        out_b, out_l = F.cut_boxes(boxes_in, labels_in, p)
    except Exception as exc:
        assert _refused(exc), f"{type(exc).__name__}: {exc}"
    else:
        assert boxes_ok and len(out_b) == len(out_l) == N
