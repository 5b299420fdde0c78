# One-command set-up, tests and demo. Only Python 3.10+ needs to be present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install lint test test-slow test-all demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev,cohort]"
	touch $(STAMP)

# lint: formatting, a ruff rule set and mypy on the package (settings in pyproject.toml)
lint: install
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

# test: lint and the fast tests; test-slow: the tests marked slow; test-all (CI): both
test: lint
	$(BIN)/python -m pytest -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -m slow

test-all: test test-slow

demo: install
	$(BIN)/python examples/demo.py --output-dir out/demo

bench: install
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) out .pytest_cache
