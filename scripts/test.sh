#!/usr/bin/env bash
# `make test`: the whole suite in two pytest processes at once, so the run lasts about as long as
# the longer of them rather than their sum (most tests wait on HTTP, child processes, databases
# and Airflow services, not on the CPU):
#   * the integration layer (real Airflow deployments: LocalExecutor, CeleryExecutor, the UI in a
#     browser, the wheel in a fresh venv), one deployment shared by its tests, output in a log
#     printed when it ends;
#   * everything else (the fast and contract layers), on stdout, spread over GHL_TEST_WORKERS
#     (default 3) pytest-xdist workers, a test module per worker at a time (--dist loadfile: a
#     module's tests share its fixtures, PostgreSQL schemas and Redis keys).
# With arguments, it is a plain `pytest <arguments>` (e.g. `make test PYTEST_ARGS="-m fast"`).
set -u
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
if [ "$#" -gt 0 ]; then
  exec "$PY" -m pytest "$@"
fi
tmp="$(mktemp -d "${TMPDIR:-/tmp}/ghl-tests-XXXXXX")"
"$PY" -m pytest -m integration --basetemp "$tmp/integration" >"$tmp/integration.log" 2>&1 &
integration=$!
"$PY" -m pytest -m "not integration" -n "${GHL_TEST_WORKERS:-3}" --dist loadfile --basetemp "$tmp/rest"
rest=$?
wait "$integration"
integration_rc=$?
echo
echo "================ integration layer (real Airflow services), run alongside the above ================"
cat "$tmp/integration.log"
echo "fast + contract layers: exit $rest; integration layer: exit $integration_rc"
rm -rf "$tmp"
[ "$rest" -eq 0 ] && [ "$integration_rc" -eq 0 ]
