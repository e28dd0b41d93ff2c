# Two entry points for a fresh machine with only python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint format docs fixtures bench clean

# pip's output goes to a log, shown only when an install fails: `make demo` prints the report.
PIP = $(BIN)/python -m pip install --quiet --disable-pip-version-check
LOG = $(VENV)/pip.log
QUIET = >>$(LOG) 2>&1 || { cat $(LOG); exit 1; }

$(BIN)/python:
	@echo "Creating $(VENV) (a minute on a fresh machine)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip $(QUIET)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing labelaudit into $(VENV)..."
	@$(PIP) -e . $(QUIET)
	@touch $@

# torch==2.13.0 first: the CPU build on this machine's disk, so the [torch] extra pulls nothing
# more (the extra itself accepts any torch >= 2.2).
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing labelaudit with its test dependencies into $(VENV)..."
	@$(PIP) torch==2.13.0 $(QUIET)
	@$(PIP) -e '.[dev,torch,ray,embeddings]' $(QUIET)
	@touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/labelaudit scan fixtures/cifar10-test/labels.csv --top 5 \
		--preds fixtures/cifar10-test/preds.parquet

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(TEST_STAMP)
	$(BIN)/python -m labelaudit._docs > docs/cli.md

fixtures: $(DEMO_STAMP)
	$(BIN)/python fixtures/make_fixtures.py

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/scan_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
