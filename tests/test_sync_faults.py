"""Rate limits and flaky servers lose nothing: a sync against a sandbox that answers 429 when
pushed and fails 5 % of requests (500/502/503, delays, dropped connections) still converges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from ghl_sandbox.scenario import apply_mutations
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from support.verify import diff_target

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"


@contextmanager
def another_integration_sharing_the_limit(sandbox: Any) -> Iterator[None]:
    """A second client on the same token and location that, every 1.5 s, spends most of the
    shared burst budget (20 of 25 requests) at once: the sync's requests then meet 429s."""
    stop = threading.Event()

    def spend() -> None:
        with sandbox.client() as client:
            while not stop.is_set():
                for _ in range(20):
                    client.get(f"/locations/{sandbox.location_id}/customFields")
                stop.wait(1.5)

    thread = threading.Thread(target=spend, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.mark.slow
def test_sync_with_429s_and_five_percent_faults_loses_nothing(
    tmp_path: Path, sandbox_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = sandbox_factory(contacts=60, rate_limit="25/1", fault_rate=0.05)
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json())
    mapping = FieldMapping.load(MAPPING_FILE)
    config = SyncConfig(sweep_period=timedelta(hours=2), schedule_interval=timedelta(hours=1))

    with SqlSink(EmbeddedSqliteHook(tmp_path / "t.sqlite"), mapping) as sink:
        def run() -> Any:
            # A fresh hook per run, as each Airflow task gets; the hook paces to the server's limit.
            return ReconcileEngine(ContactsHook(), sink, mapping, config).run()

        with another_integration_sharing_the_limit(sandbox):
            reports = [run()]
            sandbox.admin.configure(fault_rate=0.0)
            apply_mutations(sandbox.admin)
            sandbox.admin.configure(fault_rate=0.05)
            reports += [run(), run()]

        sandbox.admin.configure(fault_rate=0.0)
        assert diff_target(sink, mapping, sandbox.location_id, sandbox.admin.dump()) == []

    counters = sandbox.admin.counters()
    print("sandbox counters", counters, [(r.requests, r.throttled, r.retries) for r in reports])
    assert counters["faults"] > 0, "the sandbox injected faults"
    assert sum(r.retries for r in reports) > 0, "the runs retried through them"
    # The runs were throttled (429) and came through.
    assert sum(r.throttled for r in reports) > 0
