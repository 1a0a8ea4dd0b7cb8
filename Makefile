# Everything a fresh machine needs: `make demo` (the main job) and `make test` (the suite).
# torch 2.14.1 + torchvision 0.29.1 so the tv_tensors interop tests run; the library itself needs torch only.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test test-fast lint static bench

$(BIN)/cutmix: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e ".[test]"
	touch $(BIN)/cutmix

setup: $(BIN)/cutmix

demo: setup
	$(BIN)/cutmix compare --out reports/digits

# PYTHONPATH=src: the import graph and the types of this checkout, whatever the venv points at.
RUFF_CHECK := $(BIN)/ruff check src tests benchmarks conftest.py
LINT_IMPORTS := PYTHONPATH=src $(BIN)/lint-imports --no-logo
MYPY := PYTHONPATH=src $(BIN)/mypy

# The static checks CI runs (through `make test`): format, lint, the import layers, the types.
static: setup
	$(BIN)/ruff format --check src tests benchmarks conftest.py
	$(RUFF_CHECK)
	$(LINT_IMPORTS)
	$(MYPY)

test: static
	$(BIN)/python -m pytest -q

# The inner loop (about a minute on 2 idle cores): no `slow` tests (end-to-end runs, subprocesses,
# statistical tests over 10k draws, doctests that train or benchmark), the `dev` hypothesis
# profile, and not the Lightning / Hugging Face Trainer runs. `make test` runs everything.
test-fast: setup
	HYPOTHESIS_PROFILE=dev $(BIN)/python -m pytest -q -m "not slow" \
		--ignore=tests/test_integrations_lightning.py --ignore=src/cutmix/integrations/lightning.py \
		--ignore=tests/test_integrations_transformers.py --ignore=src/cutmix/integrations/transformers.py

lint: setup
	$(BIN)/ruff format --check src tests benchmarks conftest.py
	$(RUFF_CHECK)
	$(LINT_IMPORTS)
	$(MYPY)

bench: setup
	$(BIN)/python -m benchmarks.run
