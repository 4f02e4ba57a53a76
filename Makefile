# The README's two commands. Both set everything up first (idempotent; stamp files make a
# second run skip the installs):
#   make demo   run the main job against the local test server (or COUCHDB_URL)
#   make test   lint, type-check and run every test
#   make bench  benchmarks against raw HTTP (not part of test; BENCH_ARGS=--quick for CI sizes)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed-sqlalchemy-couchdb

.PHONY: demo test bench setup lint typecheck pytest clean-setup

demo: setup
	$(PY) -m demo

test: setup lint typecheck pytest

bench: setup
	$(PY) -m bench $(BENCH_ARGS)

setup: $(PIP_STAMP)
	@# No-op unless testserver/node_modules is missing or package-lock.json changed.
	$(PY) -m testserver install

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalled when pyproject.toml changes; the stamp lives in the venv, so a new venv
# always gets a fresh install.
$(PIP_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[postgresql,mysql,test,bench]'
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy testserver demo tests/conftest.py

# pytest exits 5 when it collects no test; make fails on it like on any other error.
pytest: setup
	$(VENV)/bin/pytest
	@# Silent unless the suite exists, so that pytest's summary stays the run's last line.
	@# The compliance suite runs on its own (see tests/compliance/conftest.py): the sync
	@# driver, then the async one (the [db] alias "async" in test.cfg).
	@if [ -f tests/compliance/test_suite.py ]; then \
		echo "$(VENV)/bin/pytest tests/compliance"; $(VENV)/bin/pytest tests/compliance && \
		echo "$(VENV)/bin/pytest tests/compliance --db async" && \
		$(VENV)/bin/pytest tests/compliance --db async; \
	fi

clean-setup:
	rm -rf testserver/node_modules $(PIP_STAMP)
