"""Every bad input of issue 13 (Why 1-4) pinned to its one-line ``cutmix: error:`` message.

Each case is a command line (built from files made in a temporary folder) and the text its single
error line must contain. The run must end with exit status 2, exactly one ``cutmix: error:`` line on
stderr, no traceback, and nothing on stdout (results are never printed before an error).
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

from cutmix.cli import main  # noqa: E402
from cutmix.train.errors import EXIT_DIVERGED  # noqa: E402
from helpers import run_cli  # noqa: E402

SMALL = ["--limit-per-class", "4", "--val-fraction", "0.5", "--batch-size", "8", "--quiet"]
TRAIN = ["train", *SMALL, "--epochs", "1"]


pytestmark = pytest.mark.usefixtures("isolated_data_cache")
run = run_cli  # (argv, capsys) -> (exit code, stdout, stderr)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of a one-epoch digits run (about a second)."""
    out = tmp_path_factory.mktemp("ck") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out / "last.pt"


def assert_one_error(code: int, out: str, err: str, needle: str, argv: list[str]) -> None:
    assert code == 2, (argv, code, err)
    lines = [s for s in err.splitlines() if s.startswith("cutmix: error: ")]
    assert len(lines) == 1, (argv, err)
    assert err.rstrip().splitlines()[-1] == lines[0], (argv, err)
    assert needle in lines[0], (argv, lines[0])
    assert "Traceback" not in err, (argv, err)
    assert out == "", (argv, out)


# ------------------------------------------------------------------------------- files of bad data
def npz(tmp: Path, name: str = "d.npz", n: int = 12, **arrays: object) -> str:
    rng = np.random.default_rng(0)
    base: dict[str, object] = {
        "x": rng.integers(0, 256, (n, 8, 8), dtype=np.uint8),
        "y": np.arange(n) % 3,
    }
    base.update(arrays)
    base = {k: v for k, v in base.items() if v is not None}
    np.savez(tmp / name, **base)  # type: ignore[arg-type]
    return str(tmp / name)


