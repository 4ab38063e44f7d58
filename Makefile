# Two commands set up a fresh machine: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test dev bench bench-collect rehearsal postgres lint validate clean lock lock-check scan query-api-zip

# The venv runs the versions the image ships: first requirements.lock as the Dockerfile installs it (every file checked
# against its hash, wheels only), then the project with its `dev` and `local` extras. pip leaves a satisfied pin where
# it is, so that adds only what the lock lacks; an extra that excluded a pinned version would move it, and
# tests/test_lock.py would fail.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --only-binary :all: --no-deps -r requirements.lock
	$(BIN)/pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

## Start the embedded local stack and run the real jobs for the 3 newest closed partitions (`spotlake run-local`'s
## default --partitions); prints a summary.
run: $(STAMP)
	$(BIN)/spotlake run-local

## Run the test suite on TEST_WORKERS processes (pytest-xdist, a file at a time each: most tests wait on servers and
## subprocesses); JUnit XML goes to build/test-results/junit.xml. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	mkdir -p build/test-results
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --junitxml=build/test-results/junit.xml $(PYTEST_ARGS)

## dagster dev (UI on http://127.0.0.1:3000) on the embedded local stack.
dev: $(STAMP)
	$(BIN)/spotlake dev

## Full-scale benchmarks, each in its own process (merge vs legacy, history cost, ..., the production rehearsal);
## the last line is one JSON object with their numbers (benchmarks/bench.py). Inputs are cached under build/bench/.
bench: $(STAMP) postgres
	$(BIN)/python -m benchmarks.bench

## The production rehearsal alone: production's instance on PostgreSQL, daemon, code server and webserver, faults
## injected; one JSON object (benchmarks/rehearsal.py, 20 to 30 minutes).
rehearsal: $(STAMP) postgres
	$(BIN)/python -m benchmarks.rehearsal

## Debian's PostgreSQL server, for the rehearsal and its test; installed where missing (apt, as root or with sudo).
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

## Full-scale benchmark: wall time and peak memory of collecting price and IF, per page concurrency.
bench-collect: $(STAMP)
	$(BIN)/python -m benchmarks.collect_sources

lint: $(STAMP)
	$(BIN)/ruff check .

## requirements.lock: the production image's dependencies (pyproject.toml's, no extras) pinned with hashes for
## CPython 3.11 on linux/amd64, by a pinned uv. Keeps existing pins (every hash is taken from the index again);
## `make lock LOCK_ARGS=--upgrade` moves them all.
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
LOCK_ARGS ?=
LOCK_FILE ?= requirements.lock
# One resolution for `lock` and `lock-check`; docker/lockfile.py adds the lock's pins as preferences and --output-file.
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile pyproject.toml --quiet --no-config --no-strip-extras --generate-hashes \
	--python-version 3.11 --python-platform x86_64-manylinux_2_36 --only-binary :all: --custom-compile-command "make lock"
$(LOCK_VENV)/.uv-$(UV_VERSION):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	touch $@

lock: $(LOCK_VENV)/.uv-$(UV_VERSION)
	$(PYTHON) docker/lockfile.py lock $(LOCK_FILE) -- $(UV_COMPILE) $(LOCK_ARGS)

## Fails unless LOCK_FILE (requirements.lock) is exactly what `make lock` would write: first, offline and instant,
## the stamp of pyproject.toml's dependencies; then (network: PyPI, a few seconds) pyproject.toml resolved again by the
## pinned uv with the lock's versions preferred, and its pins and hash sets compared: a moved or edited pin or hash
## fails, naming the package.
lock-check: $(LOCK_VENV)/.uv-$(UV_VERSION)
	$(PYTHON) docker/lockfile.py check $(LOCK_FILE)
	$(PYTHON) docker/lockfile.py verify $(LOCK_FILE) -- $(UV_COMPILE)

## Static scan of infra/ (Terraform) and the Dockerfile with a pinned checkov in its own virtualenv: 0 failed checks.
CHECKOV_VERSION := 3.3.30
SCAN_VENV := .venv-scan
$(SCAN_VENV)/.checkov-$(CHECKOV_VERSION):
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

scan: $(SCAN_VENV)/.checkov-$(CHECKOV_VERSION)
	$(SCAN_VENV)/bin/checkov --directory infra --framework terraform --quiet --compact --skip-download
	$(SCAN_VENV)/bin/checkov --file Dockerfile --framework dockerfile --quiet --compact --skip-download

## The history query API's Lambda package (infra/modules/collector/query_api.tf deploys it): the handler's own modules
## (resources/query_api/package.py); boto3 and botocore, which they import, come with the Lambda Python runtime.
query-api-zip:
	$(PYTHON) -m resources.query_api.package build/spotlake-query-api.zip

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(SCAN_VENV) build
