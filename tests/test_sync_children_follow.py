"""Children follow their contact (issue #14 item 5): a contact deleted in HighLevel takes its tasks
and notes with it in the target (``deleted_at`` set, or the rows deleted with ``hard_delete``),
whatever state the contact's own row was in: live, kept as it was while the contact is
quarantined, absent because the contact was quarantined from the start, or already marked
deleted while tasks or notes of it stayed live. On SQLite and PostgreSQL (``GHL_TEST_POSTGRES_URL``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sync_live_location import LiveHook, _contact

from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, RunReport, SqlSink, SyncConfig
from support.targets import throwaway_sink

MAPPING = {
    "contacts": {"columns": {"email": {"source": "email", "transform": "email", "required": True}, "first": "firstName"}},
    "tasks": {"columns": {"title": {"source": "title", "required": True}}},
    "notes": {"columns": {"body": "body"}},
}


class Target:
    def __init__(self, sink: SqlSink) -> None:
        self.sink = sink

    def run(self, hook: LiveHook, **config: Any) -> RunReport:
        return ReconcileEngine(hook, self.sink, self.sink.mapping, SyncConfig(**config)).run()

    def rows(self, table: str) -> dict[str, Any]:
        """id -> deleted_at of every row (live or not) of the table."""
        with self.sink.transaction() as tx:
            return {str(r[0]): r[1] for r in tx.query(f"SELECT id, deleted_at FROM {self.sink.table(table)}")}

    def quarantine(self) -> dict[str, str]:
        with self.sink.transaction() as tx:
            return dict(tx.query(f"SELECT id, reason FROM {self.sink.table('ghl_quarantine')}"))

    def mark_contact_deleted(self, contact_id: str) -> None:
        """A contact row already marked deleted while its tasks and notes stay live (as an older
        version, an interrupted repair or a hand edit can leave a target)."""
        with self.sink.transaction() as tx:
            tx.execute(
                f"UPDATE {self.sink.table('ghl_contacts')} SET deleted_at = last_synced_at WHERE id = {self.sink.placeholder}",
                (contact_id,),
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with throwaway_sink(request.param, FieldMapping.from_dict(MAPPING), folder=tmp_path, postgres_url=url, prefix="ghl_children") as sink:
        yield Target(sink)


def _location() -> LiveHook:
    """c1 fine; c2 without email (quarantined from the start: no contact row); c3 and c4 fine
    at first; c5..c12 fine (so a few deletions stay under max_delete_fraction). Every contact
    has a task and a note; c2 also a task without a title (quarantined itself)."""
    contacts = [_contact(f"c{i}", i) for i in range(1, 13)]
    contacts[1]["email"] = None
    hook = LiveHook(contacts)
    for i in range(1, 13):
        hook.tasks[f"c{i}"] = [{"id": f"t{i}", "contactId": f"c{i}", "title": f"Call {i}"}]
        hook.notes[f"c{i}"] = [{"id": f"n{i}", "contactId": f"c{i}", "body": f"Note {i}"}]
    hook.tasks["c2"].append({"id": "t2x", "contactId": "c2", "title": ""})
    return hook


def _prepare(target: Target, hook: LiveHook) -> None:
    """Bring c2, c3 and c4 into their states, each with live tasks and notes."""
    first = target.run(hook)
    assert first.counts("contacts").quarantined == 1 and first.counts("tasks").quarantined == 1
    assert "c2" not in target.rows("ghl_contacts")  # quarantined from the start: no row ...
    assert target.rows("ghl_tasks")["t2"] is None and target.rows("ghl_notes")["n2"] is None  # ... live children
    hook.contacts["c3"].update(email=None, dateUpdated="2025-03-01T00:00:00.000Z")  # now quarantined, row kept
    second = target.run(hook)
    assert second.counts("contacts").quarantined == 1
    assert target.rows("ghl_contacts")["c3"] is None and "ghl_contacts:c3" in target.quarantine()
    target.mark_contact_deleted("c4")
    assert target.rows("ghl_contacts")["c4"] is not None and target.rows("ghl_tasks")["t4"] is None


def test_children_follow_their_deleted_contact_whatever_its_row_state(target: Target) -> None:
    hook = _location()
    _prepare(target, hook)
    for cid in ("c1", "c2", "c3", "c4"):
        del hook.contacts[cid]  # deleted in HighLevel: GET answers 400 "Contact not found"
    hook.get_calls.clear()

    report = target.run(hook)

    assert sorted(hook.get_calls) == ["c1", "c2", "c3", "c4"]  # each confirmed before anything is deleted
    contacts, tasks, notes = (target.rows(t) for t in ("ghl_contacts", "ghl_tasks", "ghl_notes"))
    assert contacts["c1"] is not None and contacts["c3"] is not None and "c2" not in contacts
    for cid in ("1", "2", "3", "4"):
        assert tasks[f"t{cid}"] is not None and notes[f"n{cid}"] is not None, cid
    assert all(tasks[f"t{i}"] is None and notes[f"n{i}"] is None for i in range(5, 13))
    # c4's row was deleted already: only c1 and c3 are new contact deletions; all four contacts' children go.
    assert report.counts("contacts").deleted == 2
    assert report.counts("tasks").deleted == 4 and report.counts("notes").deleted == 4
    assert target.quarantine() == {}  # c2, c3 and c2's untitled task leave the quarantine
    assert not report.warnings or all("stayed NULL" in w for w in report.warnings)

    again = target.run(hook)  # nothing left to do
    assert sum(c.deleted for c in again.tables.values()) == 0 and hook.get_calls.count("c2") == 1


def test_with_hard_delete_the_children_rows_are_removed(target: Target) -> None:
    hook = _location()
    _prepare(target, hook)
    for cid in ("c2", "c3", "c4"):
        del hook.contacts[cid]

    report = target.run(hook, hard_delete=True)

    contacts, tasks, notes = (target.rows(t) for t in ("ghl_contacts", "ghl_tasks", "ghl_notes"))
    assert not {"t2", "t2x", "t3", "t4"} & set(tasks) and not {"n2", "n3", "n4"} & set(notes)
    assert "c3" not in contacts and "c2" not in contacts
    assert report.counts("tasks").deleted == 3 and report.counts("notes").deleted == 3
    assert {"t1", "n1"} <= set(tasks) | set(notes) and target.quarantine() == {}


class LaggingHook(LiveHook):
    """A search that does not show some contacts yet (the live search index lags); GET finds them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden: set[str] = set()

    def iter_search_contacts(self, filters: Any = None, sort: Any = None, page_limit: int = 500) -> Iterator[dict]:
        for contact in super().iter_search_contacts(filters, sort, page_limit):
            if contact["id"] not in self.hidden:
                yield contact


def test_children_of_a_contact_the_scan_misses_but_get_finds_stay(target: Target) -> None:
    base = _location()
    hook = LaggingHook(list(base.contacts.values()))
    hook.tasks, hook.notes = base.tasks, base.notes
    target.run(hook)
    hook.hidden = {"c2"}  # quarantined contact, live children, not in the (lagging) scan
    report = target.run(hook)
    assert hook.get_calls == ["c2"]
    assert target.rows("ghl_tasks")["t2"] is None and target.rows("ghl_notes")["n2"] is None
    assert report.counts("tasks").deleted == 0 and "ghl_contacts:c2" in target.quarantine()
