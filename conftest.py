"""Project-wide pytest hooks (the fixtures are in tests/conftest.py).

- Doctests that train a model or run a benchmark are marked `slow` (`make test-fast` leaves them out).
- The doctests of an integration module are skipped when its library is not installed.
"""

from __future__ import annotations

import importlib.util

import pytest
from _pytest.doctest import DoctestItem

# Doctests that train a model or run a benchmark: end to end, seconds each.
SLOW_DOCTEST_MODULES = ("cutmix.train.loop", "cutmix.bench")

_NEEDS = {
    "timm": "timm",
    "torchvision": "torchvision",
    "lightning": "lightning",
    "transformers": "transformers",
}

collect_ignore = [
    f"src/cutmix/integrations/{module}.py"
    for module, library in _NEEDS.items()
    if importlib.util.find_spec(library) is None
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, DoctestItem) and item.name.startswith(SLOW_DOCTEST_MODULES):
            item.add_marker(pytest.mark.slow)
