# Two commands for a fresh machine (see README.md):
#   make demo   set up .venv, then run the reconciliation DAG against the local sandbox into SQLite
#   make test   set up .venv, then run the test suite
# Also: make demo-leads (leads into HighLevel and the two-way sync against the sandbox), make bench.
# Both need only python3 (>= 3.10) with venv; the first run installs the dependencies from PyPI.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo demo-leads test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) scripts/demo.py

demo-leads: setup
	$(PY) scripts/demo_leads.py

# scripts/test.sh runs the integration layer and the rest in two pytest processes at once (most
# tests wait on I/O, not the CPU); with PYTEST_ARGS it is a plain pytest run.
test: setup
	PY=$(PY) scripts/test.sh $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/bench_hook.py
	$(PY) benchmarks/bench_sync.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
