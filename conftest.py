"""Root conftest: skip the doctests of integration modules whose library is not installed."""

import importlib.util

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
