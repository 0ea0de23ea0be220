"""The reconciliation engine against the sandbox over real HTTP, into an SQLite file.

The user's story: the first run copies the location exactly; nothing changes when nothing changed;
contacts, tasks and notes edited in the CRM arrive within the sweep period; deletions are noticed;
a run that dies half-way is simply run again; records that cannot be mapped are set aside.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.dates import parse_date
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, RunReport, SqlSink, SyncConfig
from ghl_sandbox.scenario import apply_mutations
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from support.verify import diff_target, live_rows

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
#: Three runs per sweep period: every contact's tasks and notes are re-read within three runs.
THREE_RUN_SWEEP = SyncConfig(sweep_period=timedelta(hours=3), schedule_interval=timedelta(hours=1))


class Target:
    """An SQLite target plus a way to run the engine against the sandbox."""

    def __init__(self, path: Path, sandbox: Any, mapping: FieldMapping | None = None) -> None:
        self.sandbox = sandbox
        self.mapping = mapping or FieldMapping.load(MAPPING_FILE)
        self.sink = SqlSink(EmbeddedSqliteHook(path), self.mapping)

    def run(self, config: SyncConfig = THREE_RUN_SWEEP, hook: ContactsHook | None = None) -> RunReport:
        return ReconcileEngine(hook or ContactsHook(), self.sink, self.mapping, config).run()

    def diff(self) -> list[str]:
        return diff_target(self.sink, self.mapping, self.sandbox.location_id, self.sandbox.admin.dump())

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the data and quarantine tables (not the sync state), sorted."""
        out = {}
        with self.sink.transaction() as tx:
            for table in ("ghl_contacts", "ghl_tasks", "ghl_notes", "ghl_quarantine"):
                out[table] = sorted(tx.query(f"SELECT * FROM {table}"))
        return out

    def all_rows(self, table: str) -> list[tuple[Any, ...]]:
        with self.sink.transaction() as tx:
            return tx.query(f"SELECT id, deleted_at FROM {table}")


@pytest.fixture
def small_sandbox(sandbox: Any, ghl_conn: str) -> Any:
    """The shared sandbox, reset to 60 seeded contacts (with their tasks and notes)."""
    sandbox.admin.reset(contacts=60)
    return sandbox


@pytest.fixture
def target(tmp_path: Path, small_sandbox: Any) -> Target:
    t = Target(tmp_path / "target.sqlite", small_sandbox)
    yield t
    t.sink.close()


def test_first_run_copies_the_location_field_by_field(target: Target) -> None:
    report = target.run()
    truth = target.sandbox.admin.dump()

    assert report.mode == "full"
    assert report.counts("contacts").inserted == len(truth["contacts"]) == 60
    assert report.counts("tasks").inserted == len(truth["tasks"]) > 0
    assert report.counts("notes").inserted == len(truth["notes"]) > 0
    assert target.diff() == []

    # Independent spot checks of the transforms, straight from the API data.
    rows = live_rows(target.sink, "contacts", target.sandbox.location_id)
    columns = {c.field_id: c for c in target.mapping.custom_columns}
    assert set(columns) == {f["id"] for f in truth["customFields"]}  # every custom field is a column
    assert report.custom_fields.columns == len(columns) and len(report.custom_fields.added) == len(columns)
    normalised = 0
    for contact in truth["contacts"]:
        row = rows[contact["id"]]
        assert row["email"] == (contact["email"].strip().lower() if contact["email"] else None)
        phone = (contact.get("phone") or "").strip()
        if phone:
            # E.164 where the number parses, else exactly as HighLevel holds it: never dropped.
            if row["phone"] != phone:
                assert re.fullmatch(r"\+[1-9]\d{6,14}", row["phone"]), (phone, row["phone"])
                assert re.sub(r"\D", "", phone).endswith(row["phone"][-7:]), (phone, row["phone"])
                normalised += 1
        else:
            assert row["phone"] is None
        assert row["address1"] == (contact.get("address1") or contact.get("address") or None)
        if contact.get("dateOfBirth") is not None:
            assert row["date_of_birth"] == parse_date(contact["dateOfBirth"]).isoformat()
        assert json.loads(row["tags"]) == contact["tags"]
        for value in contact["customFields"]:
            col = columns[value["id"]]
            if col.sql_type == "number":
                assert row[col.column] == float(value["value"])
            elif col.transform == "date":
                assert row[col.column] == parse_date(value["value"]).isoformat()
            elif col.sql_type == "json":
                assert json.loads(row[col.column]) == value["value"]
        assert row["date_added"].endswith("+00:00")
        assert row["deleted_at"] is None
    assert normalised > 0
    assert report.throttled == 0


