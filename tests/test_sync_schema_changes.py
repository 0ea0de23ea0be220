"""Mapping changes against a loaded target (SQLite and PostgreSQL), over the sandbox's real HTTP.

* Column names are quoted through the target's dialect: mapped columns called ``order``,
  ``user``, ``select`` and ``group`` (reserved words) work for CREATE TABLE, ALTER TABLE, upserts,
  updates and selects.
* A column added to the mapping is filled for every stored record on the next run from the
  stored ``raw_json``, without reading HighLevel again; a changed transform or source recomputes
  its column the same way. Both are counted in ``report.backfilled``.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, RunReport, SqlSink, SyncConfig
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from airflow_provider_contacts.sync.transforms import TRANSFORMS

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
#: No deletion scan and a request budget the load uses up (so the sweep re-reads nothing): an
#: incremental run then asks HighLevel only for the custom field definitions and the search.
NO_REREAD = SyncConfig(deletion_scan=False, max_requests_per_run=3, batch_size=7)


def base_mapping() -> dict[str, Any]:
    data = yaml.safe_load(MAPPING_FILE.read_text(encoding="utf-8"))
    data["contacts"]["columns"]["order"] = {"source": "source"}
    data["contacts"]["columns"]["group"] = {"source": "companyName"}
    data["tasks"]["columns"]["user"] = {"source": "assignedTo"}
    data["notes"]["columns"]["select"] = {"source": "userId"}
    return data


class OnlySearchHook(ContactsHook):
    """Fails on any request other than the contact search and the custom field definitions."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def _call(self, method: str, path: str, **options: Any) -> Any:
        self.calls.append((method, path))
        if not (path.rstrip("/").endswith("/contacts/search") or path.rstrip("/").endswith("/customFields")):
            raise AssertionError(f"the run re-read HighLevel: {method} {path}")
        return super()._call(method, path, **options)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_sink(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make_sink(mapping)`` -> a sink on the same target (SQLite file / PostgreSQL schema)."""
    sinks: list[SqlSink] = []
    if request.param == "sqlite":
        path = tmp_path / "target.sqlite"

        def make(mapping: FieldMapping) -> SqlSink:
            sinks.append(SqlSink(EmbeddedSqliteHook(path), mapping))
            return sinks[-1]

        yield make
    else:
        from airflow_provider_contacts.sync import get_target_hook

        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("AIRFLOW_CONN_GHL_TARGET", url)
        schema = f"ghl_test_{uuid.uuid4().hex[:10]}"

        def make(mapping: FieldMapping) -> SqlSink:
            sinks.append(SqlSink(get_target_hook("ghl_target"), mapping, schema=schema))
            return sinks[-1]

        yield make
    for sink in sinks:
        sink.close()
    if request.param == "postgresql":
        get_target_hook("ghl_target").run(f"DROP SCHEMA IF EXISTS {schema} CASCADE", autocommit=True)


@pytest.fixture
def loaded(sandbox: Any, ghl_conn: str) -> Any:
    sandbox.admin.reset(contacts=40)
    return sandbox


def run(make_sink: Any, data: dict[str, Any], hook: ContactsHook | None = None, config: SyncConfig = NO_REREAD) -> RunReport:
    mapping = FieldMapping.from_dict(copy.deepcopy(data))
    sink = make_sink(mapping)
    try:
        return ReconcileEngine(hook or ContactsHook(), sink, mapping, config).run()
    finally:
        sink.close()


def rows(make_sink: Any, table: str) -> dict[str, dict[str, Any]]:
    """Live rows of ``table``: id -> {column: value} (with ``raw`` the parsed raw_json)."""
    sink = make_sink(FieldMapping.from_dict(base_mapping()))
    with sink.transaction() as tx:
        tx.execute(f"SELECT * FROM {sink.table(table)} WHERE deleted_at IS NULL")
        names = [d[0] for d in tx.cur.description]
        out = {}
        for values in tx.cur.fetchall():
            row = dict(zip(names, values))
            raw = row["raw_json"]
            row["raw"] = json.loads(raw) if isinstance(raw, str) else raw
            out[str(row["id"])] = row
    sink.close()
    return out


def test_reserved_word_columns_work_end_to_end(make_sink: Any, loaded: Any) -> None:
    data = base_mapping()
    first = run(make_sink, data, config=SyncConfig())
    assert first.mode == "full" and first.counts("contacts").inserted == 40

    contacts = rows(make_sink, "ghl_contacts")
    assert len(contacts) == 40
    assert all(r["order"] == (r["raw"].get("source") or None) for r in contacts.values())
    assert any(r["order"] for r in contacts.values())
    assert all(r["group"] == (r["raw"].get("companyName") or None) for r in contacts.values())
    tasks = rows(make_sink, "ghl_tasks")
    assert tasks and all(r["user"] == (r["raw"].get("assignedTo") or None) for r in tasks.values())
    assert any(r["user"] for r in tasks.values())
    notes = rows(make_sink, "ghl_notes")
    assert notes and all(r["select"] == (r["raw"].get("userId") or None) for r in notes.values())

    # An edit in the CRM travels through the upsert (INSERT ... ON CONFLICT / REPLACE INTO).
    cid = sorted(contacts)[0]
    loaded.admin.update_contact(cid, source="reserved words")
    again = run(make_sink, data, config=SyncConfig())
    assert again.counts("contacts").updated >= 1
    assert rows(make_sink, "ghl_contacts")[cid]["order"] == "reserved words"
    assert again.backfilled == {}


def test_a_column_added_to_the_mapping_is_filled_from_raw_json_without_rereading(make_sink: Any, loaded: Any) -> None:
    data = base_mapping()
    run(make_sink, data, config=SyncConfig())
    before = rows(make_sink, "ghl_contacts")

    # A column added under a reserved name (ALTER TABLE ... ADD COLUMN "where"-style quoting) and a
    # plain one; tasks get one too.
    data["contacts"]["columns"]["added_on"] = {"source": "dateAdded", "transform": "date"}
    data["contacts"]["columns"]["table"] = {"source": "source"}
    data["tasks"]["columns"]["heading"] = {"source": "title"}
    hook = OnlySearchHook()
    report = run(make_sink, data, hook=hook)

    assert report.mode == "incremental"
    assert hook.calls, "the run made no request at all"
    assert report.counts("contacts").inserted == report.counts("contacts").updated == 0
    tasks = rows(make_sink, "ghl_tasks")
    assert report.backfilled == {
        "ghl_contacts": {"added_on": 40, "table": 40},
        "ghl_tasks": {"heading": len(tasks)},
    }
    contacts = rows(make_sink, "ghl_contacts")
    for cid, row in contacts.items():
        assert row["added_on"] == TRANSFORMS["date"](row["raw"].get("dateAdded")), cid
        assert row["added_on"]
        assert row["table"] == (row["raw"].get("source") or None)
        # the other columns and the bookkeeping are untouched
        assert row["content_hash"] == before[cid]["content_hash"]
        assert row["last_synced_at"] == before[cid]["last_synced_at"]
        assert row["order"] == before[cid]["order"]
    assert all(r["heading"] == (r["raw"].get("title") or None) for r in tasks.values())

    # Nothing changed: nothing is re-mapped.
    assert run(make_sink, data, hook=OnlySearchHook()).backfilled == {}

    # A changed transform recomputes its column; a changed source too (here of a reserved name).
    data["contacts"]["columns"]["added_on"] = {"source": "dateAdded", "transform": "text"}
    data["tasks"]["columns"]["user"] = {"source": "title"}
    report = run(make_sink, data, hook=OnlySearchHook())
    assert report.backfilled == {"ghl_contacts": {"added_on": 40}, "ghl_tasks": {"user": len(tasks)}}
    for cid, row in rows(make_sink, "ghl_contacts").items():
        assert row["added_on"] == row["raw"]["dateAdded"], cid
    assert all(r["user"] == (r["raw"].get("title") or None) for r in rows(make_sink, "ghl_tasks").values())
    assert "re-mapped from raw_json" in report.format_table()
