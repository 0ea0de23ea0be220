"""End to end on the live-like sandbox over real HTTP (issue #8 "Done when").

A location whose custom fields share no name with the shipped mapping, whose phones include numbers
outside any numbering plan and whose notes hold a NUL character, read with a token that lacks
``locations/tasks.readonly`` (the hook falls back to one task list per contact, with one warning).
Contacts, tasks and notes are created, changed and deleted between runs through the sandbox's
admin surface; a deleted contact answers ``400 Contact not found`` on GET. Two runs go through the
engine (``reconcile_location``), the third through the DAG under ``dag.test()``. After each run
the target equals the sandbox field by field (``support.verify.diff_target`` against ``truth()``),
nothing is quarantined, and the run report carries the fallback warning exactly once.

On SQLite and on PostgreSQL (``GHL_TEST_POSTGRES_URL``; skipped with the reason when unset).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, RunReport, SqlSink, SyncConfig, get_target_hook, reconcile_location
from support.verify import diff_target, live_rows

REPO_ROOT = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml"
DAG_ID = "ghl_contacts_reconcile"
SCOPE = "locations/tasks.readonly"
OFF_PLAN = ("+99912345678", "+1555012")  # stored as given: outside any numbering plan
#: Every incremental run sweeps every contact's tasks and notes (sweep period = one run), so the
#: target can equal the sandbox after each run, task and note edits of untouched contacts included.
CONFIG = SyncConfig(sweep_period=timedelta(hours=1), schedule_interval=timedelta(hours=1))


@dataclass
class E2ETarget:
    """The SQL target the engine and the DAG both write (connection ``ghl_target``)."""

    kind: str
    schema: str | None
    sink: SqlSink
    dag_conf: dict[str, Any] = field(default_factory=dict)

    def deleted_at(self, table: str, ids: list[str]) -> dict[str, Any]:
        with self.sink.transaction() as tx:
            rows = tx.query(f"SELECT id, deleted_at FROM {self.sink.table(table)}")
        return {str(r[0]): r[1] for r in rows if str(r[0]) in ids}

    def quarantined(self) -> int:
        with self.sink.transaction() as tx:
            return int(tx.query(f"SELECT count(*) FROM {self.sink.table('ghl_quarantine')}")[0][0])

    def last_run(self, location_id: str) -> dict[str, Any]:
        with self.sink.transaction() as tx:
            return tx.get_state(location_id, "last_run")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def e2e_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[E2ETarget]:
    schema = None
    if request.param == "sqlite":
        monkeypatch.setenv("AIRFLOW_CONN_GHL_TARGET",
                           json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "e2e.sqlite")}))
    else:
        monkeypatch.setenv("AIRFLOW_CONN_GHL_TARGET", request.getfixturevalue("postgres_url"))
        schema = f"ghl_e2e_{uuid.uuid4().hex[:10]}"
    sink = SqlSink(get_target_hook("ghl_target"), FieldMapping.load(MAPPING_FILE), schema=schema)
    yield E2ETarget(request.param, schema, sink, {"target_schema": schema or "", "sweep_period_hours": 1})
    sink.close()
    if schema:
        get_target_hook("ghl_target").run(f"DROP SCHEMA IF EXISTS {schema} CASCADE", autocommit=True)


@pytest.fixture
def reconcile_dag(airflow_db: Path) -> Any:
    """The reconcile DAG, parsed afresh, without retries (a failure here is a finding)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "ghl_contacts_reconcile.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(DAG_ID)
    for task in dag.tasks:
        task.retries = 0
    return dag


@dataclass
class Changes:
    """What :func:`change_location` did, by kind."""

    contacts_created: list[str] = field(default_factory=list)
    contacts_updated: list[str] = field(default_factory=list)
    contacts_deleted: list[str] = field(default_factory=list)
    children_of_deleted: dict[str, list[str]] = field(default_factory=lambda: {"ghl_tasks": [], "ghl_notes": []})
    tasks_created: list[str] = field(default_factory=list)
    tasks_changed: list[str] = field(default_factory=list)
    tasks_deleted: list[str] = field(default_factory=list)
    notes_created: list[str] = field(default_factory=list)
    notes_changed: list[str] = field(default_factory=list)
    notes_deleted: list[str] = field(default_factory=list)


def _custom_value(definition: dict[str, Any]) -> Any:
    kind = definition.get("dataType")
    if kind in ("NUMERICAL", "MONETORY"):
        return 42
    if kind == "DATE":
        return "2024-02-29"
    if kind in ("TEXT", "LARGE_TEXT", "PHONE", "EMAIL"):
        return "changed by the e2e test"
    return None


