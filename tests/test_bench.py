"""The benchmark keeps working: a tiny smoke run of every section (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cutmix import bench


@pytest.mark.slow
def test_smoke_run_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert bench.main(["--smoke", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    cases = {(r["section"], r["case"]) for r in data["rows"]}
    for case in [
        "copy_",
        "clone()",
        "cut_images sample",
        "cut_images sample out=",
        "cut_images sample inplace",
        "cut_images sample [loop]",
        "cut_images sample [masked]",
    ]:
        assert ("images", case) in cases
    assert ("targets", "mix_labels") in cases
    assert ("sampling", "sample_cutmix sample") in cases
    assert ("sampling", "sample_mixup alpha=0.2") in cases
    # --smoke never compiles (the torch.compile rows take seconds per shape).
    assert not any("compiled" in case for _, case in cases)
    assert ("train", "step with CutMix") in cases
    assert any(r["section"] == "scaling" for r in data["rows"])
    for r in data["rows"]:
        if r["n"]:
            assert r["median_ms"] > 0
    env = data["environment"]
    assert env["torch_threads"] >= 1 and env["allocator"]
    text = capsys.readouterr().out
    assert "| images |" in text and "×copy" in text


def test_goals_are_evaluated_from_rows() -> None:
    rows = [
        bench.Row("images", "float32 128x3x224x224", "copy_", 10.0, 3, "ref"),
        bench.Row("images", "float32 128x3x224x224", "clone()", 30.0, 3, "ref"),
        bench.Row("images", "float32 128x3x224x224", "cut_images sample", 31.0, 3),
        bench.Row("images", "float32 128x3x224x224", "peer X", 40.0, 3, "peer"),
    ]
    bench._ratios(rows)
    gs = {g["goal"]: g for g in bench.goals(rows)}
    g = gs["out of place, f32 128x3x224², ×clone"]
    assert g["measured"] == pytest.approx(31 / 30) and g["met"]
    peer = next(v for k, v in gs.items() if "fastest peer" in k)
    assert peer["met"] and peer["measured"] == pytest.approx(31 / 40)


def test_ratios_pair_the_rounds() -> None:
    # Round k of every case is compared with round k of the reference: a machine that slows down
    # for a round slows both. Ratios per round 2, 1, 2 -> 2 (the ratio of medians would be 4/3).
    ref = bench.Row("targets", "N=1 C=2", "copy_", 3.0, 3, "ref", times_ms=[1.0, 4.0, 3.0])
    row = bench.Row("targets", "N=1 C=2", "mix_labels", 4.0, 3, times_ms=[2.0, 4.0, 6.0])
    short = bench.Row("targets", "N=1 C=2", "slow", 8.0, 1, times_ms=[8.0])  # budget-capped
    bare = bench.Row("targets", "N=1 C=2", "no rounds", 6.0, 3)
    bench._ratios([ref, row, short, bare])
    assert row.ratios["copy"] == pytest.approx(2.0)
    assert short.ratios["copy"] == pytest.approx(8.0)  # paired with round 0 only
    assert bare.ratios["copy"] == pytest.approx(2.0)  # no per-round times: ratio of medians


def test_bad_device_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert bench.main(["--device", "cuda", "--quiet"]) == 2


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
