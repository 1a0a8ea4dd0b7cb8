"""The training loop: exact resume, augmentation, schedule, checkpoints, mixing in workers, DDP."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

from cutmix.train.config import TrainConfig  # noqa: E402
from cutmix.train.errors import UsageError  # noqa: E402
from cutmix.train.loop import (  # noqa: E402
    _batches,
    augment,
    load_checkpoint,
    lr_at,
    train,
)
from cutmix.train.models import build_model  # noqa: E402

SMALL = {"limit_per_class": 6, "val_fraction": 0.5, "quiet": True, "batch_size": 8}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        {"mix": "cutmix", "flip": True, "crop_padding": 2},
        {"mix": "randommix", "mix_in": "workers", "workers": 2, "mix_off_epochs": 1},
    ],
    ids=["loop", "workers"],
)
def test_resume_continues_bitwise(tmp_path: Path, extra: dict) -> None:
    cfg = TrainConfig(epochs=3, **SMALL, **extra)
    train(replace(cfg, out=str(tmp_path / "full")))
    part = replace(cfg, out=str(tmp_path / "part"), stop_after=1)
    r1 = train(part)
    assert not r1["completed"] and len(r1["history"]) == 1
    r2 = train(
        replace(part, stop_after=None), resume=load_checkpoint(tmp_path / "part" / "last.pt")
    )
    assert r2["completed"] and [h["epoch"] for h in r2["history"]] == [1, 2, 3]
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    full = [json.loads(s) for s in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    resumed = [
        json.loads(s) for s in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["val_acc"] for r in full] == [r["val_acc"] for r in resumed]
    assert [r["train_loss"] for r in full] == [r["train_loss"] for r in resumed]


def test_checkpoint_is_plain_tensors_and_values(tmp_path: Path) -> None:
    train(TrainConfig(epochs=1, out=str(tmp_path), **SMALL))
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["model_name"] == "tutorial" and state["epoch"] == 1 and state["num_classes"] == 10
    net = build_model("tutorial", 10, 1, 32)
    net.load_state_dict(state["model"])
    assert not list(tmp_path.glob(".last.pt.tmp*"))  # written atomically, nothing left over


@pytest.mark.slow
def test_mix_off_epochs_and_seed_change_the_run(tmp_path: Path) -> None:
    r = train(
        TrainConfig(
            epochs=3, mix="cutmix", p=1.0, mix_off_epochs=2, out=str(tmp_path / "a"), **SMALL
        )
    )
    assert [h["mixing"] for h in r["history"]] == [True, False, False]
    r = train(TrainConfig(epochs=3, eval_every=2, out=str(tmp_path / "e"), **SMALL))
    assert [h["val_acc"] is None for h in r["history"]] == [True, False, False]
    r2 = train(TrainConfig(epochs=1, seed=1, out=str(tmp_path / "b"), **SMALL))
    r3 = train(TrainConfig(epochs=1, seed=0, out=str(tmp_path / "c"), **SMALL))
    assert r2["history"][0]["train_loss"] != r3["history"][0]["train_loss"]


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(epochs=10, lr=0.1, warmup_epochs=2)
    lrs = [lr_at(s, cfg, 5) for s in range(50)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a <= b for a, b in itertools.pairwise(lrs[:10]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[10] == pytest.approx(0.1) and lrs[49] == pytest.approx(
        0.1 * 0.5 * (1 + math.cos(math.pi * 39 / 40))
    )


def test_augment_matches_a_per_sample_reference() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    out = augment(x, True, 2, g)
    g = torch.Generator().manual_seed(3)
    flip = torch.rand(6, generator=g) < 0.5
    oy = torch.randint(0, 5, (6,), generator=g)
    ox = torch.randint(0, 5, (6,), generator=g)
    for i in range(6):
        xi = x[i].flip(-1) if flip[i] else x[i]
        padded = torch.nn.functional.pad(xi, (2, 2, 2, 2))
        assert torch.equal(out[i], padded[:, oy[i] : oy[i] + 5, ox[i] : ox[i] + 7])
    assert out.dtype == torch.uint8 and torch.equal(x, x.clone())  # input untouched


def test_ranks_get_disjoint_shards_and_distinct_mix_streams() -> None:
    from cutmix.train.data import Data

    data = Data(torch.zeros(11, 1, 8, 8, dtype=torch.uint8), torch.arange(11) % 2)
    cfg = TrainConfig(mix="cutmix", batch_size=4)
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([order, order[:1]])
    shards = [padded[r::2] for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == sorted([*range(11), int(order[0])])
    gens = [
        next(iter(_batches(cfg, data, shards[r], object(), 0, r, torch.device("cpu"))))[2]
        for r in range(2)
    ]
    assert not torch.equal(torch.rand(8, generator=gens[0]), torch.rand(8, generator=gens[1]))


def test_incompatible_options_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="mix-off-epochs"):
        train(TrainConfig(epochs=2, mix_off_epochs=3, out=str(tmp_path)))
    with pytest.raises(UsageError, match="model"):
        train(TrainConfig(epochs=1, model="no_such_net", out=str(tmp_path), **SMALL))
    with pytest.raises(UsageError, match="alpha"):
        train(TrainConfig(epochs=1, mix="cutmix", alpha=-1.0, out=str(tmp_path), **SMALL))


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (46, 3, 16, 16), dtype=np.uint8)
    y = np.arange(46) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:9], y_test=y[:9])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUTMIX_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "cutmix", "train", "--data", str(tmp_path / "d.npz"), "--epochs", "2",
        "--batch-size", "8", "--mix", "cutmix", "--out", str(tmp_path / "run"), "--quiet",
        "--image-size", "16",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # rank 0 alone writes
    assert all(r["samples"] == 46 for r in rows)  # 2 ranks x ceil(46 / 2)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["final"]["val_count"] == 9
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 2 * math.ceil(23 / 8)


@pytest.mark.parametrize("name", ["tutorial", "resnet8", "resnet20", "preact_resnet18"])
def test_models_give_one_logit_per_class(name: str) -> None:
    net = build_model(name, num_classes=7, in_channels=1, image_size=16)
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 7)


def test_timm_names_and_unknown_names() -> None:
    timm = pytest.importorskip("timm")
    assert timm.is_model("resnet10t")
    net = build_model("timm:resnet10t", num_classes=3, in_channels=1, image_size=32)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    with pytest.raises(UsageError, match="model: expected one of"):
        build_model("definitely_not_a_model", 3)


@pytest.mark.slow
def test_amp_and_channels_last_on_cpu(tmp_path: Path) -> None:
    r = train(
        TrainConfig(
            epochs=1, amp=True, channels_last=True, mix="cutmix", out=str(tmp_path), **SMALL
        )
    )
    assert r["amp"] and r["channels_last"] and math.isfinite(r["history"][0]["train_loss"])


@pytest.mark.slow
def test_evaluation_cadence_does_not_change_training(tmp_path: Path) -> None:
    a = train(TrainConfig(epochs=3, eval_every=1, mix="cutmix", out=str(tmp_path / "a"), **SMALL))
    b = train(TrainConfig(epochs=3, eval_every=3, mix="cutmix", out=str(tmp_path / "b"), **SMALL))
    assert a["final"] == b["final"]
    wa, wb = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
