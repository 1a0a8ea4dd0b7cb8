"""A hostile user's tour of the merged CLI: the imbalanced-data features (issue 12) combined with the
bad-input, locking and resume machinery (issue 13). Each test is one finding that failed before its
fix: a traceback, a clobbered file, non-strict JSON or a wrong number."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

from cutmix.cli import main  # noqa: E402
from helpers import run_cli  # noqa: E402

SMALL = ["--limit-per-class", "4", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]
TRAIN = ["train", *SMALL, "--epochs", "1"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")
run = run_cli  # (argv, capsys) -> (exit code, stdout, stderr)


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
    """A stopped two-epoch run on 24 tiny images (its folder: last.pt after epoch 1)."""
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    np.savez(
        root / "d.npz", x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=np.arange(24) % 3
    )
    argv = ["train", "--data", str(root / "d.npz"), "--image-size", "8", "--model", "resnet8"]
    argv += ["--epochs", "2", "--stop-after", "1", "--val-fraction", "0.5", "--batch-size", "4"]
    assert main([*argv, "--quiet", "--out", str(root / "r")]) == 0
    return root / "r"


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


# ------------------------------------------------------------------------------------------ resume
def test_resume_of_a_checkpoint_from_before_the_imbalance_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digits_run: Path
) -> None:
    """A checkpoint written before issue 12 has no ``imbalance`` (nor ``partner_weights``,
    ``model_kwargs``, ``log``) in its config: ``--resume`` ended in ``KeyError: 'imbalance'``."""
    state = torch.load(digits_run / "last.pt", weights_only=True)
    for k in ("imbalance", "partner_weights", "model_kwargs", "log"):
        del state["config"][k]
    del state["data_fingerprint"]
    old = tmp_path / "old"
    old.mkdir()
    torch.save(state, old / "last.pt")
    code, _, err = run(["train", "--resume", str(old), "--quiet"], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert [json.loads(s)["epoch"] for s in (old / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
    ]
    # an option the old run did not have must still match its default
    code, _, err = run(["train", "--resume", str(old), "--quiet", "--imbalance", "10"], capsys)
    one_error(code, err, "resume: expected --imbalance None (as in the checkpoint), got 10.0")


def test_resume_from_another_folder_names_the_data_by_another_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run on a relative ``--data`` could not be resumed from any other working folder: the
    stored path did not resolve, and ``--data ABSOLUTE`` was refused as a different string. The
    data fingerprint decides now (same pixels: resumed; other pixels: refused unless --force)."""
    arrays = tmp_path / "proj" / "d.npz"
    arrays.parent.mkdir()
    rng = np.random.default_rng(0)
    np.savez(arrays, x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=np.arange(24) % 3)
    monkeypatch.chdir(arrays.parent)
    run_dir = tmp_path / "run"
    argv = ["train", "--data", "d.npz", "--image-size", "8", "--model", "resnet8", "--epochs", "2"]
    argv += ["--stop-after", "1", "--val-fraction", "0.5", "--batch-size", "4", "--quiet"]
    assert main([*argv, "--out", str(run_dir)]) == 0
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", "--resume", str(run_dir), "--quiet"], capsys)
    one_error(
        code, err, "data: expected 'digits', a folder or an .npz file, got missing path 'd.npz'"
    )
    code, _, err = run(
        ["train", "--resume", str(run_dir), "--quiet", "--data", str(arrays)], capsys
    )
    assert code == 0, err
    other = tmp_path / "other.npz"
    np.savez(other, x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=np.arange(24) % 3)
    code, _, err = run(["train", "--resume", str(run_dir), "--quiet", "--data", str(other)], capsys)
    one_error(code, err, "resume: expected the data the checkpoint was trained on")


# -------------------------------------------------------------------------------- strict JSON out
def tiny_npz(path: Path, n: int = 24, classes: int = 3, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), y=np.arange(n) % classes)
    return str(path)


TINY = ["--image-size", "8", "--model", "resnet8", "--epochs", "1", "--val-fraction", "0.5"]
TINY += ["--batch-size", "4", "--quiet", "--threads", "1"]