def change_location(admin: Any, round_no: int, untouchable: set[str]) -> Changes:
    """Create, change and delete contacts, tasks and notes through the admin surface, like CRM
    users. Contacts whose tasks and notes change are left untouched themselves (so only the sweep
    sees those changes); ``untouchable`` contacts (created earlier) are left alone."""
    truth = admin.dump()
    done = Changes()
    tasks_of: dict[str, list[dict[str, Any]]] = {}
    notes_of: dict[str, list[dict[str, Any]]] = {}
    for task in truth["tasks"]:
        tasks_of.setdefault(task["contactId"], []).append(task)
    for note in truth["notes"]:
        notes_of.setdefault(note["contactId"], []).append(note)
    with_children = sorted(c["id"] for c in truth["contacts"]
                           if tasks_of.get(c["id"]) and notes_of.get(c["id"]) and c["id"] not in untouchable)
    plain = sorted(c["id"] for c in truth["contacts"] if c["id"] not in with_children and c["id"] not in untouchable)
    picked = with_children[3 * (round_no - 1): 3 * round_no]
    assert len(picked) == 3 and len(plain) >= 2 * round_no, "the location is too small for this scenario"
    doomed, edited, pruned = picked

    for i, phone in enumerate((OFF_PLAN[round_no % 2], "(201) 555-0143 ext. 12")):
        created = admin.create_contact(firstName=f"E2E{round_no}.{i}", lastName="Neu", email=f"E2E.{round_no}.{i}@Example.org",
                                       phone=phone, tags=["e2e"], dateOfBirth="05/15/1972")
        done.contacts_created.append(created["id"])
        done.tasks_created.append(admin.create_task(created["id"], title=f"Welcome {round_no}.{i}")["id"])
        done.notes_created.append(admin.create_note(created["id"], body=f"Hello\u0000world {round_no}.{i}")["id"])

    fields = [f for f in truth["customFields"] if _custom_value(f) is not None]
    for cid in plain[2 * (round_no - 1): 2 * round_no]:
        update: dict[str, Any] = {"city": f"Round {round_no}", "tags": ["e2e-updated"]}
        if fields:
            update["customFields"] = [{"id": fields[0]["id"], "field_value": _custom_value(fields[0])}]
        admin.update_contact(cid, **update)
        done.contacts_updated.append(cid)

    done.children_of_deleted["ghl_tasks"] = [t["id"] for t in tasks_of[doomed]]
    done.children_of_deleted["ghl_notes"] = [n["id"] for n in notes_of[doomed]]
    admin.delete_contact(doomed)  # with its tasks and notes
    done.contacts_deleted.append(doomed)

    # Tasks and notes of contacts that themselves stay untouched: only the sweep sees these.
    task, note = tasks_of[edited][0], notes_of[edited][0]
    done.tasks_created.append(admin.create_task(edited, title=f"Sweep-only task {round_no}", body="later")["id"])
    admin.update_task(edited, task["id"], title=f"{task['title']} (edited {round_no})", completed=not task["completed"])
    done.tasks_changed.append(task["id"])
    done.notes_created.append(admin.create_note(edited, body=f"Sweep-only note {round_no}")["id"])
    admin.update_note(edited, note["id"], body=f"{note['body']} (edited {round_no})")
    done.notes_changed.append(note["id"])
    admin.delete_task(pruned, tasks_of[pruned][0]["id"])
    admin.delete_note(pruned, notes_of[pruned][0]["id"])
    done.tasks_deleted.append(tasks_of[pruned][0]["id"])
    done.notes_deleted.append(notes_of[pruned][0]["id"])
    return done


def _fallback_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if SCOPE in w]


def assert_target_equals_sandbox(target: E2ETarget, sandbox: Any, report: dict[str, Any]) -> None:
    """Field by field equal to the sandbox's truth, nothing quarantined, one fallback warning."""
    mapping = FieldMapping.load(MAPPING_FILE)  # a fresh one: diff_target binds the stored columns
    assert diff_target(target.sink, mapping, sandbox.location_id, sandbox.truth()) == []
    assert {t: (c["quarantined"], c["rejected"]) for t, c in report["tables"].items()} == {
        "ghl_contacts": (0, 0), "ghl_tasks": (0, 0), "ghl_notes": (0, 0)}
    assert target.quarantined() == 0
    fallback = _fallback_warnings(report["warnings"])
    assert len(fallback) == 1, report["warnings"]
    assert "GET /contacts/{id}/tasks" in fallback[0]


