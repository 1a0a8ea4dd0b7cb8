"""Shared fixtures: the devices to test on and a seeded generator."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
# A long, randomised hunt for rare cases: HYPOTHESIS_PROFILE=thorough pytest tests
settings.register_profile("thorough", max_examples=600, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite works on small tensors: intra-op threads only add barrier waits (on a busy 2-core
# machine, ~15 ms per op instead of ~20 µs). Override with CUTMIX_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("CUTMIX_TEST_THREADS", "1")))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def generator(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(1234)


@pytest.fixture
def isolated_data_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training tool's decoded-image cache in this test's own folder (CLI and data tests)."""
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "cache"))
