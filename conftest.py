"""Project-wide pytest hooks (the fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem

# Doctests that train a model or run a benchmark: end to end, seconds each. `make test-fast`
# leaves them out with the other `slow` tests; `make test` runs them.
SLOW_DOCTEST_MODULES = ("cutmix.train.loop", "cutmix.bench")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, DoctestItem) and item.name.startswith(SLOW_DOCTEST_MODULES):
            item.add_marker(pytest.mark.slow)
