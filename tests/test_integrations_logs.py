"""``cutmix train/compare --log tensorboard,csv``: both logs read back and match metrics.jsonl."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from cutmix.cli import main
from cutmix.train.errors import UsageError
from cutmix.train.logs import MetricLogs, parse_log_kinds

SMALL = ["--limit-per-class", "4", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")


def _jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _flat_jsonl(run: Path) -> list[dict]:
    """metrics.jsonl with per-class lists spread over ``key/i`` columns, as metrics.csv has them."""
    rows = []
    for row in _jsonl(run):
        flat: dict = {}
        for k, v in row.items():
            if isinstance(v, list):
                flat.update({f"{k}/{i}": x for i, x in enumerate(v)})
            else:
                flat[k] = v
        rows.append(flat)
    return rows


def _check_csv(run: Path) -> None:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    want = _flat_jsonl(run)
    assert any("/" in k for k in want[-1]), "per-class columns expected"
    assert len(rows) == len(want) and list(rows[0]) == list(want[0])
    for got, row in zip(rows, want):
        for k, v in row.items():
            if v is None:
                assert got[k] == ""
            elif isinstance(v, bool):
                assert got[k] == str(v)
            else:
                assert float(got[k]) == pytest.approx(float(v), rel=1e-12)


def _check_tensorboard(run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    want = _jsonl(run)
    assert {"train_loss", "train_acc", "lr", "val_acc", "val_per_class/0"} <= set(
        acc.Tags()["scalars"]
    )
    events = acc.Scalars("train_loss")
    assert [e.step for e in events] == [r["epoch"] for r in want]
    assert [e.value for e in events] == pytest.approx([r["train_loss"] for r in want], rel=1e-6)


def test_train_writes_csv_and_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    argv = ["train", *SMALL, "--epochs", "2", "--out", str(run), "--log", "tensorboard,csv"]
    assert main(argv) == 0
    _check_csv(run)
    _check_tensorboard(run)
    assert json.loads((run / "config.json").read_text())["log"] == "tensorboard,csv"


@pytest.mark.slow
def test_compare_writes_csv_per_run(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["compare", *SMALL, "--epochs", "1", "--seeds", "1", "--out", str(out), "--log", "csv"]
    assert main(argv) == 0
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        _check_csv(run)
        assert not (run / "tensorboard").exists()


def test_bad_kind_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path / "r"), "--log", "wandb"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cutmix: error: log:") and err.count("\n") == 1


def test_missing_tensorboard_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(UsageError, match=r"cutmix\[tensorboard\]"):
        MetricLogs.open(tmp_path, "tensorboard", history=[])


def test_parse_and_resume_rewrite(tmp_path: Path) -> None:
    assert parse_log_kinds("csv,,CSV, tensorboard") == ("csv", "tensorboard")
    assert parse_log_kinds("") == ()
    rows = [{"epoch": 1, "a": 1.0, "extra": {"k": 1}}, {"epoch": 2, "a": 2.0, "b": None}]
    logs = MetricLogs.open(tmp_path, "csv", history=rows[:1])  # resume: the old rows first
    logs.write(rows)
    logs.close()
    got = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["epoch"] for r in got] == ["1", "2"] and got[0]["extra"] == '{"k": 1}'
    assert got[1]["b"] == "" and got[0]["b"] == ""
