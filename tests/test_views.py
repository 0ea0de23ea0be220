"""The reconcile's views (sync/views.py): the 360-degree contact view and the directories by
business and by tag hold what the sandbox holds, on SQLite and PostgreSQL (own schema)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.sync import DEFAULT_MAPPING_FILE
from airflow_provider_contacts.sync.mapping import FieldMapping
from airflow_provider_contacts.sync.sinks import SqlSink
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from airflow_provider_contacts.sync.views import VIEW_NAMES, ensure_views, view_statements

SCHEMA = "ghl_views_test"


@pytest.fixture(scope="module")
def _views_sandbox() -> Iterator[Any]:
    from ghl_sandbox.testing import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(seed=11, contacts=25, rate_limit=None)) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str | None]]:
    if request.param == "sqlite":
        yield EmbeddedSqliteHook(tmp_path / "target.sqlite"), None
        return
    url = request.getfixturevalue("postgres_url")
    import psycopg2
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_VIEWS_PG", url)
    admin = psycopg2.connect(url)
    admin.autocommit = True
    admin.cursor().execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    try:
        yield PostgresHook(postgres_conn_id="views_pg"), SCHEMA
    finally:
        admin.cursor().execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        admin.close()


def _rows(sink: SqlSink, view: str) -> list[dict[str, Any]]:
    with sink.transaction() as tx:
        tx.cur.execute(f"SELECT * FROM {sink.table(view)}")
        names = [d[0] for d in tx.cur.description]
        return [dict(zip(names, row)) for row in tx.cur.fetchall()]


def test_the_views_show_each_contact_its_open_tasks_latest_note_business_and_tags(_views_sandbox, target, monkeypatch) -> None:
    from airflow_provider_contacts.sync.runner import run_reconcile

    sandbox = _views_sandbox
    sandbox.admin.reset()
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json())
    hook, schema = target
    monkeypatch.setattr("airflow_provider_contacts.sync.runner.get_target_hook", lambda conn_id: hook)
    truth = sandbox.admin.dump()
    gone = truth["contacts"][0]["id"]
    sandbox.admin.delete_contact(gone)
    run_reconcile(source_conn_id="ghl_default", target_conn_id="t", location_id=None, mapping_path=DEFAULT_MAPPING_FILE, target_schema=schema)
    truth = sandbox.admin.dump()
    mapping = FieldMapping.load(DEFAULT_MAPPING_FILE)
    with SqlSink(hook, mapping, schema=schema) as sink:
        assert ensure_views(sink) == []  # made by the reconcile; unchanged SQL is not re-created
        c360 = {r["contact_id"]: r for r in _rows(sink, "ghl_contact_360")}
        business = _rows(sink, "ghl_directory_by_business")
        by_tag = _rows(sink, "ghl_directory_by_tag")

    contacts = {c["id"]: c for c in truth["contacts"]}
    assert set(c360) == set(contacts) and gone not in c360
    for cid, contact in contacts.items():
        row = c360[cid]
        open_tasks = [t for t in truth["tasks"] if t["contactId"] == cid and not t["completed"]]
        notes = [n for n in truth["notes"] if n["contactId"] == cid]
        assert row["open_tasks"] == len(open_tasks) and row["notes"] == len(notes), cid
        assert (row["email"] or None) == ((contact.get("email") or "").lower() or None)
        if open_tasks:
            first_due = min(parse_datetime(t["dueDate"]) for t in open_tasks)
            assert parse_datetime(row["next_task_due"]) == first_due
        else:
            assert row["next_task_title"] is None
        if notes:
            newest = max(notes, key=lambda n: (parse_datetime(n["dateAdded"]), n["id"]))
            assert row["latest_note"] == newest["body"].replace("\x00", "")
    companies = Counter(c["companyName"] for c in contacts.values() if (c.get("companyName") or "").strip())
    assert Counter(r["company_name"] for r in business) == companies
    assert all(r["contacts_in_business"] == companies[r["company_name"]] for r in business)
    tags = Counter(t for c in contacts.values() for t in c.get("tags") or [])
    assert Counter(r["tag"] for r in by_tag) == tags and tags


def test_view_sql_compiles_for_every_shipped_dialect_and_names_missing_columns_null() -> None:
    minimal = FieldMapping.from_dict({"contacts": {"columns": {"email": {"source": "email", "transform": "email"}}}})
    for hook in (EmbeddedSqliteHook(Path("/nonexistent/x.sqlite")),):
        sink = SqlSink(hook, minimal)
        statements = view_statements(sink)
        assert set(statements) == set(VIEW_NAMES)
        assert "NULL AS company_name" in statements["ghl_contact_360"]
        assert "json_each(ghl_contacts.raw_json, '$.tags')" in statements["ghl_directory_by_tag"]
