# StreamRec: `make demo` runs the main job, `make test` runs lint + tests.
# Both install everything first (into .venv) when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all lint bench clean

install: $(STAMP)

# torch is pinned first so that pip takes the CPU wheel and never pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,gbdt]'
	touch $(STAMP)

demo: install
	$(BIN)/streamrec quickstart

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -m "not slow"

# everything, including the slow tests on ../shared/data
test-all: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache
