"""The event path under real Airflow services: a change made in the sandbox reaches the target
table within seconds.

sandbox change -> signed event -> standalone receiver (``python -m airflow_provider_contacts.webhooks``)
stores it in ``ghl_webhook_events`` of the target -> ``GHLWebhookEventTrigger`` in the triggerer
sees it -> asset event -> ``ghl_contacts_events`` run (scheduler, LocalExecutor worker) -> the
reconcile applies the event -> the row is updated and the event consumed by that run.

The cluster (``airflow_cluster`` in conftest.py) runs ``dags/ghl_contacts_events.py`` with its own
SQLite target ``ghl_events_it``, event-triggered runs only and a watcher polling every second.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

# The shared cluster may start inside this test (about 20 s; minutes on a loaded machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAG_ID = "ghl_contacts_events"
MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"


def _preload(cluster: Any, target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first (full) load of the target, in this process: the run measured below is the event path."""
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

    monkeypatch.setenv("AIRFLOW_CONN_GHL_EVENTS_IT_SOURCE", cluster.sandbox.conn_json())
    mapping = FieldMapping.load(MAPPING_FILE)
    hook = ContactsHook(ghl_conn_id="ghl_events_it_source")
    try:
        with SqlSink(EmbeddedSqliteHook(target), mapping) as sink:
            ReconcileEngine(hook, sink, mapping).run()
    finally:
        hook.close()


def _start_receiver(cluster: Any) -> tuple[subprocess.Popen[str], str]:
    keys = cluster.sandbox.admin.webhook_keys()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_contacts.webhooks", "--host", "127.0.0.1", "--port", "0",
         "--target-conn-id", "ghl_events_it", "--rsa-public-key", keys["rsa_public_key_pem"],
         "--ed25519-public-key", keys["ed25519_public_key_pem"], "--log-level", "warning"],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    try:
        first = json.loads(line)
    except ValueError:
        proc.kill()
        raise AssertionError(f"the receiver did not start: {line}{proc.stdout.read()}") from None  # type: ignore[union-attr]
    assert first["event"] == "listening", first
    return proc, first.get("events_url") or first["url"].rstrip("/") + "/events"


def _row(target: Path, contact_id: str) -> tuple[Any, ...] | None:
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT city, last_synced_at FROM ghl_contacts WHERE id = ?", (contact_id,)).fetchone()


def _consumed_by(target: Path, contact_id: str) -> list[str | None]:
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute("SELECT consumed_by_run FROM ghl_webhook_events WHERE contact_id = ?", (contact_id,)).fetchall()
    return [r[0] for r in rows]


def test_a_sandbox_change_reaches_the_target_through_the_event_path(airflow_cluster: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = airflow_cluster
    sandbox = cluster.sandbox
    target = cluster.airflow_home / "ghl_events_it.sqlite"
    _preload(cluster, target, monkeypatch)
    receiver, events_url = _start_receiver(cluster)
    try:
        deadline = time.monotonic() + 240
        cluster._wait_for_dag(DAG_ID, deadline)  # parsed and unpaused
        log = cluster.service_logs["triggerer"]
        while "watching webhook events in ghl_events_it" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the webhook events watcher never started in the triggerer"
            time.sleep(0.5)
        sandbox.admin.subscribe_webhook(events_url, sandbox.location_id)

        contact = sandbox.admin.dump()["contacts"][77]
        city = f"Webhook {uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        sandbox.admin.update_contact(contact["id"], city=city)
        while True:
            row = _row(target, contact["id"])
            if row is not None and row[0] == city:
                break
            assert time.monotonic() - started < 120, (
                f"the change did not reach the target; row {row}, events {_consumed_by(target, contact['id'])}\n"
                + cluster._service_tails()
            )
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        print(f"\nsandbox change -> target row through the event path: {elapsed:.1f} s")
        runs = cluster._query(
            "SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ? ORDER BY id", (DAG_ID,)
        )
        consumers = {r for r in _consumed_by(target, contact["id"]) if r}
        assert consumers, "the event was not marked consumed"
        by_id = {run_id: (run_type, state) for run_id, run_type, state in runs}
        for run_id in consumers:
            assert by_id[run_id][0] == "asset_triggered", runs
    finally:
        try:
            sandbox.admin.unsubscribe_webhook(events_url)
        finally:
            receiver.terminate()
            receiver.wait(20)
