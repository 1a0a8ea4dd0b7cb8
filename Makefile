# Everything a fresh machine needs: `make demo` (the main job) and `make test` (the suite).
# torch 2.14.1 + torchvision 0.29.1 so the tv_tensors interop tests run; the library itself needs torch only.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test lint bench

$(BIN)/cutmix: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e ".[test]"
	touch $(BIN)/cutmix

setup: $(BIN)/cutmix

demo: setup
	$(BIN)/cutmix compare --out reports/digits

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

bench: setup
	$(BIN)/python -m benchmarks.run
