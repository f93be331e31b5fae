# MediaBeat: `make run` starts the service, `make test` runs the tests, `make check` runs every gate.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO ?= --demo
PYTEST_WORKERS ?= auto
# Packages an earlier MediaBeat installed and this one no longer uses: an upgraded venv drops them.
FORMER_DEPENDENCIES := py3langid

.PHONY: venv run test check lint format typecheck lock bench fuzz clean

$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "MediaBeat needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@$(BIN)/pip uninstall --yes --quiet --disable-pip-version-check $(FORMER_DEPENDENCIES) 2>/dev/null || true
	@touch $(STAMP)

venv: $(STAMP)

run: venv  ## migrate the embedded SQLite database and start the service with the local demo news site (DEMO= for none)
	@# The database is where every `mediabeat` command finds it (`mediabeat config` prints where), not in ./data.
	@if [ -f data/mediabeat.db ] && [ -z "$$MEDIABEAT_DATABASE_URL" ]; then \
	  echo "note: ./data/mediabeat.db is from an older MediaBeat, which kept it in the working directory;" \
	       "to keep using it: MEDIABEAT_DATABASE_URL=sqlite:///$$PWD/data/mediabeat.db make run"; fi
	$(BIN)/mediabeat db upgrade
	$(BIN)/mediabeat serve --host $(HOST) --port $(PORT) $(DEMO)

test: venv  ## the test suite (PostgreSQL too when MEDIABEAT_TEST_POSTGRES_URL is set), then the browser tests
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --ignore=tests/browser
	@# Playwright's sync API keeps an event loop running in its process: the browser tests get a pytest of their own.
	$(BIN)/pytest tests/browser

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy --strict src

check: lint typecheck test

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock:  ## re-pin dependencies (needs uv: pip install uv); requirements.lock is the runtime with the postgres extra, for images
	uv pip compile pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11
	uv pip compile pyproject.toml --extra postgres -o requirements.lock --python-version 3.11

bench: venv
	$(BIN)/python bench/scheduler_bench.py

FUZZ_SECONDS ?= 180
fuzz: venv  ## schemathesis over the whole API for FUZZ_SECONDS against serve on 127.0.0.1 (not part of make test)
	$(BIN)/python bench/fuzz_api.py $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