def truncated_npz(tmp: Path) -> str:
    good = Path(npz(tmp, "good.npz"))
    data = good.read_bytes()
    (tmp / "cut.npz").write_bytes(data[: len(data) // 2])
    return str(tmp / "cut.npz")


def cifar(tmp: Path, data: object, labels: object, meta: object = None) -> str:
    root = tmp / "cifar"
    root.mkdir(exist_ok=True)
    with open(root / "data_batch_1", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f, protocol=2)
    if meta is not None:
        with open(root / "batches.meta", "wb") as f:
            pickle.dump({b"label_names": meta}, f, protocol=2)
    return str(root)


def cifar_data(n: int) -> object:
    return np.random.default_rng(0).integers(0, 256, (n, 3072), dtype=np.uint8)


def a_file(tmp: Path) -> str:
    (tmp / "file.txt").write_text("x")
    return str(tmp / "file.txt")


# Each case: (id, argv builder, needle). ``T`` is the temporary folder.
Case = tuple[str, Callable[[Path], list[str]], str]
OPTION_CASES: list[Case] = [
    (
        "momentum-negative",
        lambda T: [*TRAIN, "--momentum", "-1"],
        "momentum: expected a value in [0, 1), got -1.0",
    ),
    (
        "momentum-nan",
        lambda T: [*TRAIN, "--momentum", "nan"],
        "momentum: expected a value in [0, 1), got nan",
    ),
    (
        "momentum-one",
        lambda T: [*TRAIN, "--momentum", "1"],
        "momentum: expected a value in [0, 1), got 1.0",
    ),
    (
        "lr-inf",
        lambda T: [*TRAIN, "--lr", "inf"],
        "lr: expected a positive finite learning rate, got inf",
    ),
    (
        "lr-nan",
        lambda T: [*TRAIN, "--lr", "nan"],
        "lr: expected a positive finite learning rate, got nan",
    ),
    (
        "lr-zero",
        lambda T: [*TRAIN, "--lr", "0"],
        "lr: expected a positive finite learning rate, got 0.0",
    ),
    (
        "weight-decay-nan",
        lambda T: [*TRAIN, "--weight-decay", "nan"],
        "weight-decay: expected a non-negative finite value, got nan",
    ),
    (
        "weight-decay-negative",
        lambda T: [*TRAIN, "--weight-decay", "-1"],
        "weight-decay: expected a non-negative finite value, got -1.0",
    ),
    (
        "warmup-inf",
        lambda T: [*TRAIN, "--warmup-epochs", "inf"],
        "warmup-epochs: expected a non-negative finite number of epochs, got inf",
    ),
    (
        "warmup-negative",
        lambda T: [*TRAIN, "--warmup-epochs", "-1"],
        "warmup-epochs: expected a non-negative finite",
    ),
    (
        "threads-negative",
        lambda T: [*TRAIN, "--threads", "-1"],
        "threads: expected 1..4096, got -1",
    ),
    ("threads-zero", lambda T: [*TRAIN, "--threads", "0"], "threads: expected 1..4096, got 0"),
    (
        "device-tpu9",
        lambda T: [*TRAIN, "--device", "tpu9"],
        "device: expected auto, cpu, cuda or cuda:K, got 'tpu9'",
    ),
    (
        "device-garbage",
        lambda T: [*TRAIN, "--device", "gpu!"],
        "device: expected auto, cpu, cuda or cuda:K, got 'gpu!'",
    ),
    (
        "seed-huge",
        lambda T: [*TRAIN, "--seed", str(10**23)],
        f"seed: expected a seed in [0, 2**63), got {10**23}",
    ),
    (
        "seed-negative",
        lambda T: [*TRAIN, "--seed", "-1"],
        "seed: expected a seed in [0, 2**63), got -1",
    ),
    (
        "split-seed-negative",
        lambda T: [*TRAIN, "--split-seed", "-1"],
        "split-seed: expected a seed in [0, 2**63), got -1",
    ),
    (
        "crop-padding-huge",
        lambda T: [*TRAIN, "--crop-padding", "100000"],
        "crop-padding: expected a padding in 0..32 (at most --image-size), got 100000",
    ),
    (
        "crop-padding-negative",
        lambda T: [*TRAIN, "--crop-padding", "-1"],
        "crop-padding: expected a padding in 0..32",
    ),
    (
        "batch-size-zero",
        lambda T: [*TRAIN, "--batch-size", "0"],
        "batch-size: expected 1..1048576, got 0",
    ),
    (
        "batch-size-huge",
        lambda T: [*TRAIN, "--batch-size", str(10**30)],
        f"batch-size: expected 1..1048576, got {10**30}",
    ),
    (
        "epochs-huge",
        lambda T: [*TRAIN, "--epochs", str(10**30)],
        f"epochs: expected 1..1000000, got {10**30}",
    ),
    (
        "workers-huge",
        lambda T: [*TRAIN, "--mix-in", "workers", "--workers", "100000"],
        "workers: expected a count in 0..256, got 100000",
    ),
    (
        "threads-huge",
        lambda T: [*TRAIN, "--threads", str(10**30)],
        f"threads: expected 1..4096, got {10**30}",
    ),
    (
        "limit-per-class-negative",
        lambda T: [*TRAIN, "--limit-per-class", "-1"],
        "limit-per-class: expected at least 1 image per class, got -1",
    ),
    (
        "limit-per-class-zero",
        lambda T: [*TRAIN, "--limit-per-class", "0"],
        "limit-per-class: expected at least 1 image per class, got 0",
    ),
    (
        "train-subset-zero",
        lambda T: [*TRAIN, "--train-subset", "0"],
        "train-subset: expected at least 1 image, got 0",
    ),
    (
        "mixup-alpha-nan",
        lambda T: [*TRAIN, "--mix", "mixup", "--mixup-alpha", "nan"],
        "mixup-alpha: expected a positive finite Beta concentration, got nan",
    ),
    (
        "mixup-alpha-zero",
        lambda T: [*TRAIN, "--mixup-alpha", "0"],
        "mixup-alpha: expected a positive finite Beta concentration, got 0.0",
    ),
    (
        "alpha-inf",
        lambda T: [*TRAIN, "--alpha", "inf"],
        "alpha: expected a positive finite Beta concentration, got inf",
    ),
    (
        "label-smoothing-nan",
        lambda T: [*TRAIN, "--label-smoothing", "nan"],
        "label-smoothing: expected a value in [0, 1), got nan",
    ),
    ("p-nan", lambda T: [*TRAIN, "--p", "nan"], "p: expected a probability in [0, 1], got nan"),
    (
        "val-fraction-nan",
        lambda T: [*TRAIN, "--val-fraction", "nan"],
        "val-fraction: expected a number in (0, 1), got nan",
    ),
    (
        "image-size-zero",
        lambda T: [*TRAIN, "--image-size", "0"],
        "image-size: expected a side in 1..2048 pixels, got 0",
    ),
    (
        "image-size-huge",
        lambda T: [*TRAIN, "--image-size", "100000"],
        "image-size: expected a side in 1..2048 pixels, got 100000",
    ),
    (
        "epochs-not-int",
        lambda T: ["train", "--epochs", "x"],
        "argument --epochs: invalid int value: 'x'",
    ),
    (
        "options-before-data",
        lambda T: [*TRAIN, "--data", str(T / "missing"), "--momentum", "2"],
        "momentum: expected",
    ),
    ("out-empty", lambda T: [*TRAIN, "--out", ""], "out: expected a folder path, got ''"),
    (
        "out-file",
        lambda T: [*TRAIN, "--out", a_file(T)],
        "out: expected a folder, got the existing file",
    ),
    (
        "out-below-file",
        lambda T: [*TRAIN, "--out", a_file(T) + "/run"],
        "out: expected a folder path, got",
    ),
    (
        "compare-out-file",
        lambda T: ["compare", *SMALL, "--epochs", "1", "--out", a_file(T)],
        "out: expected a folder, got the existing file",
    ),
    (
        "compare-seeds-huge",
        lambda T: ["compare", *SMALL, "--epochs", "1", "--seeds", str(10**9)],
        f"seeds: expected 1..1000, got {10**9}",
    ),
    (
        "compare-out-empty",
        lambda T: ["compare", *SMALL, "--epochs", "1", "--out", ""],
        "out: expected a folder path, got ''",
    ),
    (
        "preview-out-dir",
        lambda T: ["preview", "--out", str(T)],
        "out: expected a PNG file path, got the folder",
    ),
    (
        "preview-out-empty",
        lambda T: ["preview", "--out", ""],
        "out: expected a PNG file path, got ''",
    ),
    (
        "preview-out-below-file",
        lambda T: ["preview", "--out", a_file(T) + "/p.png"],
        "below the file",
    ),
    (
        "preview-alpha-nan",
        lambda T: ["preview", "--alpha", "nan", "--out", str(T / "p.png")],
        "alpha: expected a positive finite number, got nan",
    ),
    (
        "preview-num-zero",
        lambda T: ["preview", "-n", "0", "--out", str(T / "p.png")],
        "num: expected 1..1024 images, got 0",
    ),
]

DATA_CASES: list[Case] = [
    (
        "npz-object-array",
        lambda T: [*TRAIN, "--data", npz(T, x=np.array([object()] * 12, dtype=object))],
        "data: expected a numeric array 'x'",
    ),
    (
        "npz-truncated",
        lambda T: [*TRAIN, "--data", truncated_npz(T)],
        "data: expected a readable .npz file",
    ),
    (
        "npz-not-zip",
        lambda T: [*TRAIN, "--data", str((T / "j.npz").write_bytes(b"junk") and T / "j.npz")],
        "data: expected a readable .npz file",
    ),
    (
        "npz-x-test-other-size",
        lambda T: [
            *TRAIN,
            "--data",
            npz(T, x_test=np.zeros((3, 9, 9), np.uint8), y_test=np.arange(3)),
        ],
        "data: expected test images of the training images' shape (1, 8, 8), got (1, 9, 9)",
    ),
    (
        "npz-y-test-out-of-range",
        lambda T: [
            *TRAIN,
            "--data",
            npz(
                T,
                x_test=np.zeros((3, 8, 8), np.uint8),
                y_test=np.array([0, 1, 7]),
                classes=np.array(["a", "b", "c"]),
            ),
        ],
        "data: expected test labels in [0, 3) (3 classes), got 0..7",
    ),
    (
        "npz-y-2d",
        lambda T: [*TRAIN, "--data", npz(T, y=np.zeros((12, 3), np.int64))],
        "data: expected y to be one class id per image, shape (12,)",
    ),
    (
        "npz-count-mismatch",
        lambda T: [*TRAIN, "--data", npz(T, y=np.arange(5) % 3)],
        "data: expected 12 labels in y (one per image)",
    ),
    (
        "npz-label-1e9",
        lambda T: [*TRAIN, "--data", npz(T, y=np.array([0] * 11 + [10**9]))],
        "data: expected class ids in [0, 100000) in y",
    ),
    (
        "npz-label-2e6",
        lambda T: [*TRAIN, "--data", npz(T, y=np.array([0] * 11 + [2_000_000]))],
        "got 0..2000000",
    ),
    (
        "npz-label-negative",
        lambda T: [*TRAIN, "--data", npz(T, y=np.array([0] * 11 + [-1]))],
        "data: expected class ids in [0, 100000)",
    ),
    (
        "npz-label-fraction",
        lambda T: [*TRAIN, "--data", npz(T, y=np.full(12, 0.5))],
        "data: expected integer class ids in y",
    ),
    (
        "npz-label-strings",
        lambda T: [*TRAIN, "--data", npz(T, y=np.array(["a"] * 12))],
        "data: expected integer class ids in y",
    ),
    (
        "npz-label-beyond-classes",
        lambda T: [*TRAIN, "--data", npz(T, classes=np.array(["a", "b"]))],
        "data: expected train labels in [0, 2) (2 classes), got 0..2",
    ),
    (
        "npz-x-strings",
        lambda T: [*TRAIN, "--data", npz(T, x=np.array(["ab"] * 12))],
        "data: expected x to hold numbers",
    ),
    (
        "npz-x-nan",
        lambda T: [*TRAIN, "--data", npz(T, x=np.full((12, 8, 8), np.nan))],
        "data: expected finite pixel values in x",
    ),
    (
        "npz-x-1d",
        lambda T: [*TRAIN, "--data", npz(T, x=np.zeros(12))],
        "data: expected x of shape (N, H, W[, C])",
    ),
    (
        "npz-no-y",
        lambda T: [*TRAIN, "--data", npz(T, y=None, labels=None)],
        "data: expected arrays 'x' and 'y'",
    ),
    (
        "data-dev-null",
        lambda T: [*TRAIN, "--data", "/dev/null"],
        "data: expected a folder or an .npz file, got '/dev/null', which is neither",
    ),
    (
        "data-txt-file",
        lambda T: [*TRAIN, "--data", a_file(T)],
        "data: expected a folder or an .npz file, got file",
    ),
    (
        "cifar-wrong-size",
        lambda T: [*TRAIN, "--data", cifar(T, np.zeros((4, 1000), np.uint8), [0, 1, 2, 3])],
        "data: expected 'data' to be a uint8 array of N x 3072",
    ),
    (
        "cifar-string-labels",
        lambda T: [*TRAIN, "--data", cifar(T, cifar_data(4), [b"a", b"b", b"c", b"d"])],
        "data: expected integer class ids in labels",
    ),
    (
        "cifar-label-1e9",
        lambda T: [*TRAIN, "--data", cifar(T, cifar_data(4), [0, 1, 2, 10**9])],
        "data: expected class ids in [0, 100000) in labels",
    ),
    (
        "cifar-label-count",
        lambda T: [*TRAIN, "--data", cifar(T, cifar_data(4), [0, 1])],
        "data: expected 4 labels in labels",
    ),
    (
        "cifar-labels-not-list",
        lambda T: [*TRAIN, "--data", cifar(T, cifar_data(4), 3)],
        "data: expected 'labels' to be a list of ints",
    ),
    (
        "cifar-data-list",
        lambda T: [*TRAIN, "--data", cifar(T, [1, 2, 3], [0])],
        "data: expected 'data' to be a uint8 array",
    ),
    (
        "cifar-label-beyond-names",
        lambda T: [*TRAIN, "--data", cifar(T, cifar_data(4), [0, 1, 2, 3], meta=[b"a", b"b"])],
        "data: expected train labels in [0, 2) (2 classes), got 0..3",
    ),
]


def _forged(checkpoint: Path, T: Path, edit: Callable[[dict], None], name: str = "f.pt") -> str:
    state = torch.load(checkpoint, weights_only=True)
    edit(state)
    torch.save(state, T / name)
    return str(T / name)


def _set(key: str, value: object) -> Callable[[dict], None]:
    def f(state: dict) -> None:
        if value is _DELETE:
            del state[key]
        else:
            state[key] = value

    return f


_DELETE = object()

CHECKPOINT_CASES: list[tuple[str, Callable[[Path, Path], list[str]], str]] = [
    (
        "evaluate-no-config",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("config", _DELETE))],
        "checkpoint: expected 'config' in",
    ),
    (
        "evaluate-config-not-dict",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("config", "x"))],
        "checkpoint: expected 'config' to be a dict",
    ),
    (
        "evaluate-mean-length",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("mean", [0.1, 0.2, 0.3]))],
        "checkpoint: expected 'mean' to be 1 finite numbers",
    ),
    (
        "evaluate-std-zero",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("std", [0.0]))],
        "checkpoint: expected 'std' to be 1 finite numbers (one per channel, positive)",
    ),
    (
        "evaluate-mean-nan",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("mean", [math.nan]))],
        "checkpoint: expected 'mean' to be 1 finite numbers",
    ),
    (
        "evaluate-empty-classes",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("classes", []))],
        "checkpoint: expected 'classes' to be 10 names (num_classes)",
    ),
    (
        "evaluate-num-classes-huge",
        lambda T, ck: ["evaluate", _forged(ck, T, _set("num_classes", 10**9))],
        "checkpoint: expected 'num_classes' in 1..100000",
    ),
    (
        "evaluate-batch-size-zero",
        lambda T, ck: ["evaluate", str(ck), "--batch-size", "0"],
        "batch-size: expected at least 1, got 0",
    ),
    (
        "evaluate-config-bad-value",
        lambda T, ck: ["evaluate", _forged(ck, T, lambda s: s["config"].update(lr="fast"))],
        "checkpoint: expected a valid config in",
    ),
    (
        "resume-no-optimizer",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("optimizer", _DELETE)),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'optimizer' in",
    ),
    (
        "resume-optimizer-junk",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("optimizer", {"a": 1})),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'optimizer' with 'state' and 'param_groups'",
    ),
    (
        "resume-optimizer-other-model",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, lambda s: s["optimizer"]["param_groups"][0].update(params=[0])),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected an optimizer state of a sgd optimizer of this model",
    ),
    (
        "resume-bad-rng",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("rng", {"torch": torch.zeros(3)})),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected rng['torch'] to be a uint8 tensor",
    ),
    (
        "resume-rng-invalid-state",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("rng", {"torch": torch.zeros_like(torch.get_rng_state())})),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected a valid torch RNG state",
    ),
    (
        "resume-nan-in-history",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, lambda s: s["history"][0].update(train_loss=math.nan)),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'history' rows of finite numbers and strings",
    ),
    (
        "resume-string-epoch",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("epoch", "1")),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'epoch' to be an int",
    ),
    (
        "resume-epoch-beyond",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("epoch", 99)),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'epoch' in 0..1",
    ),
    (
        "resume-no-step",
        lambda T, ck: [
            "train",
            "--quiet",
            "--resume",
            _forged(ck, T, _set("step", _DELETE)),
            "--out",
            str(T / "r"),
        ],
        "checkpoint: expected 'step' in",
    ),
]


