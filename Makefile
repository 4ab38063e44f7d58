# Two commands set up a fresh machine: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test dev bench bench-collect lint validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the embedded local stack and materialize the newest closed partition; prints a summary.
run: $(STAMP)
	$(BIN)/spotlake run-local

## Run the test suite; JUnit XML goes to build/test-results/junit.xml.
test: $(STAMP)
	mkdir -p build/test-results
	$(BIN)/python -m pytest --junitxml=build/test-results/junit.xml $(PYTEST_ARGS)

## dagster dev (UI on http://127.0.0.1:3000) on the embedded local stack.
dev: $(STAMP)
	$(BIN)/spotlake dev

## Full-scale benchmarks, each in its own process (merge vs legacy, history cost, ...); the last line is one
## JSON object with their numbers (benchmarks/bench.py). Inputs are cached under build/bench/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench

## Full-scale benchmark: wall time and peak memory of collecting price and IF, per page concurrency.
bench-collect: $(STAMP)
	$(BIN)/python -m benchmarks.collect_sources

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build
