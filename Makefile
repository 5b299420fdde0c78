# One-command set-up, tests and demo. Only Python 3.10+ needs to be present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install lint test test-slow test-all demo docs bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev,cohort,docs]"
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

# docs: the site (MkDocs, Material, mkdocstrings; the CLI page generated from the parser) into site/;
# --strict: any warning (a broken link, a docstring that does not parse) fails the build
docs: install
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --quiet

bench: install
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf $(VENV) out site .pytest_cache
