"""cutmix.integrations.timm against the installed timm: same arguments, same decisions, same output."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

timm_mixup = pytest.importorskip("timm.data.mixup")
from cutmix.integrations.timm import FastCollateMixup, Mixup  # noqa: E402

CONFIGS = [
    {"mixup_alpha": 0.8, "cutmix_alpha": 0.0},
    {"mixup_alpha": 0.0, "cutmix_alpha": 1.0},
    {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "switch_prob": 0.5, "prob": 0.7},
    {"mixup_alpha": 0.0, "cutmix_alpha": 1.0, "correct_lam": False},
    {"mixup_alpha": 0.0, "cutmix_alpha": 0.3, "cutmix_minmax": (0.2, 0.8)},
    {"mixup_alpha": 0.5, "cutmix_alpha": 1.0, "label_smoothing": 0.0},
]


def _kw(cfg: dict, mode: str, **extra: object) -> dict:
    return {"num_classes": 7, "mode": mode, **cfg, **extra}


def test_signature_and_defaults_equal_timms() -> None:
    for ours, theirs in (
        (Mixup, timm_mixup.Mixup),
        (FastCollateMixup, timm_mixup.FastCollateMixup),
    ):
        want = inspect.signature(theirs.__init__).parameters
        got = inspect.signature(ours.__init__).parameters
        names = [n for n, p in got.items() if p.kind != p.KEYWORD_ONLY]
        assert names == list(want)  # same names, same order (positional calls work too)
        for name, param in want.items():
            assert got[name].default == param.default, name
    assert issubclass(Mixup, timm_mixup.Mixup)
    assert issubclass(FastCollateMixup, timm_mixup.FastCollateMixup)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_same_decision_same_images_and_targets(cfg: dict, mode: str) -> None:
    x = torch.rand(6, 3, 9, 11)
    y = torch.tensor([0, 3, 6, 1, 1, 5])
    for seed in range(4):
        np.random.seed(seed)
        want_x, want_t = timm_mixup.Mixup(**_kw(cfg, mode))(x.clone(), y)
        np.random.seed(seed)
        x_in = x.clone()
        got_x, got_t = Mixup(**_kw(cfg, mode))(x_in, y)
        assert torch.equal(x_in, x)  # the caller's tensor is untouched
        assert torch.equal(got_t, want_t), (seed, cfg, mode)
        # Boxes are bitwise; MixUp blends agree to float rounding (λ and 1 - λ are rounded in a
        # different order).
        torch.testing.assert_close(got_x, want_x, atol=1e-6, rtol=0)
        if cfg["mixup_alpha"] == 0.0:
            assert torch.equal(got_x, want_x)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_rng_streams_stay_in_step(mode: str) -> None:
    cfg = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "prob": 0.6}
    x, y = torch.rand(8, 3, 8, 8), torch.arange(8) % 7
    np.random.seed(3)
    timm_mixup.Mixup(**_kw(cfg, mode))(x.clone(), y)
    after_timm = np.random.rand()
    np.random.seed(3)
    Mixup(**_kw(cfg, mode))(x, y)
    assert np.random.rand() == after_timm


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_mixing_off_targets_equal_timm_mixup_target(smoothing: float) -> None:
    y = torch.tensor([2, 0, 6, 6, 1])
    for mode in ("batch", "pair", "elem"):
        mix = Mixup(cutmix_alpha=1.0, label_smoothing=smoothing, num_classes=7, mode=mode)
        mix.mixup_enabled = False
        x = torch.rand(5, 3, 4, 4)
        got_x, got_t = mix(x, y)
        assert torch.equal(got_x, x)
        want = timm_mixup.mixup_target(y, 7, 1.0, smoothing)
        assert torch.equal(got_t, want)
        assert torch.equal(mix.last_lam, torch.ones(5))


def test_multi_label_matches_timm_and_smooths_toward_half() -> None:
    y = (torch.rand(6, 5) < 0.4).float()
    x = torch.rand(6, 3, 8, 8)
    kw = {"mixup_alpha": 0.0, "cutmix_alpha": 1.0, "num_classes": 5, "multi_label": True}
    np.random.seed(1)
    want_x, want_t = timm_mixup.Mixup(**kw, label_smoothing=0.2)(x.clone(), y)
    np.random.seed(1)
    got_x, got_t = Mixup(**kw, label_smoothing=0.2)(x, y)
    assert torch.equal(got_t, want_t) and torch.equal(got_x, want_x)
    off = Mixup(**kw, label_smoothing=0.2)
    off.mixup_enabled = False
    _, t = off(x, y)
    torch.testing.assert_close(t, torch.where(y > 0, torch.tensor(0.9), torch.tensor(0.1)))


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_cutmix_minmax_boxes_within_timm_side_bounds(mode: str) -> None:
    h, w, lo, hi = 20, 30, 0.25, 0.6
    mix = Mixup(mixup_alpha=0.0, cutmix_minmax=(lo, hi), num_classes=3, mode=mode,
                label_smoothing=0.0)  # fmt: skip
    assert mix.cutmix_alpha == 1.0
    np.random.seed(0)
    n = 6
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, h, w).contiguous()
    for _ in range(30):
        out, _ = mix(x, torch.arange(n) % 3)
        for i in range(n):
            pasted = out[i, 0] != i
            if not pasted.any():
                continue
            rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
            ch, cw = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
            # timm's bounds: each side in [int(S·lo), int(S·hi)), the box inside the image.
            assert int(h * lo) <= ch < int(h * hi) and int(w * lo) <= cw < int(w * hi)
            assert int(pasted.sum()) == ch * cw  # one rectangle, not clipped
            assert mix.last_lam[i] == pytest.approx(1 - ch * cw / (h * w))


def test_correct_lam_false_keeps_the_drawn_lambda() -> None:
    x = torch.zeros(2, 1, 10, 10)
    x[1] = 1
    np.random.seed(5)
    np.random.rand()  # batch mode: the coin for prob, then the Beta draw
    timm_lam = float(np.random.beta(1.0, 1.0))
    np.random.seed(5)
    out, t = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, correct_lam=False, num_classes=2,
                   label_smoothing=0.0)(x, torch.tensor([0, 1]))  # fmt: skip
    assert t[0, 0].item() == pytest.approx(timm_lam, abs=1e-6)
    # Not (necessarily) the pixel fraction: that is what correct_lam=True gives.
    frac = 1 - out[0].mean().item()
    np.random.seed(5)
    _, t2 = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=2, label_smoothing=0.0)(
        x, torch.tensor([0, 1])
    )
    assert t2[0, 0].item() == pytest.approx(frac, abs=1e-6)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("n", [1, 3, 5])
def test_odd_batches_work(mode: str, n: int) -> None:
    mix = Mixup(mixup_alpha=0.5, cutmix_alpha=1.0, num_classes=4, mode=mode)
    x, y = torch.rand(n, 3, 6, 6), torch.arange(n) % 4
    out, t = mix(x, y)
    assert out.shape == x.shape and t.shape == (n, 4)
    assert torch.allclose(t.sum(1), torch.ones(n))
    mid = n // 2  # its own partner: left as it is
    assert torch.equal(out[mid], x[mid])


def test_inplace_writes_into_the_callers_tensor() -> None:
    x = torch.rand(4, 3, 8, 8)
    before = x.clone()
    mix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=4, inplace=True)
    np.random.seed(0)
    out, _ = mix(x, torch.arange(4))
    assert out.data_ptr() == x.data_ptr() and not torch.equal(x, before)


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="mode"):
        Mixup(mode="sample")
    with pytest.raises(ValueError, match="cutmix_minmax"):
        Mixup(cutmix_minmax=(0.8, 0.2))
    with pytest.raises(ValueError, match="mixup_alpha"):
        Mixup(mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ValueError, match="prob"):
        Mixup(prob=1.5)
    with pytest.raises(ValueError, match="target"):
        Mixup(num_classes=3)(torch.rand(2, 3, 4, 4), torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="x"):
        Mixup(num_classes=3)(torch.rand(3, 4, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="x"):
        Mixup(num_classes=3)(torch.rand(0, 3, 4, 4), torch.zeros(0, dtype=torch.long))


def _samples(n: int, numpy: bool) -> list:
    g = torch.Generator().manual_seed(n)
    out = []
    for k in range(n):
        img = torch.randint(0, 256, (3, 10, 12), dtype=torch.uint8, generator=g)
        out.append((img.numpy() if numpy else img, k % 5))
    return out


@pytest.mark.parametrize("numpy", [True, False])
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("cfg", CONFIGS[:5])
def test_fast_collate_same_decision_as_timm(cfg: dict, mode: str, numpy: bool) -> None:
    for seed in range(3):
        np.random.seed(seed)
        want_x, want_t = timm_mixup.FastCollateMixup(**_kw(cfg, mode, num_classes=5))(
            _samples(6, numpy)
        )
        np.random.seed(seed)
        batch = _samples(6, numpy)
        got_x, got_t = FastCollateMixup(**_kw(cfg, mode, num_classes=5))(batch)
        assert got_x.dtype == torch.uint8 and got_t.dtype == torch.float32
        assert torch.equal(got_t, want_t)
        # uint8 blends may round one step apart at an exact .5 (λ rounding order).
        assert (got_x.int() - want_x.int()).abs().max() <= 1
        if cfg["mixup_alpha"] == 0.0:
            assert torch.equal(got_x, want_x)
        for k, (img, _) in enumerate(batch):  # the samples are not modified
            assert torch.equal(torch.as_tensor(img), torch.as_tensor(_samples(6, numpy)[k][0]))


def test_fast_collate_odd_batch_and_errors() -> None:
    x, t = FastCollateMixup(cutmix_alpha=1.0, num_classes=5)(_samples(5, True))
    assert x.shape == (5, 3, 10, 12) and t.shape == (5, 5)
    with pytest.raises(TypeError, match=r"batch\[0\]\[0\]"):
        FastCollateMixup(num_classes=5)([(np.zeros((3, 4, 4), np.float32), 0)] * 2)
    with pytest.raises(ValueError, match="batch"):
        FastCollateMixup(num_classes=5)([])


def test_prefetch_loader_switch_reaches_the_collate() -> None:
    from timm.data.loader import PrefetchLoader

    data = [(np.full((3, 8, 8), k * 20, np.uint8), k % 5) for k in range(8)]
    collate = FastCollateMixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=5,
                               label_smoothing=0.0)  # fmt: skip
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=collate)
    prefetch = PrefetchLoader(loader, device=torch.device("cpu"))
    assert prefetch.mixup_enabled is True
    prefetch.mixup_enabled = False  # what timm's train.py does at --mixup-off-epoch
    assert collate.mixup_enabled is False
    for x, t in prefetch:
        assert x.dtype == torch.float32 and t.shape == (4, 5)
        assert set(t.flatten().tolist()) <= {0.0, 1.0}  # hard one-hot rows: nothing mixed
