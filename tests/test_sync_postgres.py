"""The same reconciliation into PostgreSQL (through PostgresHook and common-sql's Postgres
dialect): first run exact, changes converge, tables typed natively (timestamptz, jsonb, boolean)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from ghl_sandbox.scenario import apply_mutations
from support.targets import throwaway_sink
from support.verify import diff_target, live_rows

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_sink(postgres_url: str, tmp_path: Path) -> Iterator[SqlSink]:
    """A sink on the ``ghl_target`` connection (PostgreSQL) in a schema of its own, dropped after."""
    with throwaway_sink("postgresql", FieldMapping.load(MAPPING_FILE), folder=tmp_path, postgres_url=postgres_url) as sink:
        yield sink


def test_reconcile_into_postgres_converges(pg_sink: SqlSink, sandbox: Any, ghl_conn: str) -> None:
    sandbox.admin.reset(contacts=60)
    assert pg_sink.dialect_name == "postgresql"
    config = SyncConfig(sweep_period=timedelta(hours=3), schedule_interval=timedelta(hours=1))

    def run() -> Any:
        return ReconcileEngine(ContactsHook(), pg_sink, pg_sink.mapping, config).run()

    first = run()
    assert first.counts("contacts").inserted == 60
    assert diff_target(pg_sink, pg_sink.mapping, sandbox.location_id, sandbox.admin.dump()) == []

    row = next(iter(live_rows(pg_sink, "contacts", sandbox.location_id).values()))
    assert isinstance(row["date_added"], datetime) and row["date_added"].utcoffset() == timedelta(0)
    assert isinstance(row["tags"], list) and isinstance(row["raw_json"], dict)

    done = apply_mutations(sandbox.admin)
    for _ in range(3):
        run()
    assert diff_target(pg_sink, pg_sink.mapping, sandbox.location_id, sandbox.admin.dump()) == []
    with pg_sink.transaction() as tx:
        deleted = tx.query(
            f"SELECT count(*) FROM {pg_sink.table('ghl_contacts')} WHERE deleted_at IS NOT NULL"
        )[0][0]
    assert deleted == len(done.contacts_deleted)
