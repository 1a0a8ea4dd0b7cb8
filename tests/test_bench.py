"""The benchmarks keep working: ``cutmix bench`` and a smoke run of ``python -m benchmarks.run``.

No timing asserts: what is checked is that every case runs, that ratios pair rounds, and that the
goal tables are computed from the rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cutmix import bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def benchmarks_pkg(monkeypatch: pytest.MonkeyPatch):
    """The checkout's ``benchmarks`` package (not part of the installed library)."""
    if not (ROOT / "benchmarks" / "run.py").exists():
        pytest.skip("not a checkout")
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.goals
    import benchmarks.run

    return benchmarks


def test_cutmix_bench_times_ours_against_copy_and_clone(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--smoke", "--device", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    cases = [r["case"] for r in rows]
    assert cases[:2] == ["copy_", "clone()"] and len(cases) == 6
    assert {r["section"] for r in rows} == {"cpu"}
    for r in rows:
        assert r["n"] == 3 and r["median_ms"] > 0 and set(r["ratios"]) == {"copy", "clone"}
    text = capsys.readouterr().out
    assert "| cpu | float32 8x3x16x16 | cut_images inplace |" in text and "×clone" in text


def test_cutmix_bench_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    if not torch.cuda.is_available():
        assert bench.main(["--device", "cuda", "--quiet"]) == 2
        assert "cutmix: error: bench: expected --device cuda" in capsys.readouterr().err
    for shape in ("1,2,3", "a,b,c,d", "0,3,4,4"):
        assert bench.main(["--shape", shape, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "expected --shape N,C,H,W" in err


def test_ratios_pair_the_rounds() -> None:
    # Round k of every case is compared with round k of the reference: a machine that slows down
    # for a round slows both. Ratios per round 2, 1, 2 -> 2 (the ratio of medians would be 4/3).
    ref = bench.Row("targets", "N=1 C=2", "copy_", 3.0, 3, "ref", times_ms=[1.0, 4.0, 3.0])
    row = bench.Row("targets", "N=1 C=2", "mix_labels", 4.0, 3, times_ms=[2.0, 4.0, 6.0])
    short = bench.Row("targets", "N=1 C=2", "slow", 8.0, 1, times_ms=[8.0])  # budget-capped
    bare = bench.Row("targets", "N=1 C=2", "no rounds", 6.0, 3)
    bench.set_ratios([ref, row, short, bare], {"copy": "copy_"})
    assert row.ratios["copy"] == pytest.approx(2.0)
    assert short.ratios["copy"] == pytest.approx(8.0)  # paired with round 0 only
    assert bare.ratios["copy"] == pytest.approx(2.0)  # no per-round times: ratio of medians


def test_timer_runs_the_before_hook_untimed_before_every_call() -> None:
    calls: list[str] = []
    timer = bench.Timer(
        torch.device("cpu"), reps=4, warmup=2, budget_s=10.0, before=lambda: calls.append("b")
    )
    res = timer.run({"a": lambda: calls.append("a"), "c": lambda: calls.append("c")})
    assert {k: n for k, (_, n) in res.items()} == {"a": 4, "c": 4}
    # 2 warm-up + 4 timed calls per case, each right after the hook
    assert calls.count("b") == 12 and calls.count("a") == calls.count("c") == 6
    assert all(calls[i] == "b" for i in range(0, len(calls), 2))


def test_cutmix_does_not_import_benchmarks() -> None:
    # benchmarks/ may import cutmix, never the other way round.
    for path in (ROOT / "src" / "cutmix").rglob("*.py"):
        text = path.read_text()
        assert "import benchmarks" not in text and "from benchmarks" not in text, path


@pytest.mark.slow
def test_full_benchmark_smoke_run_writes_json(benchmarks_pkg, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert benchmarks_pkg.run.main(["--smoke", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    cases = {(r["section"], r["case"]) for r in data["rows"]}
    for case in [
        "copy_",
        "clone()",
        "cut_images sample",
        "cut_images sample out=",
        "cut_images sample inplace",
        "cut_images sample [loop]",
        "cut_images sample inplace [masked]",
    ]:
        assert ("images", case) in cases
    assert ("targets", "mix_labels") in cases
    assert ("sampling", "sample_mixup alpha=0.2") in cases
    assert ("train", "step with CutMix") in cases
    assert any(r["section"] == "scaling" for r in data["rows"])
    assert data["environment"]["torch_threads"] >= 1 and data["environment"]["allocator"]
    assert "| images |" in capsys.readouterr().out


def _rows(loaded_factor: float) -> list[bench.Row]:
    """Hand-made images rows of the big shape: ours, the forced kernels, the references, peers."""
    shape = "float32 128x3x224x224"
    ms = {
        "copy_": 10.0,
        "clone()": 30.0,
        "cut_images sample": 31.0,
        "cut_images sample inplace": 11.0,
        "cut_images sample [loop]": 40.0,
        "cut_images sample [native]": 31.0,
        "cut_images sample inplace [loop]": 6.0,
        "cut_images sample inplace [native]": 11.0,
        "CutMix() sample (+sample, targets)": 33.0 * loaded_factor,
        "timm Mixup elem (in place)": 60.0,
        "torchvision v2 CutMix": 100.0,
    }
    rows = [
        bench.Row(
            "images", shape, k, v, 3, "peer" if k.startswith(("timm", "torchvision")) else "ours"
        )
        for k, v in ms.items()
    ]
    bench.set_ratios(rows, {"copy": "copy_", "clone": "clone()"})
    return rows


def test_load_goals_are_evaluated_from_rows(benchmarks_pkg) -> None:
    gs = {g["goal"]: g for g in benchmarks_pkg.goals.load_goals(_rows(1.0), loaded=False)}
    big = "float32 128x3x224x224"
    g = gs[f"{big} out of place: auto ÷ best kernel (native)"]
    assert g["measured"] == pytest.approx(1.0) and g["met"]
    g = gs[f"{big} in place: auto ÷ best kernel (loop)"]
    assert g["measured"] == pytest.approx(11 / 6) and not g["met"]  # over 1.5x
    assert gs[f"{big} full call ×clone"]["measured"] == pytest.approx(1.1)
    assert gs[f"{big} full call ×clone"]["target"] == 1.3 and gs[f"{big} full call ×clone"]["met"]
    assert gs[f"{big} in place ×copy"]["measured"] == pytest.approx(1.1)
    assert gs[f"{big} full call ÷ timm Mixup elem (in place)"]["met"]
    assert gs[f"{big} full call ÷ torchvision v2 CutMix"]["measured"] == pytest.approx(0.33)
    # Loaded: looser targets (2.5x clone, 4x copy): 2.2x a clone passes there and not quiet.
    loaded = {g["goal"]: g for g in benchmarks_pkg.goals.load_goals(_rows(2.0), loaded=True)}
    assert loaded[f"{big} full call ×clone"]["target"] == 2.5
    assert loaded[f"{big} full call ×clone"]["met"]
    quiet = {g["goal"]: g for g in benchmarks_pkg.goals.load_goals(_rows(2.0), loaded=False)}
    assert not quiet[f"{big} full call ×clone"]["met"]


@pytest.mark.slow
def test_hogs_start_and_stop(benchmarks_pkg) -> None:
    import os

    from benchmarks.hog import hogging

    with hogging(procs=1, seconds=60) as pids:
        assert len(pids) == 1 and os.path.exists(f"/proc/{pids[0]}")
    # terminated and reaped when the block exits
    assert not os.path.exists(f"/proc/{pids[0]}")