def assert_changes_landed(target: E2ETarget, sandbox: Any, done: Changes, report: dict[str, Any]) -> None:
    """The deletions are tombstones (a deleted contact's tasks and notes with it); the rest is in
    the target with the sandbox's values (checked by diff_target)."""
    for cid in done.contacts_deleted:
        with sandbox.client() as client:  # the live API's answer for a deleted contact
            answer = client.get(f"/contacts/{cid}")
        assert (answer.status_code, answer.json()["message"]) == (400, "Contact not found")
    deleted = target.deleted_at("ghl_contacts", done.contacts_deleted)
    assert set(deleted) == set(done.contacts_deleted) and None not in deleted.values()
    for table, ids in done.children_of_deleted.items():
        rows = target.deleted_at(table, ids)
        assert set(rows) == set(ids) and None not in rows.values(), table
    for table, ids in (("ghl_tasks", done.tasks_deleted), ("ghl_notes", done.notes_deleted)):
        assert None not in target.deleted_at(table, ids).values()
    live = {t: live_rows(target.sink, e, sandbox.location_id) for e, t in
            (("contacts", "ghl_contacts"), ("tasks", "ghl_tasks"), ("notes", "ghl_notes"))}
    assert set(done.contacts_created) <= set(live["ghl_contacts"])
    assert set(done.tasks_created + done.tasks_changed) <= set(live["ghl_tasks"])
    assert set(done.notes_created + done.notes_changed) <= set(live["ghl_notes"])
    counts = report["tables"]
    assert counts["ghl_contacts"]["deleted"] == len(done.contacts_deleted)
    assert counts["ghl_contacts"]["inserted"] == len(done.contacts_created)
    assert counts["ghl_tasks"]["deleted"] == len(done.children_of_deleted["ghl_tasks"]) + len(done.tasks_deleted)
    assert counts["ghl_notes"]["deleted"] == len(done.children_of_deleted["ghl_notes"]) + len(done.notes_deleted)


def _engine_run(target: E2ETarget, sandbox: Any, caplog: pytest.LogCaptureFixture) -> tuple[RunReport, dict[str, int]]:
    """One run through the engine; returns its report and the sandbox's request counts by operation."""
    sandbox.admin.reset_counters()
    caplog.clear()
    mapping = FieldMapping.load(MAPPING_FILE)
    target.sink.mapping = mapping
    hook = ContactsHook()  # ghl_default: the token without locations/tasks.readonly
    try:
        with caplog.at_level(logging.WARNING):
            report = reconcile_location(hook, target.sink, mapping, CONFIG)
    finally:
        hook.close()
    logged = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert len(logged) == 1 and SCOPE in logged[0]  # the hook says it once too
    counters = sandbox.admin.counters()
    assert counters["by_operation"].get("task-search", 0) >= 1 and counters["status_401"] >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    return report, counters["by_operation"]


def test_reconcile_a_live_like_location_end_to_end(
    e2e_target: E2ETarget,
    sandbox: Any,
    ghl_conn_factory: Callable[..., str],
    reconcile_dag: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.admin.reset(contacts=40)
    assert ghl_conn_factory(missing_scopes=[SCOPE]) == "ghl_default"
    truth = sandbox.truth()
    location = sandbox.location_id

    # The location as the live API has it.
    mapping = FieldMapping.load(MAPPING_FILE)
    mapped_names = {c.name for cols in mapping.tables.values() for c in cols}
    mapped_names |= {s for cols in mapping.tables.values() for c in cols for s in c.sources}
    custom = truth["customFields"]
    assert custom and not any(
        {f["name"], f.get("fieldKey", ""), f.get("fieldKey", "").removeprefix("contact.")} & mapped_names for f in custom
    ), "the location's custom fields share no name with the shipped mapping"
    phones = {c.get("phone") for c in truth["contacts"]}
    assert set(OFF_PLAN) <= phones and "+12010710892" in phones
    assert any("\u0000" in (n.get("body") or "") for n in truth["notes"])

    # Run 1: the engine, first (full) load.
    first, _ = _engine_run(e2e_target, sandbox, caplog)
    assert first.mode == "full" and first.counts("contacts").inserted == len(truth["contacts"])
    assert_target_equals_sandbox(e2e_target, sandbox, first.to_dict())
    contacts = live_rows(e2e_target.sink, "contacts", location)
    by_phone = {c.get("phone"): contacts[c["id"]]["phone"] for c in truth["contacts"] if c.get("phone")}
    assert by_phone["+99912345678"] == "+99912345678" and by_phone["+1555012"] == "+1555012"
    assert by_phone["+12010710892"] == "+12010710892" and by_phone["(201) 555-0143"] == "+12015550143"
    assigned = {c.column for c in e2e_target.sink.mapping.custom_columns}
    assert len(assigned) == len(custom) and all(c.startswith("cf_") for c in assigned)
    assert first.cleaned["ghl_notes"]["body"] >= 1  # the NUL is gone, the note is there

    # Run 2: the engine again, incremental, after changes of every kind.
    done = change_location(sandbox.admin, 1, set())
    second, requests = _engine_run(e2e_target, sandbox, caplog)
    assert second.mode == "incremental"
    assert requests["get-contact"] == len(done.contacts_deleted)  # the deletion confirmed: 400 Contact not found
    assert_target_equals_sandbox(e2e_target, sandbox, second.to_dict())
    assert_changes_landed(e2e_target, sandbox, done, second.to_dict())
    assert second.counts("contacts").updated >= len(done.contacts_updated)

    # Run 3: the DAG, under dag.test(), after another round of changes.
    more = change_location(sandbox.admin, 2, set(done.contacts_created))
    run = reconcile_dag.test(run_conf=e2e_target.dag_conf)
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    third = e2e_target.last_run(location)
    assert third["mode"] == "incremental" and third["location_id"] == location
    assert_target_equals_sandbox(e2e_target, sandbox, third)
    assert_changes_landed(e2e_target, sandbox, more, third)