def test_second_run_without_changes_leaves_tables_identical_and_is_cheap(target: Target) -> None:
    target.run()
    before = target.snapshot()
    second = target.run()
    assert target.snapshot() == before
    assert second.mode == "incremental"
    for table in ("contacts", "tasks", "notes"):
        counts = second.counts(table)
        assert (counts.inserted, counts.updated, counts.deleted, counts.quarantined) == (0, 0, 0, 0)
    # One search page of changed contacts, one id-scan page, and the sweep slice (60/3 contacts:
    # one notes call each plus one batched task search).
    assert second.requests <= 2 + 20 + 2
    assert second.sweep.contacts == 20


def test_changes_in_the_crm_converge_within_the_sweep_period(target: Target) -> None:
    target.run()
    done = apply_mutations(target.sandbox.admin)

    first = target.run()
    # Contact-level changes arrive on the very next run.
    assert first.counts("contacts").inserted == len(done.contacts_created)
    assert first.counts("contacts").updated == len(done.contacts_updated)
    assert first.counts("contacts").deleted == len(done.contacts_deleted)
    contacts = dict(target.all_rows("ghl_contacts"))
    assert all(contacts[cid] is not None for cid in done.contacts_deleted)
    assert all(contacts[cid] is None for cid in done.contacts_created + done.contacts_updated)

    # Task and note changes of untouched contacts need the sweep: at most three runs here.
    for _ in range(2):
        target.run()
    assert target.diff() == []
    tasks = dict(target.all_rows("ghl_tasks"))
    notes = dict(target.all_rows("ghl_notes"))
    assert all(tasks[t] is not None for t in done.tasks_deleted)
    assert all(notes[n] is not None for n in done.notes_deleted)
    assert all(tasks[t] is None for t in done.tasks_created + done.tasks_edited + done.tasks_completed)


def test_a_lagging_search_index_delays_changes_but_loses_or_wrongly_deletes_nothing(target: Target) -> None:
    """HighLevel's search index lags a few seconds (ghl-live-notes.md): a run right after changes
    sees none of them in search (deleted contacts still listed, new ones not yet). It must not take
    a contact the index does not list yet for deleted, nor lose a change it could not see: the
    next run, once the index caught up, converges."""
    target.run()
    target.sandbox.admin.configure(search_lag_s=600)  # the index shows none of what follows
    done = apply_mutations(target.sandbox.admin)

    right_after = target.run()
    assert right_after.counts("contacts").inserted == 0 and right_after.counts("contacts").deleted == 0
    contacts = dict(target.all_rows("ghl_contacts"))
    assert all(contacts[cid] is None for cid in done.contacts_deleted)  # still listed by the index

    target.sandbox.admin.configure(search_lag_s=0)  # the index caught up
    caught_up = target.run()
    assert caught_up.counts("contacts").inserted == len(done.contacts_created)
    assert caught_up.counts("contacts").updated == len(done.contacts_updated)
    assert caught_up.counts("contacts").deleted == len(done.contacts_deleted)
    for _ in range(2):  # task and note changes of untouched contacts: the sweep, three runs here
        target.run()
    assert target.diff() == []


def test_full_sweep_rereads_every_contact_activity_in_one_run(target: Target) -> None:
    target.run()
    apply_mutations(target.sandbox.admin)
    report = target.run(SyncConfig(full_sweep=True))
    assert report.mode == "full"
    assert target.diff() == []


