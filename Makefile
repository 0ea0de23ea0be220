# Two commands for a fresh machine (see README.md):
#   make demo   set up .venv, then run the reconciliation DAG against the local sandbox into SQLite
#   make test   set up .venv, then run the test suite
# Both need only python3 (>= 3.10) with venv; the first run installs the dependencies from PyPI.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo-leads: setup
	$(PY) scripts/demo_leads.py

bench: setup
	$(PY) benchmarks/bench_hook.py
	$(PY) benchmarks/bench_sync.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
