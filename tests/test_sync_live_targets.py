"""Targets never block a location: values a database cannot store are cleaned (and counted), and
a row the database still refuses is quarantined alone, with the database's message, while the
rest of its batch lands and the run succeeds. On SQLite and on PostgreSQL (``GHL_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sync_live_location import LOCATION, MAPPING_FILE, LiveHook, _contact

from airflow_provider_contacts.sync import (
    FieldMapping,
    ReconcileEngine,
    RunReport,
    SqlSink,
    SyncConfig,
)
from support.targets import throwaway_sink
from support.verify import live_rows


class Target:
    def __init__(self, sink: SqlSink) -> None:
        self.sink = sink
        self.mapping = sink.mapping

    def run(self, hook: LiveHook, **config: Any) -> RunReport:
        return ReconcileEngine(hook, self.sink, self.mapping, SyncConfig(**config)).run()

    def rows(self, entity: str) -> dict[str, dict[str, Any]]:
        return live_rows(self.sink, entity, LOCATION)

    def quarantine(self) -> dict[str, str]:
        with self.sink.transaction() as tx:
            return dict(tx.query(f"SELECT record_id, reason FROM {self.sink.table('ghl_quarantine')}"))

    def refuse_note_body(self, body: str) -> None:
        """A trigger (as a DBA might add) that makes the database refuse notes with this body."""
        notes = self.sink.table("ghl_notes")
        with self.sink.transaction() as tx:
            if self.sink.dialect_name == "sqlite":
                tx.execute(
                    f"CREATE TRIGGER refuse_body BEFORE INSERT ON ghl_notes WHEN NEW.body = '{body}' "
                    "BEGIN SELECT RAISE(ABORT, 'note body refused by policy'); END"
                )
            else:
                function = self.sink.table("refuse_body")
                tx.execute(
                    f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.body = '{body}' THEN RAISE EXCEPTION 'note body refused by policy'; END IF; "
                    "RETURN NEW; END $$"
                )
                tx.execute(f"CREATE TRIGGER refuse_body BEFORE INSERT OR UPDATE ON {notes} "
                           f"FOR EACH ROW EXECUTE FUNCTION {function}()")

    def allow_all(self) -> None:
        with self.sink.transaction() as tx:
            if self.sink.dialect_name == "sqlite":
                tx.execute("DROP TRIGGER refuse_body")
            else:
                tx.execute(f"DROP TRIGGER refuse_body ON {self.sink.table('ghl_notes')}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with throwaway_sink(request.param, FieldMapping.load(MAPPING_FILE), folder=tmp_path, postgres_url=url, prefix="ghl_live") as sink:
        yield Target(sink)


def _hook() -> LiveHook:
    hook = LiveHook([
        _contact("c1", 1, firstName="Nul\u0000Name", customFields=[
            {"id": "cfLeadScore000000001", "value": "1e400"},  # beyond a double: NULL, counted
            {"id": "cfInterests000000003", "value": ["Yo\u0000ga"]},
        ]),
        _contact("c2", 2, lastName="Lone \ud83d surrogate", customFields=[
            {"id": "cfLeadScore000000001", "value": str(10**30)},  # beyond 64 bits: a double
        ]),
    ])
    hook.notes["c1"] = [
        {"id": "n1", "contactId": "c1", "body": "a\u0000b", "dateAdded": "2025-01-01T00:00:00.000Z"},
        {"id": "n2", "contactId": "c1", "body": "fine"},
    ]
    return hook


def test_values_no_target_can_store_are_cleaned_and_counted(target: Target, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        report = target.run(_hook())

    notes = target.rows("notes")
    assert notes["n1"]["body"] == "ab"  # the NUL is gone, the note is there
    raw = notes["n1"]["raw_json"]
    raw = raw if isinstance(raw, dict) else json.loads(raw)  # jsonb on PostgreSQL (which refuses \u0000)
    assert raw["body"] == "ab"
    assert report.cleaned["ghl_notes"] == {"body": 1, "raw_json": 1}
    assert report.cleaned["ghl_contacts"] == {"first_name": 1, "cf_interests": 1, "last_name": 1, "raw_json": 2}
    contacts = target.rows("contacts")
    assert contacts["c1"]["first_name"] == "NulName" and contacts["c2"]["last_name"] == "Lone \ufffd surrogate"
    assert contacts["c1"]["cf_lead_score"] is None and float(contacts["c2"]["cf_lead_score"]) == 1e30
    assert report.column_errors == {"ghl_contacts": {"cf_lead_score": 1}}
    assert report.counts("contacts").inserted == 2 and report.counts("notes").inserted == 2
    assert sum(c.quarantined + c.rejected for c in report.tables.values()) == 0
    assert "cleaned values" in report.format_table() and report.to_dict()["cleaned"] == report.cleaned
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    again = target.run(_hook())  # cleaned content hashes the same: nothing flaps
    assert again.counts("contacts").updated == 0 and again.counts("notes").updated == 0


def test_a_row_the_database_refuses_is_quarantined_alone_and_the_run_succeeds(target: Target) -> None:
    target.sink.ensure_tables()
    target.refuse_note_body("poison")
    hook = _hook()
    hook.notes["c2"] = [{"id": "n3", "contactId": "c2", "body": "poison"}, {"id": "n4", "contactId": "c2", "body": "ok"}]

    report = target.run(hook)

    assert report.counts("notes").rejected == 1 and report.counts("notes").inserted == 3
    assert set(target.rows("notes")) == {"n1", "n2", "n4"}  # the rest of the batch landed
    assert report.counts("contacts").inserted == 2  # same transaction, not rolled back
    reason = target.quarantine()["n3"]
    assert "the target refused the row" in reason and "note body refused by policy" in reason
    assert "rejected" in report.format_table()

    target.allow_all()
    repaired = target.run(hook, full_sweep=True)
    assert repaired.counts("notes").inserted == 1 and repaired.counts("notes").rejected == 0
    assert "n3" in target.rows("notes") and target.quarantine() == {}
