"""The deferrable example DAG completes under a real scheduler + triggerer with LocalExecutor.

``dag.test()`` runs triggers in the test process with direct database access; here the sensor
really defers: its trigger runs in the triggerer service, reads the connection through the
Task SDK, polls the sandbox, and the task resumes in a LocalExecutor worker.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

DAG_ID = "ghl_example_new_lead_followup"
SENSOR = "wait_for_new_leads"


def _wait_until_deferred(cluster: Any, runner: threading.Thread, timeout_s: float = 240.0) -> None:
    """Block until the sensor's task instance is deferred (or the run ended / timed out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and runner.is_alive():
        with sqlite3.connect(f"file:{cluster.db_path}?mode=ro", uri=True, timeout=30) as db:
            row = db.execute(
                "SELECT 1 FROM task_instance WHERE dag_id=? AND task_id=? AND state='deferred'", (DAG_ID, SENSOR)
            ).fetchone()
        if row:
            return
        time.sleep(0.5)
    raise AssertionError(f"{SENSOR} never deferred (run thread alive: {runner.is_alive()})")


@pytest.mark.integration
def test_new_lead_is_followed_up_after_the_sensor_waited_in_the_triggerer(airflow_cluster) -> None:
    sandbox = airflow_cluster.sandbox
    lead = sandbox.admin.dump()["contacts"][20]
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["run"] = airflow_cluster.run_dag(DAG_ID, timeout=300)
        except Exception as exc:  # reported below with the run's description
            box["error"] = exc

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    _wait_until_deferred(airflow_cluster, runner)
    # Only now, while the trigger polls from the triggerer, a CRM user tags the lead.
    sandbox.admin.update_contact(lead["id"], tags=[*lead["tags"], "new-lead"])
    runner.join(330)
    assert "error" not in box, box.get("error")
    result = box["run"]
    assert result.state == "success", result.describe()
    assert result.task_states[SENSOR] == "success"
    assert result.task_states["create_follow_up_task[0]"] == "success", result.describe()

    data = sandbox.admin.dump()
    assert [t["title"] for t in data["tasks"] if t["contactId"] == lead["id"] and t["title"] == "Call the new lead"]
    tags = {c["id"]: c for c in data["contacts"]}[lead["id"]]["tags"]
    assert "followed-up" in tags and "new-lead" not in tags


ASSET_DAG_ID = "ghl_example_contacts_changed_asset"


def _asset_runs(cluster: Any) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{cluster.db_path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT run_id, state FROM dag_run WHERE dag_id=? ORDER BY id", (ASSET_DAG_ID,)).fetchall()


def _task_state(cluster: Any, run_id: str, task_id: str) -> str | None:
    with sqlite3.connect(f"file:{cluster.db_path}?mode=ro", uri=True, timeout=30) as db:
        row = db.execute(
            "SELECT state FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=?", (ASSET_DAG_ID, run_id, task_id)
        ).fetchone()
    return row[0] if row else None


@pytest.mark.integration
def test_a_contact_change_schedules_the_asset_driven_dag(airflow_cluster) -> None:
    sandbox = airflow_cluster.sandbox
    # The watcher starts watching when the triggerer first runs it; make the change after that,
    # then wait for the scheduled run (the watcher polls every 30 s).
    deadline = time.monotonic() + 240
    log = airflow_cluster.service_logs["triggerer"]
    while "watching contacts changed after" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the contacts watcher never started in the triggerer"
        time.sleep(0.5)
    contact = sandbox.admin.dump()["contacts"][42]
    sandbox.admin.update_contact(contact["id"], city="Kraków")
    # Earlier tests' changes may schedule runs too: wait for the run that fetched this contact.
    while True:
        runs = _asset_runs(airflow_cluster)
        mine = [(r, s) for r, s in runs if s in ("success", "failed") and contact["id"] in _fetched(airflow_cluster, r)]
        failed = [(r, s) for r, s in runs if s == "failed"]
        assert not failed, f"asset-triggered run failed: {failed}"
        if mine:
            break
        assert time.monotonic() < deadline, f"no asset-triggered run fetched {contact['id']}; runs: {runs}"
        time.sleep(1)
    run_id, state = mine[0]
    assert state == "success" and _task_state(airflow_cluster, run_id, "fetch_changed_contacts") == "success"


def _fetched(cluster: Any, run_id: str) -> str:
    """The XCom result of ``fetch_changed_contacts`` in a run, as stored text ("" if none)."""
    with sqlite3.connect(f"file:{cluster.db_path}?mode=ro", uri=True, timeout=30) as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id='fetch_changed_contacts' AND key='return_value'",
            (ASSET_DAG_ID, run_id),
        ).fetchone()
    if not row or row[0] is None:
        return ""
    return row[0].decode(errors="replace") if isinstance(row[0], bytes) else str(row[0])
