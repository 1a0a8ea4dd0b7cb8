"""Imbalanced data (issue 12): long-tailed training sets, partner weights from class counts,
balanced / per-class / group accuracy, ``evaluate --split all``, and the tool fixes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cutmix.cli import main  # noqa: E402
from cutmix.train.config import TrainConfig  # noqa: E402
from cutmix.train.data import Data  # noqa: E402
from cutmix.train.errors import UsageError  # noqa: E402
from cutmix.train.evaluate_all import match_classes  # noqa: E402
from cutmix.train.imbalance import (  # noqa: E402
    long_tail_counts,
    long_tail_indices,
    parse_arm,
    parse_partner_weights,
)
from cutmix.train.loop import build_mix, evaluate_model, load_splits  # noqa: E402
from cutmix.train.metrics import (  # noqa: E402
    balanced_accuracy,
    eval_extras,
    group_accuracy,
    is_imbalanced,
    shot_groups,
)
from cutmix.train.models import build_model, check_model_fits, parse_model_kwargs  # noqa: E402
from cutmix.train.report import ci_caveat, format_table, summarize  # noqa: E402
from helpers import run_cli  # noqa: E402

SMALL = ["--limit-per-class", "6", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")
run = run_cli  # (argv, capsys) -> (exit code, stdout, stderr)


def id_npz(path: Path, per_class: int, num_classes: int) -> Path:
    """Arrays whose images carry their own index in two pixels (to check which ones are kept)."""
    n = per_class * num_classes
    x = np.zeros((n, 1, 8, 8), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(n) % 256
    x[:, 0, 0, 1] = np.arange(n) // 256
    y = np.repeat(np.arange(num_classes), per_class)
    np.savez(path, x=x, y=y)
    return path


def ids(d: Data) -> set[int]:
    return set((d.x[:, 0, 0, 0].long() + 256 * d.x[:, 0, 0, 1].long()).tolist())


# ------------------------------------------------------------------------------ long-tail profile
def test_long_tail_profile_exact() -> None:
    # CIFAR-10-LT with R = 100 (Cao et al. 2019), and small hand-computed cases.
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(1000, 4, 100) == [1000, 215, 46, 10]  # 1000·100^(-1/3) = 215.44
    assert long_tail_counts(10, 3, 4) == [10, 5, 2]  # 10·4^(-1/2) = 5 exactly, 10/4 = 2.5
    assert long_tail_counts(7, 2, 1) == [7, 7]
    with pytest.raises(UsageError, match="imbalance"):
        long_tail_counts(10, 3, 0.5)


def test_long_tail_indices_deterministic_and_per_class() -> None:
    y = np.repeat(np.arange(3), 10)
    idx, kept = long_tail_indices(y, 3, 4.0, seed=0)
    assert kept == [10, 5, 2] and np.bincount(y[idx]).tolist() == [10, 5, 2]
    again, _ = long_tail_indices(y, 3, 4.0, seed=0)
    assert np.array_equal(idx, again)
    other, _ = long_tail_indices(y, 3, 4.0, seed=1)
    assert not np.array_equal(idx, other)
    # A class's draw does not depend on the other classes: with a larger n_max (more images of
    # class 0 only) class 2 keeps 4 instead of 2, and the 2 kept before are among them.
    y2 = np.concatenate([y, np.full(7, 0)])
    idx2, kept2 = long_tail_indices(y2, 3, 4.0, seed=0)
    assert kept2 == [17, 8, 4]
    assert set(idx[y[idx] == 2].tolist()) < set(idx2[y2[idx2] == 2].tolist())
    # R larger than n_max: every class still keeps one image.
    assert long_tail_indices(y, 3, 1000.0, seed=0)[1] == [10, 1, 1]


def test_validation_split_balanced_and_disjoint(tmp_path: Path) -> None:
    path = id_npz(tmp_path / "ids.npz", per_class=20, num_classes=4)
    base = TrainConfig(data=str(path), val_fraction=0.25, image_size=8)
    plain = load_splits(base)
    lt = load_splits(TrainConfig(data=str(path), val_fraction=0.25, image_size=8, imbalance=8.0))
    # The validation split is taken before thinning: identical to the balanced run's, balanced.
    assert torch.equal(lt.val.x, plain.val.x) and torch.equal(lt.val.y, plain.val.y)
    assert np.bincount(lt.val.y.numpy()).tolist() == [5, 5, 5, 5]
    assert ids(lt.train).isdisjoint(ids(lt.val)) and ids(lt.train) <= ids(plain.train)
    assert lt.info["train_class_counts"] == long_tail_counts(15, 4, 8.0) == [15, 7, 3, 1]
    assert np.bincount(lt.train.y.numpy()).tolist() == [15, 7, 3, 1]
    # The same images for another arm / seed (the kept set depends on the split seed only).
    lt2 = load_splits(
        TrainConfig(
            data=str(path), val_fraction=0.25, image_size=8, imbalance=8.0, seed=5, mix="none"
        )
    )
    assert ids(lt2.train) == ids(lt.train)


# -------------------------------------------------------------------------------- partner weights
def test_partner_weights_come_from_the_training_counts() -> None:
    counts = [400, 100, 4]
    cfg = TrainConfig(mix="cutmix", partner_weights="inverse_frequency")
    w = build_mix(cfg, 3, counts).partner_weights
    assert torch.allclose(w, torch.tensor([1 / 400, 1 / 100, 1 / 4]))
    w = build_mix(
        TrainConfig(mix="cutmix", partner_weights="sqrt_inverse"), 3, counts
    ).partner_weights
    assert torch.allclose(w, torch.tensor([1 / 20, 1 / 10, 1 / 2]))
    w = build_mix(TrainConfig(mix="mixup", partner_weights="2"), 3, counts).partner_weights
    assert torch.allclose(w, torch.tensor([400.0, 100.0, 4.0]) ** -2)
    assert build_mix(TrainConfig(mix="cutmix"), 3, counts).partner_weights is None
    assert parse_partner_weights("none") is None
    for bad in ("inverse", "-1", "nan"):
        with pytest.raises(UsageError, match="partner-weights"):
            parse_partner_weights(bad)
    with pytest.raises(UsageError, match="pairs are not weighted"):
        TrainConfig(mix="cutmix", mode="pair", partner_weights="inverse_frequency").validate()


def test_arm_syntax() -> None:
    mixes = ("none", "cutmix", "mixup")
    assert parse_arm("cutmix+inverse_frequency", "none", mixes) == ("cutmix", "inverse_frequency")
    assert parse_arm("cutmix", "sqrt_inverse", mixes) == ("cutmix", "sqrt_inverse")
    assert parse_arm("none", "sqrt_inverse", mixes) == ("none", "none")
    for bad in ("none+inverse_frequency", "cutmix+bogus", "cutmx"):
        with pytest.raises(UsageError, match=r"arms|partner-weights"):
            parse_arm(bad, "none", mixes)


def test_training_uses_count_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cutmix.train.loop as loop

    seen: list[object] = []
    real = loop.build_mix

    def spy(cfg, num_classes, class_counts=None):  # type: ignore[no-untyped-def]
        m = real(cfg, num_classes, class_counts)
        seen.append((class_counts, m.partner_weights))
        return m

    monkeypatch.setattr(loop, "build_mix", spy)
    out = tmp_path / "run"
    argv = [
        "train",
        *SMALL,
        "--epochs",
        "1",
        "--imbalance",
        "3",
        "--partner-weights",
        "inverse_frequency",
    ]
    code, stdout, err = run([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    assert "balanced accuracy" in stdout and "few-shot" in stdout
    assert "training class counts [3, 2, 2, 2, 1, 1, 1, 1, 1, 1]" in stdout
    counts, w = seen[0]
    assert counts == [3, 2, 2, 2, 1, 1, 1, 1, 1, 1]  # floor(3 · 3^(-c/9))
    assert torch.allclose(w, 1.0 / torch.tensor(counts, dtype=torch.float32))
    assert json.loads((out / "config.json").read_text())["train_class_counts"] == counts
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_class_counts"] == counts and summary["imbalance"] == 3.0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val_balanced_acc", "val_per_class", "val_many", "val_medium", "val_few"} <= set(row)
    assert row["val_few"] == pytest.approx(np.mean(row["val_per_class"]))  # all classes < 20


# ------------------------------------------------------------------------------------- metrics
def test_balanced_and_group_accuracy_by_hand() -> None:
    per_class = [0.9, 0.5, 0.2, 0.0]
    train = [150, 100, 20, 19]
    assert shot_groups(train) == {"many": [0], "medium": [1, 2], "few": [3]}
    g = group_accuracy(per_class, train)
    assert g["many"] == pytest.approx(0.9) and g["medium"] == pytest.approx(0.35) and g["few"] == 0
    assert balanced_accuracy(per_class, [10, 10, 10, 10]) == pytest.approx(0.4)
    assert balanced_accuracy(per_class, [10, 10, 10, 0]) == pytest.approx(1.6 / 3)
    assert group_accuracy([0.5], [500])["few"] is None
    assert math.isnan(balanced_accuracy([], []))


class _Always(torch.nn.Module):
    def __init__(self, cls: int, n: int) -> None:
        super().__init__()
        self.cls, self.n = cls, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.n)
        out[:, self.cls] = 1.0
        return out


def test_evaluate_model_balanced_accuracy_hand_computed() -> None:
    # 6 images of class 0, 2 of class 1, 2 of class 2; the model always answers class 0.
    y = torch.tensor([0] * 6 + [1] * 2 + [2] * 2)
    d = Data(torch.zeros(10, 1, 4, 4, dtype=torch.uint8), y)
    zero, one = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    ev = evaluate_model(_Always(0, 3), d, zero, one, 3, torch.device("cpu"))
    assert ev["acc"] == pytest.approx(0.6) and ev["class_count"] == [6, 2, 2]
    extra = eval_extras(ev["per_class"], ev["class_count"], [200, 50, 5], True)
    assert extra["val_balanced_acc"] == pytest.approx(1 / 3)
    assert (extra["val_many"], extra["val_medium"], extra["val_few"]) == (1.0, 0.0, 0.0)


def test_compare_statistics_use_balanced_accuracy_and_ci_caveat() -> None:
    def res(seed: int, acc: float, bal: float) -> dict:
        return {
            "config": {"seed": seed},
            "final": {
                "val_acc": acc,
                "val_top5": 1.0,
                "val_loss": 1.0,
                "val_balanced_acc": bal,
                "val_per_class": [bal, bal],
            },
            "history": [{"val_acc": acc}],
            "wall_s": 1.0,
            "cpu_s": 1.0,
        }

    results = {
        "none": [res(0, 0.8, 0.5), res(1, 0.8, 0.6)],
        "cutmix": [res(0, 0.7, 0.7), res(1, 0.7, 0.8)],
    }
    s = summarize(results, ["none", "cutmix"], "val_balanced_acc")
    assert s["differences"]["cutmix"]["diff"] == pytest.approx(0.2)  # balanced, not plain (−0.1)
    assert s["differences"]["cutmix"]["wins"] == 2
    text = format_table(s)
    assert "balanced accuracy" in text and "+20.00 points" in text
    assert "too few for a meaningful interval" in text and "CI [" not in text
    assert ci_caveat({"ci_low": -0.01, "ci_high": 0.02}, 3) is None
    assert "outside" in ci_caveat({"ci_low": -1.42, "ci_high": 1.28}, 3)


@pytest.mark.slow
def test_compare_long_tailed_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["compare", *SMALL, "--epochs", "1", "--seeds", "1", "--imbalance", "3", "--p", "0.5"]
    argv += ["--arms", "none,cutmix+inverse_frequency", "--out", str(out)]
    code, _stdout, err = run(argv, capsys)
    assert code == 0, err
    assert "training class counts" in err and "[3, 2, 2, 2, 1, 1, 1, 1, 1, 1]" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "val_balanced_acc"
    assert summary["arm_settings"]["cutmix+inverse_frequency"] == {
        "mix": "cutmix",
        "partner_weights": "inverse_frequency",
    }
    cfg = json.loads((out / "runs" / "cutmix+inverse_frequency-seed0" / "config.json").read_text())
    assert cfg["partner_weights"] == "inverse_frequency" and cfg["imbalance"] == 3.0
    with Image.open(out / "per_class.png") as im:
        assert im.format == "PNG"
    report = (out / "report.md").read_text()
    assert "per_class.png" in report and "p = 0.5" in report and "few-shot" in report
    # reproduce.sh names the thread count even when --threads was not given.
    text = (out / "reproduce.sh").read_text()
    n = torch.get_num_threads()
    assert f"--threads {n}" in text.splitlines()[4] and "thread count" in text
    train_lines = [line for line in text.splitlines() if line.startswith("# cutmix train")]
    assert len(train_lines) == 2 and all(f"--threads {n}" in line for line in train_lines)


def test_imbalanced_rule() -> None:
    assert (
        not is_imbalanced([35, 36, 37]) and is_imbalanced([40, 26]) and is_imbalanced([3, 3], 1.0)
    )


def test_curves_have_integer_epoch_ticks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    from cutmix.train.report import plot_curves

    figs = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda self, *a, **k: figs.append(self)
    )
    hist = [{"val_acc": 0.5, "train_loss": 1.0}, {"val_acc": 0.6, "train_loss": 0.9}]
    plot_curves({"none": [{"history": hist}]}, ["none"], tmp_path / "c.png")
    for ax in figs[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


# -------------------------------------------------------------------------- evaluate --split all
def make_folder(root: Path, classes: tuple[str, ...], per_class: int = 3) -> Path:
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((16, 16, 3), 0, dtype=np.uint8)
            arr[..., k % 3] = 60 + 60 * (k // 3) + 10 * i
            Image.fromarray(arr).save(root / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("evalall")
    data = make_folder(tmp / "train", ("ant", "bee", "cow", "dog"))
    out = tmp / "run"
    import os

    os.environ.setdefault("CUTMIX_CACHE", str(tmp / "cache"))
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--image-size",
            "16",
            "--model",
            "resnet8",
            "--epochs",
            "1",
            "--val-fraction",
            "0.34",
            "--batch-size",
            "4",
            "--quiet",
            "--no-cache",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return data, out


def test_evaluate_split_all_matches_classes_by_name(
    tmp_path: Path, folder_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = folder_run
    code, stdout, err = run(
        ["evaluate", str(out), "--data", str(data), "--split", "all", "--json"], capsys
    )
    assert code == 0, err
    full = json.loads(stdout)
    assert (
        full["count"] == 12
        and full["missing"] == []
        and full["classes"] == ["ant", "bee", "cow", "dog"]
    )
    # A test folder with the classes in another position (bee, dog only): matched by name.
    sub = tmp_path / "test"
    for c in ("dog", "bee"):
        shutil.copytree(data / c, sub / c)
    code, stdout, err = run(
        ["evaluate", str(out), "--data", str(sub), "--split", "all", "--json"], capsys
    )
    assert code == 0, err
    part = json.loads(stdout)
    assert part["count"] == 6 and part["missing"] == ["ant", "cow"]
    assert (
        part["per_class"][1] == full["per_class"][1]
        and part["per_class"][3] == full["per_class"][3]
    )
    assert part["per_class"][0] is None and part["per_class"][2] is None
    assert part["balanced_acc"] == pytest.approx((full["per_class"][1] + full["per_class"][3]) / 2)
    assert part["top1"] == pytest.approx(part["balanced_acc"])  # 3 images each
    code, stdout, _ = run(["evaluate", str(out), "--data", str(sub), "--split", "all"], capsys)
    assert code == 0 and "balanced accuracy" in stdout and "missing classes" in stdout
    assert "top-5" in stdout and "6 images" in stdout


def test_evaluate_split_all_unknown_class(
    tmp_path: Path, folder_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = folder_run
    bad = make_folder(tmp_path / "bad", ("ant", "zebra"))
    code, stdout, err = run(["evaluate", str(out), "--data", str(bad), "--split", "all"], capsys)
    assert code == 2 and stdout == ""
    assert (
        err.startswith("cutmix: error: data: expected class folders named like")
        and "'zebra'" in err
    )
    assert len(err.strip().splitlines()) == 1
    assert match_classes(["b", "a"], ["a", "b", "c"]) == ([1, 0], ["c"])


# ------------------------------------------------------------------------------- model options
def test_model_kwargs_parsing_and_builtin_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_model_kwargs("img_size=32,drop_path_rate=0.1") == {
        "img_size": 32,
        "drop_path_rate": 0.1,
    }
    assert parse_model_kwargs("patch_size=(4, 4),act=gelu") == {"patch_size": (4, 4), "act": "gelu"}
    assert parse_model_kwargs(None) == {} == parse_model_kwargs(" ")
    assert parse_model_kwargs("img_size=32,") == {"img_size": 32}
    with pytest.raises(UsageError, match="model-kwargs"):
        parse_model_kwargs("img_size")
    code, _, err = run(
        ["train", *SMALL, "--epochs", "1", "--model", "resnet8", "--model-kwargs", "img_size=32"],
        capsys,
    )
    assert code == 2 and err.startswith(
        "cutmix: error: model-kwargs: expected none for the built-in model 'resnet8'"
    )


def test_model_that_does_not_fit_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(99, 3))
    with pytest.raises(UsageError, match="expected a model that takes 1x32x32 images"):
        check_model_fits(bad, "custom", 1, 32)
    check_model_fits(build_model("resnet8", 3, 1, 32), "resnet8", 1, 32)
    pytest.importorskip("timm")
    code, _stdout, err = run(
        [
            "train",
            *SMALL,
            "--epochs",
            "1",
            "--model",
            "vit_tiny_patch16_224",
            "--out",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("cutmix: error: model: expected a model that takes 1x32x32 images")
    assert "--model-kwargs img_size=32" in err
    m = build_model(
        "vit_tiny_patch16_224", 10, 1, 32, parse_model_kwargs("img_size=32,drop_path_rate=0.1")
    )
    check_model_fits(m, "vit_tiny_patch16_224", 1, 32)
    with pytest.raises(UsageError, match="model-kwargs: expected options that timm model"):
        build_model("vit_tiny_patch16_224", 10, 1, 32, {"no_such_option": 1})
