"""A hostile user's tour of the merged CLI: the imbalanced-data features (issue 12) combined with the
bad-input, locking and resume machinery (issue 13). Each test is one finding that failed before its
fix: a traceback, a clobbered file, non-strict JSON or a wrong number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

from cutmix.cli import main  # noqa: E402

SMALL = ["--limit-per-class", "4", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]
TRAIN = ["train", *SMALL, "--epochs", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "cache"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code: int, err: str, needle: str) -> str:
    """Exit 2, exactly one ``cutmix: error:`` line (the last one), no traceback; returns the line."""
    lines = [s for s in err.splitlines() if s.startswith("cutmix: error: ")]
    assert code == 2, (code, err)
    assert len(lines) == 1 and err.rstrip().splitlines()[-1] == lines[0], err
    assert "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    return lines[0]


def strict_json(text: str) -> object:
    def refuse(c: str) -> object:
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped two-epoch digits run (its folder: last.pt after epoch 1)."""
    out = tmp_path_factory.mktemp("run") / "r"
    assert main([*TRAIN[:-1], "2", "--stop-after", "1", "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------ options checked before data
def test_bad_log_kind_refused_before_data_and_before_clobbering_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--log bogus`` was checked only after the data was read and after ``config.json`` and
    ``metrics.jsonl`` of the ``--out`` folder were rewritten: an existing run lost its metrics."""
    code, _, err = run([*TRAIN, "--data", str(tmp_path / "missing"), "--log", "bogus"], capsys)
    one_error(code, err, "log: expected a comma-separated list of tensorboard, csv, got 'bogus'")
    out = tmp_path / "existing"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (out / "config.json").write_text("{}\n")
    code, _, err = run([*TRAIN, "--out", str(out), "--log", "csv,bogus"], capsys)
    one_error(code, err, "log:")
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 1}\n'
    assert (out / "config.json").read_text() == "{}\n"


def test_model_kwargs_for_a_builtin_model_refused_before_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*TRAIN, "--data", str(tmp_path / "missing"), "--model-kwargs", "img_size=32"]
    code, _, err = run([*argv, "--out", str(tmp_path / "o")], capsys)
    one_error(code, err, "model-kwargs: expected none for the built-in model 'tutorial'")