@pytest.mark.parametrize(
    ("build", "needle"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES]
)
def test_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], build, needle: str) -> None:
    argv = build(tmp_path)
    if argv[0] != "preview" and "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "o")]
    code, out, err = run(argv, capsys)
    assert_one_error(code, out, err, needle, argv)
    assert not (tmp_path / "o").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("build", "needle"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str], build, needle: str) -> None:
    argv = [*build(tmp_path), "--out", str(tmp_path / "o")]
    code, out, err = run(argv, capsys)
    assert_one_error(code, out, err, needle, argv)
    assert not (tmp_path / "o" / "metrics.jsonl").exists()  # refused before training


@pytest.mark.parametrize(
    ("build", "needle"), [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES]
)
def test_bad_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint: Path, build, needle: str
) -> None:
    argv = build(tmp_path, checkpoint)
    code, out, err = run(argv, capsys)
    assert_one_error(code, out, err, needle, argv)


def test_cuda_without_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        argv = [
            *TRAIN,
            "--device",
            f"cuda:{torch.cuda.device_count()}",
            "--out",
            str(tmp_path / "o"),
        ]
        needle = "device: expected cuda:0..cuda:"
    else:
        argv = [*TRAIN, "--device", "cuda", "--out", str(tmp_path / "o")]
        needle = "device: expected an available device, got 'cuda' (no CUDA)"
    code, out, err = run(argv, capsys)
    assert_one_error(code, out, err, needle, argv)