def test_compare_with_one_seed_writes_strict_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one seed the CI, p-value, df and t are undefined: ``summary.json`` held ``NaN`` (not
    JSON; ``metrics.jsonl`` and the runs' ``summary.json`` are strict). They are ``null`` now."""
    import cutmix.train.report as report

    for name in ("plot_curves", "plot_per_class", "preview_from_splits"):  # seconds of matplotlib
        monkeypatch.setattr(report, name, lambda *a, **k: None)
    data = tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "cmp"
    argv = ["compare", "--data", data, *TINY, "--seeds", "1", "--out", str(out)]
    code, _, err = run(
        [*argv, "--arms", "none,cutmix+inverse_frequency", "--imbalance", "3"], capsys
    )
    assert code == 0, err
    summary = strict_json((out / "summary.json").read_text())
    d = summary["differences"]["cutmix+inverse_frequency"]  # type: ignore[index]
    assert d["ci_low"] is None and d["p_value"] is None and d["pairs"] == 1
    assert summary["train_class_counts"] == [4, 2, 1]  # type: ignore[index]
    # and the report does not call a difference "larger than the seed-to-seed spread" of one seed
    report_md = (out / "report.md").read_text()
    assert "no seed-to-seed spread to compare with (one seed)." in report_md
    assert "larger than the seed-to-seed spread" not in report_md


def test_evaluate_gives_no_accuracy_to_a_class_without_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate`` (val/train split) printed and returned 0 % for a class with no image in the
    split, where ``--split all`` and the run's metrics say ``None``; ``--json`` is strict JSON."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 10 + [1] * 10 + [2])  # the lone class-2 image stays in training
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (21, 8, 8), dtype=np.uint8), y=y)
    out = tmp_path / "r"
    assert main(["train", "--data", str(tmp_path / "d.npz"), *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    row = strict_json((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["val_per_class"][2] is None  # type: ignore[index]
    code, text, err = run(["evaluate", str(out), "--json"], capsys)
    assert code == 0, err
    res = strict_json(text)
    assert res["class_count"] == [5, 5, 0] and res["per_class"][2] is None  # type: ignore[index]
    assert res["per_class"][:2] == row["val_per_class"][:2]  # type: ignore[index]
    code, text, _ = run(["evaluate", str(out)], capsys)
    assert code == 0 and text.splitlines()[-1].strip() == "2    (missing: no images)"


@pytest.mark.slow  # a subprocess (about 4 s: importing torch)
def test_evaluate_json_into_a_closed_pipe_is_no_internal_error(
    tmp_path: Path, digits_run: Path
) -> None:
    """``cutmix evaluate RUN --json | head -1`` ended in a BrokenPipeError traceback and the
    "internal error: this is a bug" line; now it stops quietly with 141 (128 + SIGPIPE)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "cutmix", "evaluate", str(digits_run), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "internal error" not in err and "Exception" not in err, err


# ------------------------------------------------------------------------------ --model-kwargs
@pytest.mark.parametrize(
    "key", ["checkpoint_path", "pretrained_cfg_overlay", "cache_dir", "device"]
)
def test_model_kwargs_that_load_files_or_move_the_model_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """``--model-kwargs checkpoint_path='/etc/passwd'`` made timm ``torch.load`` that path (an
    ``IndexError`` traceback); a checkpoint's config could do the same in ``evaluate``.
    ``device='meta'`` built a model the loop could not move. Refused before any data is read."""
    value = {"device": "'meta'", "pretrained_cfg_overlay": "{'file': '/etc/passwd'}"}.get(key)
    argv = [*TRAIN, "--data", str(tmp_path / "missing"), "--model", "resnet18"]
    argv += [
        "--model-kwargs",
        f"{key}={value or repr(str(tmp_path))}",
        "--out",
        str(tmp_path / "o"),
    ]
    code, _, err = run(argv, capsys)
    one_error(
        code,
        err,
        f"model-kwargs: expected model options (the tool trains from scratch, on --device, and sets the classes and channels itself), got {key}",
    )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"patch_size": 0}, "got patch_size (ZeroDivisionError"),
        ({"img_size": -1}, "got img_size (ValueError"),
        ({"embed_dim": 7}, "got embed_dim (AssertionError: dim should be divisible by num_heads)"),
    ],
)
def test_timm_refusing_an_option_in_any_way_is_a_usage_error(kwargs: dict, needle: str) -> None:
    """Only a ``TypeError`` of ``timm.create_model`` became a one-line error; a ``ValueError``,
    ``ZeroDivisionError`` or ``AssertionError`` from the model's constructor was an internal error."""
    pytest.importorskip("timm")
    from cutmix.train.errors import UsageError
    from cutmix.train.models import build_model

    with pytest.raises(UsageError, match="model-kwargs: expected options that timm model") as e:
        build_model("vit_tiny_patch16_224", 3, 3, 32, kwargs)
    assert needle in str(e.value)


# ---------------------------------------------------------------------------------- image folders
def test_content_hash_reads_a_huge_file_in_chunks(tmp_path: Path) -> None:
    """The cache's content hash read every file whole (``read_bytes``): one huge ``x.jpg`` in a
    class folder cost its size in memory before it was even found not to be an image."""
    import hashlib
    import tracemalloc

    from cutmix.train.data import _content_hash

    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:  # a sparse 64 MiB file: no disk space used
        f.truncate(64 << 20)
    small = tmp_path / "small.png"
    small.write_bytes(b"abc")
    tracemalloc.start()
    try:
        got = _content_hash([[big], [small]])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak
    want = hashlib.blake2b(digest_size=16)
    for part in (bytes(64 << 20), b"\0", b"abc", b"\0"):
        want.update(part)
    assert got == want.hexdigest()  # the same key as before: existing cache entries stay valid


# -------------------------------------------------------------------------------------- --out
def test_out_with_a_quoted_tilde_is_the_home_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out '~/runs/x'`` (quoted, or ``--out=~/x`` in zsh) was checked as the home folder but
    written to a new folder literally named ``~`` in the working folder, like ``--data`` is not."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    data = tiny_npz(tmp_path / "d.npz")
    argv = [
        "train",
        "--data",
        data,
        *TINY,
        "--epochs",
        "2",
        "--stop-after",
        "1",
    ]  # last --epochs wins
    code, _, err = run([*argv, "--out", "~/runs/x"], capsys)
    assert code == 0, err
    assert (home / "runs" / "x" / "last.pt").is_file() and not (work / "~").exists()
    code, _, err = run(["train", "--resume", "~/runs/x", "--quiet"], capsys)
    assert code == 0, err
    code, text, err = run(["evaluate", "~/runs/x", "--json"], capsys)
    assert code == 0 and strict_json(text)["epoch"] == 2, err  # type: ignore[index]
    assert not (work / "~").exists()


def image_folder(root: Path, per_class: int = 4, classes: str = "ab") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                root / c / f"{i}.png"
            )
    return root


@pytest.mark.parametrize("sub", ["run1", "a/deeper", "."])
def test_out_inside_the_image_folder_is_refused_and_the_folder_left_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sub: str
) -> None:
    """``--out DATA/run1`` made the run's lock create ``DATA/run1`` before the data was read: that
    run failed on a class folder without images, and so did every later run on DATA."""
    data = image_folder(tmp_path / "imgs")
    for cmd in ("train", "compare"):
        argv = [cmd, "--data", str(data), *TINY, "--out", str(data / sub)]
        code, _, err = run(argv, capsys)
        one_error(code, err, f"out: expected a folder outside the data folder {str(data)!r}")
    assert sorted(p.name for p in data.iterdir()) == ["a", "b"]
    assert [p.name for p in (data / "a").iterdir() if p.is_dir()] == []


def test_class_folder_named_with_bytes_that_are_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A class folder whose name is not valid UTF-8 (copied from another system) crashed the cache
    key and the data fingerprint (``UnicodeEncodeError``: an internal error), then ``evaluate``'s
    printing on a strict UTF-8 stdout and the compare report's per-class chart."""
    from PIL import Image

    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in (b"\xff\xfe", b"ok"):
        folder = os.path.join(os.fsencode(root), name)
        try:
            os.mkdir(folder)
        except OSError:  # a file system that only takes valid names (macOS, some Windows ones)
            pytest.skip("this file system refuses names that are not UTF-8")
        for i in range(4):
            image = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            image.save(os.fsdecode(os.path.join(folder, b"%d.png" % i)))
    out = tmp_path / "r"
    code, _, err = run(["train", "--data", str(root), *TINY, "--out", str(out)], capsys)
    assert code == 0, err
    for argv in (
        ["evaluate", str(out)],
        ["evaluate", str(out), "--split", "all", "--data", str(root)],
    ):
        code, text, err = run(argv, capsys)  # capsys writes UTF-8 strictly, as a UTF-8 terminal
        assert code == 0, err
        assert "  \ufffd\ufffd  " in text and "  ok  " in text


def test_per_class_chart_takes_a_class_name_that_is_not_utf8(tmp_path: Path) -> None:
    """``compare``'s per-class chart raised a ``TypeError`` (matplotlib refuses surrogates)."""
    import matplotlib

    matplotlib.use("Agg")
    from cutmix.train.report import plot_per_class

    summary = {"classes": ["\udcff\udcfe", "ok"], "train_class_counts": [4, 2]}
    summary["arms"] = {"cutmix": {"per_class_mean": [0.5, None]}}  # type: ignore[assignment]
    plot_per_class(summary, ["cutmix"], tmp_path / "per_class.png")
    assert (tmp_path / "per_class.png").stat().st_size > 0


def test_evaluate_lists_missing_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Guards the listing of ``evaluate --split all`` (a name clash there once broke it)."""
    data = image_folder(tmp_path / "imgs", classes="abc")
    out = tmp_path / "r"
    assert main(["train", "--data", str(data), *TINY, "--out", str(out)]) == 0
    test = image_folder(tmp_path / "test", classes="ca")
    code, text, err = run(["evaluate", str(out), "--split", "all", "--data", str(test)], capsys)
    assert code == 0, err
    assert text.splitlines()[-1] == f"missing classes (no folder in {test}): b"
    assert "  b    (missing: no images)" in text
