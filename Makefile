# StreamRec: `make demo` runs the main job, `make test` runs lint + tests.
# Both install everything first (into .venv) when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve test test-all lint bench clean
WORKDIR ?= streamrec-quickstart
PORT ?= 8000

install: $(STAMP)

# torch is pinned first so that pip takes the CPU wheel and never pulls a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,gbdt]'
	touch $(STAMP)

# generate -> clean -> split -> train/evaluate baselines -> train + register the serving
# models, then the serving walk-through (start the service, request, post events, see the
# recommendations change, cold start, sessions, a new item, bad input, metrics, stop)
demo: install
	$(BIN)/streamrec quickstart --workdir $(WORKDIR)
	$(BIN)/streamrec demo --workdir $(WORKDIR)

# the service on the quickstart's registry (runs the quickstart first when it is missing)
serve: install
	@test -d $(WORKDIR)/registry/ranker || $(BIN)/streamrec quickstart --workdir $(WORKDIR)
	$(BIN)/streamrec serve --registry $(WORKDIR)/registry --port $(PORT)

# mypy: strict (typed defs) on serve/ and data/, plain on eval/ and the model interface
MYPY_PATHS ?= src/streamrec/serve src/streamrec/data src/streamrec/eval \
	src/streamrec/models/base.py

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy $(MYPY_PATHS)

test: lint
	$(BIN)/python -m pytest -q -m "not slow"

# everything, including the slow tests on ../shared/data
test-all: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