def test_npz_with_twelve_images_and_five_labels_is_refused_not_cut(tmp_path: Path) -> None:
    from cutmix.train.data import load_data
    from cutmix.train.errors import UsageError

    with pytest.raises(UsageError, match="expected 12 labels"):
        load_data(npz(tmp_path, y=np.arange(5)))


def test_limit_per_class_keeps_exactly_k(tmp_path: Path) -> None:
    from cutmix.train.data import load_data

    s = load_data(npz(tmp_path, n=30), limit_per_class=10, val_fraction=0.5)
    assert len(s.train) + len(s.val) == 30  # all 10 of every class, none dropped


def test_internal_error_is_a_traceback_and_a_bug_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cutmix.train.loop as loop

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(loop, "build_model", boom)
    code, _, err = run([*TRAIN, "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert "Traceback" in err and "ZeroDivisionError: oops" in err
    assert (
        err.rstrip().splitlines()[-1].startswith("cutmix: internal error: this is a bug in cutmix")
    )
    assert "report it" in err and "cutmix: error:" not in err


def test_nan_loss_mid_run_stops_with_the_epoch_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A huge (but finite) learning rate: the loss overflows after the first epoch.
    out = tmp_path / "o"
    code, stdout, err = run(
        [*TRAIN[:-2], "--epochs", "4", "--lr", "1e30", "--out", str(out)], capsys
    )
    assert code == EXIT_DIVERGED and stdout == ""
    line = err.rstrip().splitlines()[-1]
    assert line.startswith("cutmix: error: train: expected a finite") and "at epoch " in line
    assert "Traceback" not in err and "val acc" not in stdout
    for row in (out / "metrics.jsonl").read_text().splitlines():  # strict JSON, finite numbers
        json.loads(row, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    summary = out / "summary.json"
    assert not summary.exists()


def test_npz_header_bigger_than_its_file(tmp_path: Path) -> None:
    """An uncompressed member declaring more bytes than it holds is refused before allocating."""
    from cutmix.train.data import load_data
    from cutmix.train.errors import UsageError

    path = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.uint8))
    header["shape"] = (2_000_000, 3072)
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue() + b"\0" * 16)
        z.writestr("y.npy", buf.getvalue())
    with pytest.raises(UsageError, match=r"expected x to fit in its \d+ bytes"):
        load_data(str(path))


