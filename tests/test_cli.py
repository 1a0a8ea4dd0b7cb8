"""End-to-end CLI: train, resume, compare, preview, evaluate, bench hook, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from cutmix.cli import main  # noqa: E402
from cutmix.preview import grid_size  # noqa: E402
from helpers import run_cli  # noqa: E402

# Digits, 6 images per class: 30 train / 30 validation, a second per epoch.
SMALL = ["--limit-per-class", "6", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")
run = run_cli  # (argv, capsys) -> (exit code, stdout, stderr)


@pytest.mark.slow
def test_train_evaluate_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, stdout, _ = run(
        ["train", *SMALL, "--epochs", "2", "--mix", "cutmix", "--out", str(out)], capsys
    )
    assert code == 0 and "val acc" in stdout
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["samples"] == 30 for r in rows)
    summary = json.loads((out / "summary.json").read_text())

    code, stdout, _ = run(["evaluate", str(out / "last.pt"), "--json"], capsys)
    assert code == 0
    res = json.loads(stdout)
    assert res["count"] == 30 and res["top1"] == pytest.approx(summary["final"]["val_acc"])
    assert res["top5"] >= res["top1"] and len(res["per_class"]) == 10
    # Per-class accuracies average (3 images per class) to the top-1 accuracy.
    assert np.mean(res["per_class"]) == pytest.approx(res["top1"])
    code, stdout, _ = run(["evaluate", str(out)], capsys)
    assert (
        code == 0 and "top-5" in stdout and stdout.count("%") == 13
    )  # top-1, top-5, balanced, 10 classes

    # Interrupted after one epoch, then resumed: the same final weights as the uninterrupted run.
    part = tmp_path / "part"
    argv = ["train", *SMALL, "--epochs", "2", "--mix", "cutmix", "--out", str(part)]
    code, stdout, _ = run([*argv, "--stop-after", "1"], capsys)
    assert code == 0 and "--resume" in stdout
    code, _, _ = run(["train", "--resume", str(part / "last.pt"), "--quiet"], capsys)
    assert code == 0
    import torch

    a = torch.load(out / "last.pt", weights_only=True)["model"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_compare_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["compare", *SMALL, "--epochs", "2", "--seeds", "2", "--out", str(out)]
    argv += ["--arms", "none,cutmix,mixup", "--eval-every", "2"]
    code, stdout, _ = run(argv, capsys)
    assert code == 0
    for name in ("report.md", "summary.json", "curves.png", "preview.png", "reproduce.sh"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    arms = summary["arms"]
    assert set(arms) == {"none", "cutmix", "mixup"} and arms["cutmix"]["seeds"] == [0, 1]
    assert set(summary["differences"]) == {"cutmix", "mixup"}
    accs = arms["none"]["val_acc"]
    assert arms["none"]["acc_mean"] == pytest.approx(np.mean(accs))
    assert arms["none"]["acc_sd"] == pytest.approx(np.std(accs, ddof=1))
    d = summary["differences"]["cutmix"]
    assert d["diff"] == pytest.approx(arms["cutmix"]["acc_mean"] - arms["none"]["acc_mean"])
    assert "CutMix − baseline" in stdout and "MixUp − baseline" in stdout and "± " in stdout
    assert summary["command"].startswith("cutmix compare")
    with Image.open(out / "curves.png") as im:
        assert im.format == "PNG" and im.size[0] > 200
    for arm in ("none", "cutmix", "mixup"):
        for s in (0, 1):
            run_dir = out / "runs" / f"{arm}-seed{s}"
            assert json.loads((run_dir / "config.json").read_text())["mix"] == arm
    reproduce = (out / "reproduce.sh").read_text()
    assert "--mix cutmix --seed 1" in reproduce


def test_preview_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.png"
    code, stdout, _ = run(
        ["preview", "--num", "10", "--cols", "5", "--scale", "3", "--out", str(path)], capsys
    )
    assert code == 0 and str(path) in stdout
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size == grid_size(10, 32, 32, cols=5, scale=3)


def test_bench_hook_forwards_or_explains(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    seen: list[list[str]] = []
    fake = types.ModuleType("cutmix.bench")
    fake.main = lambda argv: seen.append(list(argv)) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cutmix.bench", fake)
    assert main(["bench", "--quick", "x"]) == 3 and seen == [["--quick", "x"]]
    monkeypatch.setitem(sys.modules, "cutmix.bench", None)  # as if the module were missing
    code, _, err = run(["bench", "--help"], capsys)
    assert code == 2 and "cutmix.bench" in err and "Traceback" not in err


def _corrupt_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                root / c / f"{i}.png"
            )
    (root / "a" / "bad.jpg").write_bytes(b"\xff\xd8 garbage")
    return root


def test_corrupt_images_are_reported_and_training_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _corrupt_folder(tmp_path / "imgs")
    code, _, err = run(
        ["train", "--data", str(root), "--image-size", "16", "--epochs", "1", "--val-fraction", "0.5",
         "--out", str(tmp_path / "run"), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "skipped 1 unreadable image" in err and "a/bad.jpg" in err


def _bad_cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    (tmp / "noimg" / "cls").mkdir(parents=True)
    (tmp / "noimg" / "cls" / "readme.txt").write_text("x")
    return [
        (["train", "--data", str(tmp / "missing")], "missing path"),
        (["train", "--data", str(tmp / "empty")], "empty folder"),
        (["train", "--data", str(tmp / "noimg")], "class folder"),
        (["train", "--model", "resnet9000", *SMALL], "model: expected one of"),
        (["train", "--epochs", "2", "--mix-off-epochs", "3"], "mix-off-epochs"),
        (["train", "--mix", "cutmix", "--alpha", "0", *SMALL, "--epochs", "1"], "alpha"),
        (["train", "--p", "1.5", "--epochs", "1"], "p: expected"),
        (["evaluate", str(tmp / "nope.pt")], "checkpoint"),
        (["compare", "--arms", "none", "--epochs", "1"], "arms"),
    ]


def test_bad_input_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, needle in _bad_cases(tmp_path):
        code, _, err = run(
            [*argv, "--out", str(tmp_path / "o")] if argv[0] != "evaluate" else argv, capsys
        )
        assert code == 2, argv
        assert err.startswith("cutmix: error: ") and needle in err, (argv, err)
        assert "Traceback" not in err


def test_checkpoint_of_another_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert run(["train", *SMALL, "--epochs", "1", "--out", str(out)], capsys)[0] == 0
    code, _, err = run(["evaluate", str(out / "last.pt"), "--model", "resnet8"], capsys)
    assert code == 2 and "model 'resnet8'" in err and "'tutorial'" in err
    code, _, err = run(["train", "--resume", str(out / "last.pt"), "--model", "resnet8"], capsys)
    assert code == 2 and "resume: expected --model tutorial" in err
    # Weights of another architecture under the same name: a clear mismatch message.
    import torch

    state = torch.load(out / "last.pt", weights_only=True)
    state["model"] = {k + "_x": v for k, v in state["model"].items()}
    torch.save(state, tmp_path / "other.pt")
    code, _, err = run(["evaluate", str(tmp_path / "other.pt")], capsys)
    assert code == 2 and "mismatch" in err and "Traceback" not in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, _, err = run(["evaluate", str(tmp_path / "junk.pt")], capsys)
    assert code == 2 and "unreadable" in err


@pytest.mark.slow
def test_real_entry_point_exits_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cutmix", "train", "--model", "nope", "--data", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("cutmix: error: data:") and "Traceback" not in proc.stderr