class CrashingHook(ContactsHook):
    """A hook whose process "dies" (raises) on the n-th fetch of tasks and notes."""

    def __init__(self, crash_on_call: int) -> None:
        super().__init__()
        self.calls = 0
        self.crash_on_call = crash_on_call

    def fetch_tasks_and_notes(self, contact_ids: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise KeyboardInterrupt("killed half-way")
        return super().fetch_tasks_and_notes(contact_ids, *args, **kwargs)


def test_a_run_killed_half_way_is_retried_without_loss_or_duplicates(target: Target) -> None:
    config = SyncConfig(batch_size=20)
    with pytest.raises(KeyboardInterrupt):
        target.run(config, hook=CrashingHook(crash_on_call=2))
    committed = len(target.all_rows("ghl_contacts"))
    assert committed == 20  # the first batch committed, the second rolled back

    retry = target.run(config)
    assert retry.mode == "incremental"  # resumed from the committed watermark
    assert committed + retry.counts("contacts").inserted == 60
    assert len(target.all_rows("ghl_contacts")) == 60
    assert target.diff() == []


def test_deleted_records_can_be_removed_instead_of_tombstoned(target: Target) -> None:
    hard = SyncConfig(hard_delete=True, sweep_period=timedelta(hours=3), schedule_interval=timedelta(hours=1))
    target.run(hard)
    done = apply_mutations(target.sandbox.admin)
    for _ in range(3):
        target.run(hard)
    ids = {row[0] for row in target.all_rows("ghl_contacts")}
    assert not ids & set(done.contacts_deleted)
    assert {row[1] for row in target.all_rows("ghl_tasks")} == {None}
    assert target.diff() == []


def test_records_that_cannot_be_mapped_are_quarantined_and_recovered(tmp_path: Path, small_sandbox: Any) -> None:
    data = {
        "contacts": {"columns": {"email": {"source": "email", "transform": "email", "required": True}}},
        "tasks": {"columns": {"title": "title"}},
        "notes": {"columns": {"body": "body"}},
    }
    target = Target(tmp_path / "q.sqlite", small_sandbox, FieldMapping.from_dict(data))
    truth = small_sandbox.admin.dump()
    no_email = [c["id"] for c in truth["contacts"] if not c["email"]]
    assert no_email, "the seed has contacts without email"

    report = target.run()
    assert report.counts("contacts").quarantined == len(no_email)
    assert report.counts("contacts").inserted == 60 - len(no_email)
    with target.sink.transaction() as tx:
        reasons = dict(tx.query("SELECT record_id, reason FROM ghl_quarantine"))
    assert set(reasons) == set(no_email)
    assert all("email" in r and "required" in r for r in reasons.values())
    assert target.diff() == []  # quarantined records count as accounted for

    fixed = no_email[0]
    small_sandbox.admin.update_contact(fixed, email="Fixed.Person@Example.com")
    target.run()
    rows = live_rows(target.sink, "contacts", small_sandbox.location_id)
    assert rows[fixed]["email"] == "fixed.person@example.com"
    with target.sink.transaction() as tx:
        assert fixed not in {r[0] for r in tx.query("SELECT record_id FROM ghl_quarantine")}
    target.sink.close()


def test_a_truncated_id_scan_never_mass_deletes(target: Target) -> None:
    target.run()
    truth = target.sandbox.admin.dump()
    victims = [c["id"] for c in truth["contacts"]][:40]
    for cid in victims:
        target.sandbox.admin.delete_contact(cid)
    guarded = target.run()
    assert guarded.counts("contacts").deleted == 0
    assert "max_delete_fraction" in guarded.warnings[0]
    confirmed = target.run(SyncConfig(max_delete_fraction=1.0))
    assert confirmed.counts("contacts").deleted == 40
    assert target.diff() == []


def test_the_request_budget_caps_the_sweep_and_the_cursor_carries_on(target: Target) -> None:
    target.run()
    tight = SyncConfig(
        sweep_period=timedelta(hours=2), schedule_interval=timedelta(hours=1), max_requests_per_run=12
    )
    first = target.run(tight)
    assert first.sweep.budget_limited
    assert 0 < first.sweep.contacts < first.sweep.target
    assert first.requests <= 12 + 2  # the sweep never exceeds the budget (+ one task batch, 1 scan)
    second = target.run(tight)
    assert second.sweep.cursor > first.sweep.cursor or second.sweep.wrapped


KILLABLE_RUN = """
import sys
from airflow_provider_contacts.dates import parse_date
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
mapping = FieldMapping.load(sys.argv[1])
sink = SqlSink(EmbeddedSqliteHook(sys.argv[2]), mapping)
ReconcileEngine(ContactsHook(), sink, mapping, SyncConfig(batch_size=10)).run()
"""


def test_a_worker_killed_with_sigkill_mid_run_is_retried_without_loss_or_duplicates(
    target: Target, tmp_path: Path
) -> None:
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    target.sandbox.admin.configure(rate_limit="15/1")  # slow enough to be caught mid-run
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_RUN, str(MAPPING_FILE), str(target.sink.hook.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    committed = 0
    try:
        while proc.poll() is None and committed < 10:
            time.sleep(0.05)
            try:
                with sqlite3.connect(target.sink.hook.path, timeout=5) as db:
                    committed = db.execute("SELECT count(*) FROM ghl_contacts").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0  # tables not created yet
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run was killed before it finished"
    committed = len(target.all_rows("ghl_contacts"))
    assert 10 <= committed < 60

    target.sandbox.admin.configure(rate_limit=None)
    retry = target.run()
    assert committed + retry.counts("contacts").inserted == 60
    assert target.diff() == []


def test_a_value_that_stops_converting_is_stored_null_and_counted_never_a_dropped_contact(target: Target) -> None:
    target.run()
    truth = target.sandbox.admin.dump()
    cid = truth["contacts"][0]["id"]
    target.sandbox.admin.update_contact(cid, dateOfBirth="31/12/1990", city="Somewhere New")

    report = target.run()
    assert report.counts("contacts").quarantined == 0
    assert report.counts("contacts").updated == 1
    assert report.column_errors["ghl_contacts"]["date_of_birth"] >= 1
    assert "date_of_birth" in report.column_error_examples["ghl_contacts"]
    assert "column errors" in report.format_table() and "date_of_birth" in report.format_table()
    row = live_rows(target.sink, "contacts", target.sandbox.location_id)[cid]
    assert row["city"] == "Somewhere New" and row["date_of_birth"] is None
    assert "31/12/1990" in row["raw_json"]  # the value HighLevel holds is kept
    assert target.diff() == []

    target.sandbox.admin.update_contact(cid, dateOfBirth="1990-12-31")
    target.run()
    assert live_rows(target.sink, "contacts", target.sandbox.location_id)[cid]["date_of_birth"] == "1990-12-31"
    assert target.diff() == []


class VanishingContactHook(ContactsHook):
    """Deletes a contact in the CRM just before the run reads the first batch of activity."""

    def __init__(self, admin: Any) -> None:
        super().__init__()
        self.admin = admin
        self.victim: str | None = None

    def fetch_tasks_and_notes(self, contact_ids: Any, *args: Any, **kwargs: Any) -> Any:
        ids = list(contact_ids)
        if self.victim is None and ids:
            self.victim = ids[0]
            self.admin.delete_contact(self.victim)
        return super().fetch_tasks_and_notes(ids, *args, **kwargs)


def test_a_contact_deleted_while_its_activity_is_read_does_not_fail_the_run(target: Target) -> None:
    target.run()
    hook = VanishingContactHook(target.sandbox.admin)
    report = target.run(hook=hook)  # the sweep meets a 404 for the vanished contact
    assert hook.victim is not None
    assert report.sweep.contacts > 0
    following = target.run()
    assert following.counts("contacts").deleted == 1
    assert dict(target.all_rows("ghl_contacts"))[hook.victim] is not None
    assert target.diff() == []


def test_a_target_schema_that_is_not_an_identifier_is_refused(tmp_path: Path) -> None:
    """``target_schema`` comes from DAG run conf and is written into DDL unquoted."""
    hook = EmbeddedSqliteHook(tmp_path / "t.sqlite")
    mapping = FieldMapping.load(MAPPING_FILE)
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        SqlSink(hook, mapping, schema="x; DROP TABLE ghl_contacts; --")
