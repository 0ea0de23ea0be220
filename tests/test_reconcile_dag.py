"""The ``ghl_contacts_reconcile`` DAG, run with ``dag.test()`` against the sandbox.

A user installs the provider, sets ``ghl_default``, and the DAG fills SQLite under AIRFLOW_HOME
(no ``ghl_target`` needed); an agency syncs several sub-accounts in one run; downstream DAGs get
an asset event per table with the counts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ghl_sandbox.scenario import apply_mutations

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "ghl_contacts_reconcile"


@pytest.fixture
def reconcile_dag(airflow_db: Path) -> Any:
    """The DAG, parsed afresh for each test (``dag.test(run_conf=...)`` leaves the conf in the
    DAG object's params, which would leak into the next test)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "ghl_contacts_reconcile.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(DAG_ID)
    for task in dag.tasks:
        task.retries = 0  # failures here are meant; no 30 s retry delays in tests
    return dag


def agency_connection(sandbox: Any, token_file: Path) -> str:
    """An OAuth agency (Company) connection, as an agency installs a marketplace app: the hook
    exchanges its token for each sub-account's location token."""
    import httpx

    client_id, secret = sandbox.admin.create_oauth_client()
    code = sandbox.admin.authorize(client_id, user_type="Company", company_id=sandbox.company_id)
    tokens = httpx.post(
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "authorization_code",
              "code": code, "user_type": "Company"},
    ).json()
    extra = {
        "auth_type": "oauth", "client_id": client_id, "client_secret": secret,
        "refresh_token": tokens["refresh_token"], "user_type": "Company", "company_id": sandbox.company_id,
        "rotation_store": f"file:{token_file}",
    }
    return json.dumps({"conn_type": "ghl", "host": sandbox.base_url, "extra": extra})


@pytest.fixture
def embedded_target() -> Iterator[Path]:
    """The embedded default target file, absent before and removed after the test."""
    path = Path(os.environ["AIRFLOW_HOME"]) / "ghl_contacts.sqlite"
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    yield path
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def _counts(path: Path, location_id: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE location_id = ? AND deleted_at IS NULL", (location_id,)
            ).fetchone()[0]
            for table in ("ghl_contacts", "ghl_tasks", "ghl_notes")
        }


def _task_states(run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}


def _asset_events(run_id: str) -> dict[str, dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
        ).all()
    return {name: extra for name, extra in rows}


def _error_lines(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every error-level line logged so far: structlog's console lines (``[error    ]``) on
    stdout/stderr and stdlib records at ERROR or above."""
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if re.search(r"\[(error|critical|exception)\s*\]", line)]
    return lines + [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_dag_syncs_into_the_embedded_sqlite_and_emits_asset_events(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, embedded_target: Path,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.admin.reset(contacts=60)
    truth = sandbox.admin.dump()

    first = reconcile_dag.test()
    assert str(first.state) == "success", _task_states(first)
    # A successful run logs nothing at error level (publish_report used to probe the mapped
    # reports' XCom one offset too far: "[error] XCom not found ... offset=1").
    assert _error_lines(capfd, caplog) == []
    assert _counts(embedded_target, sandbox.location_id) == {
        "ghl_contacts": len(truth["contacts"]),
        "ghl_tasks": len(truth["tasks"]),
        "ghl_notes": len(truth["notes"]),
    }
    events = _asset_events(first.run_id)
    assert set(events) == {"ghl_contacts", "ghl_tasks", "ghl_notes"}
    assert events["ghl_contacts"]["inserted"] == 60
    assert events["ghl_contacts"]["locations"] == [sandbox.location_id]

    done = apply_mutations(sandbox.admin)
    second = reconcile_dag.test(run_conf={"full_sweep": True})
    assert str(second.state) == "success", _task_states(second)
    truth = sandbox.admin.dump()
    assert _counts(embedded_target, sandbox.location_id) == {
        "ghl_contacts": len(truth["contacts"]),
        "ghl_tasks": len(truth["tasks"]),
        "ghl_notes": len(truth["notes"]),
    }
    events = _asset_events(second.run_id)
    assert events["ghl_contacts"]["inserted"] == len(done.contacts_created)
    assert events["ghl_contacts"]["deleted"] == len(done.contacts_deleted)
    with sqlite3.connect(embedded_target) as db:
        state = dict(db.execute("SELECT name, value_json FROM ghl_sync_state").fetchall())
        columns = {row[1] for row in db.execute("PRAGMA table_info(ghl_contacts)")}
    assert json.loads(state["last_run"])["mode"] == "full"
    # The location's own custom fields are columns, whatever their names.
    assigned = json.loads(state["custom_field_columns"])["fields"]
    assert {f["id"] for f in truth["customFields"]} == set(assigned)
    assert {a["column"] for a in assigned.values()} <= columns
    assert _error_lines(capfd, caplog) == []


def test_dag_syncs_several_locations_in_parallel_mapped_tasks(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.admin.reset(contacts=30)
    second_location = sandbox.admin.add_location(contacts=25)
    target = tmp_path / "agency.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_AGENCY_TARGET", json.dumps({"conn_type": "sqlite", "host": str(target)}))
    monkeypatch.setenv("AIRFLOW_CONN_GHL_AGENCY", agency_connection(sandbox, tmp_path / "tokens.json"))

    run = reconcile_dag.test(
        run_conf={
            "location_ids": [sandbox.location_id, second_location],
            "source_conn_id": "ghl_agency",
            "target_conn_id": "agency_target",
        }
    )
    states = _task_states(run)
    assert str(run.state) == "success", states
    assert states["reconcile[0]"] == states["reconcile[1]"] == "success"
    for location in (sandbox.location_id, second_location):
        truth = sandbox.admin.dump(location)
        assert _counts(target, location)["ghl_contacts"] == len(truth["contacts"])
        assert _counts(target, location)["ghl_tasks"] == len(truth["tasks"])


@pytest.fixture
def alert_webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A local HTTP endpoint standing in for a Slack webhook; yields the alerts it received."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GHL_RECONCILE_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    yield received
    server.shutdown()
    thread.join(timeout=10)


def test_a_missing_target_connection_fails_the_run_and_alerts(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, alert_webhook: list[dict[str, Any]]
) -> None:
    sandbox.admin.reset(contacts=5)
    run = reconcile_dag.test(run_conf={"target_conn_id": "no_such_target"})
    assert str(run.state) == "failed"
    assert _task_states(run)["reconcile[0]"] == "failed"
    assert len(alert_webhook) == 1
    text = alert_webhook[0]["text"]
    assert "ghl_contacts_reconcile.reconcile[0]" in text and "no_such_target" in text
    assert sandbox.token not in text


def test_a_failing_alert_webhook_does_not_log_its_url(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook URL is a secret (Slack puts the token in its path); requests' errors quote it."""
    import logging

    from airflow_provider_contacts.sync.alerts import failure_alert

    monkeypatch.setenv("GHL_RECONCILE_ALERT_WEBHOOK", "http://127.0.0.1:1/services/T0/B0/secret-token")
    with caplog.at_level(logging.ERROR, logger="airflow_provider_contacts.sync.alerts"):
        failure_alert({"run_id": "r1", "exception": RuntimeError("boom")})
    assert "did not accept the alert: ConnectionError" in caplog.text
    assert "secret-token" not in caplog.text