def test_data_too_large_for_memory_is_refused_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cutmix.train.data as data

    root = tmp_path / "imgs" / "a"
    root.mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "0.png")
    monkeypatch.setattr(data, "_memory_bytes", lambda: 2 * 3 * 64 * 64 - 2)
    monkeypatch.setattr(data, "decode_image", lambda *a: pytest.fail("decoded"))
    argv = [
        *TRAIN,
        "--data",
        str(tmp_path / "imgs"),
        "--image-size",
        "64",
        "--out",
        str(tmp_path / "o"),
    ]
    code, out, err = run(argv, capsys)
    assert_one_error(code, out, err, "data: expected data that fits in memory", argv)
    assert "1 images of 3x64x64" in err


def test_os_errors_on_named_files_are_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cutmix.train.loop as loop

    def full(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "o" / "last.pt"))

    monkeypatch.setattr(loop, "save_checkpoint", full)
    argv = [*TRAIN, "--out", str(tmp_path / "o")]
    code, out, err = run(argv, capsys)
    needle = f"{tmp_path / 'o' / 'last.pt'}: expected a file or folder this user can read and write, got No space left on device"
    assert_one_error(code, out, err, needle, argv)


def count_cases() -> int:
    """The number of bad inputs pinned here (reported in the issue's note)."""
    return len(OPTION_CASES) + len(DATA_CASES) + len(CHECKPOINT_CASES) + 7
