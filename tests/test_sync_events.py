"""Webhook events drive the reconcile (``sync/events.py``): pending events are applied first with
requests close to the number of changes, duplicates and reordering are harmless, deliveries lost
on the way are repaired by the backstop within its period, and the event trigger wakes DAGs.

Events are stored in the receiver's table (``webhooks.store.WebhookEventStore``) of an SQLite
target, either written directly (crafted bodies, for precise cases) or delivered by the sandbox
over HTTP to the receiver app (signed, with losses and duplicates).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, RunReport, SqlSink, SyncConfig
from airflow_provider_contacts.sync.events import (
    EventSync,
    EventSyncConfig,
    PendingEvent,
    StoreEventSource,
    fold_events,
    sqlalchemy_engine,
)
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from airflow_provider_contacts.webhooks.events import parse_event
from airflow_provider_contacts.webhooks.store import WebhookEventStore
from support.verify import diff_target

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
HOUR = timedelta(hours=1)


class Clock:
    """A settable "now" for the engine (the backstop's periods are measured with it)."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class EventTarget:
    """An SQLite target with the receiver's events table, and runs with or without events."""

    def __init__(self, path: Path, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.location = sandbox.location_id
        self.mapping = FieldMapping.load(MAPPING_FILE)
        self.sink = SqlSink(EmbeddedSqliteHook(path), self.mapping)
        self.store = WebhookEventStore(engine=sqlalchemy_engine(self.sink.hook))
        self.store.ensure_table()
        self.clock = Clock()

    def run(self, events: bool = True, config: SyncConfig | None = None, event_config: EventSyncConfig | None = None,
            source: Any = None) -> RunReport:
        config = config or SyncConfig(sweep_period=timedelta(hours=3), schedule_interval=HOUR)
        sync = EventSync(source, event_config or EventSyncConfig(deletion_scan_period=timedelta(hours=3)),
                         run_id="test") if events else None
        hook = ContactsHook()
        try:
            return ReconcileEngine(hook, self.sink, self.mapping, config, clock=self.clock, events=sync).run()
        finally:
            hook.close()

    def diff(self) -> list[str]:
        return diff_target(self.sink, self.mapping, self.location, self.sandbox.admin.dump())

    def emit(self, etype: str, record_id: str, contact_id: str | None = None, *, age: timedelta = timedelta(0),
             webhook_id: str | None = None) -> None:
        """Store a crafted event as the receiver would (body as HighLevel documents it)."""
        body: dict[str, Any] = {"type": etype, "locationId": self.location, "id": record_id}
        if contact_id:
            body["contactId"] = contact_id
        body["timestamp"] = (datetime.now(timezone.utc) - age).isoformat().replace("+00:00", "Z")
        body["webhookId"] = webhook_id or str(uuid.uuid4())
        self.store.store(parse_event(json.dumps(body)))

    def pending(self) -> int:
        return self.store.count_pending(self.location)

    def row(self, table: str, rid: str) -> tuple[Any, ...] | None:
        with self.sink.transaction() as tx:
            rows = tx.query(f"SELECT id, deleted_at, raw_json FROM {table} WHERE id = ?", (rid,))
        return rows[0] if rows else None


@pytest.fixture
def target(tmp_path: Path, sandbox: Any, ghl_conn: str) -> EventTarget:
    sandbox.admin.reset(contacts=60)
    t = EventTarget(tmp_path / "target.sqlite", sandbox)
    t.run(events=False)  # the first load
    t.run()  # the first run with events sets the backstop's clocks (it scans once)
    yield t
    t.sink.close()
    t.store.dispose()


def _activity(sandbox: Any) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    truth = sandbox.admin.dump()
    tasks: dict[str, list[dict[str, Any]]] = {}
    notes: dict[str, list[dict[str, Any]]] = {}
    for t in truth["tasks"]:
        tasks.setdefault(t["contactId"], []).append(t)
    for n in truth["notes"]:
        notes.setdefault(n["contactId"], []).append(n)
    return tasks, notes, sorted(truth["contacts"], key=lambda c: c["id"])


def make_changes(t: EventTarget, *, seed: int, n: int = 2) -> list[tuple[str, str, str | None]]:
    """Change the sandbox (contacts updated, created, deleted; tasks completed, created, deleted;
    notes created, edited, deleted) and return the events HighLevel would send: ``(type, id, contactId)``."""
    rng = random.Random(seed)
    admin = t.sandbox.admin
    tasks, notes, contacts = _activity(t.sandbox)
    pool = [c["id"] for c in contacts]
    rng.shuffle(pool)
    taken: set[str] = set()

    def pick(wanted: Any) -> list[str]:
        ids = [cid for cid in pool if cid not in taken and wanted(cid)][:n]
        taken.update(ids)
        return ids

    out: list[tuple[str, str, str | None]] = []
    for cid in pick(lambda c: len(tasks.get(c, [])) >= 2):
        open_tasks = [x for x in tasks[cid] if not x.get("completed")]
        if open_tasks:
            admin.update_task(cid, open_tasks[0]["id"], completed=True)
            out.append(("TaskComplete", open_tasks[0]["id"], cid))
        created = admin.create_task(cid, title=f"Call back {seed}")
        out.append(("TaskCreate", created["id"], cid))
        admin.delete_task(cid, tasks[cid][-1]["id"])
        out.append(("TaskDelete", tasks[cid][-1]["id"], cid))
    for cid in pick(lambda c: bool(notes.get(c))):
        note = admin.create_note(cid, body=f"Spoke on the phone ({seed})")
        out.append(("NoteCreate", note["id"], cid))
        admin.update_note(cid, notes[cid][0]["id"], body=f"Edited {seed}")
        out.append(("NoteUpdate", notes[cid][0]["id"], cid))
    for cid in pick(lambda c: True):
        admin.update_contact(cid, city=f"City {seed}-{cid[:4]}")
        out.append(("ContactUpdate", cid, None))
    for cid in pick(lambda c: bool(tasks.get(c) or notes.get(c))):
        admin.delete_contact(cid)  # its tasks and notes go with it, unannounced (ghl-live-notes.md)
        out.append(("ContactDelete", cid, None))
    created = admin.create_contact(firstName=f"Webhook{seed}", email=f"webhook.{seed}@example.com")
    out.append(("ContactCreate", created["id"], None))
    return out


def test_pending_events_are_applied_with_requests_close_to_the_number_of_changes(target: EventTarget) -> None:
    changes = make_changes(target, seed=1)
    for etype, rid, cid in changes:
        target.emit(etype, rid, cid)
    assert target.pending() == len(changes)
    target.sandbox.admin.reset_counters()

    report = target.run()

    assert target.diff() == []
    assert target.pending() == 0
    ev = report.events
    assert ev["applied"] == len(changes) and ev["deferred"] == 0
    assert ev["deleted"]["contacts"] == 2 and ev["deleted"]["tasks"] >= 2
    # The stream is healthy: no deletion scan, no sweep (it ran less than an hour ago).
    assert ev["unannounced_changes"] == 0 and ev["deletion_scan"].startswith("skipped")
    assert ev["sweep"].startswith("skipped") and report.sweep.contacts == 0
    # Contacts: one by-id search; activity: one task search + one notes request per contact named
    # by a task/note event; plus the incremental search. Nothing else.
    children = len({cid for etype, _, cid in changes if cid and not etype.startswith("Contact")})
    assert ev["children_read"] == children
    assert report.requests <= len(changes) + 3, report.requests
    assert report.requests == target.sandbox.admin.counters()["total"]
    # Consumed in the target, with the run id.
    with target.sink.transaction() as tx:
        assert tx.query("SELECT DISTINCT consumed_by_run FROM ghl_webhook_events") == [("test",)]


def test_duplicated_and_reordered_events_are_harmless(target: EventTarget) -> None:
    changes = make_changes(target, seed=2)
    rng = random.Random(5)
    shuffled = changes * 2  # every event delivered twice (distinct webhook ids: duplicates the receiver cannot see)
    rng.shuffle(shuffled)
    deleted = next(rid for etype, rid, _ in changes if etype == "ContactDelete")
    shuffled.append(("ContactUpdate", deleted, None))  # a late update of a contact already deleted
    for etype, rid, cid in shuffled:
        target.emit(etype, rid, cid)

    target.run()
    assert target.diff() == []
    assert target.row("ghl_contacts", deleted)[1] is not None  # the delete wins

    # The same events again (a replay): nothing changes.
    for etype, rid, cid in shuffled:
        target.emit(etype, rid, cid)
    again = target.run()
    assert target.diff() == []
    for table in ("ghl_contacts", "ghl_tasks", "ghl_notes"):
        counts = again.tables[table]
        assert (counts.inserted, counts.updated, counts.deleted) == (0, 0, 0), (table, counts)


@pytest.fixture
def receiver(target: EventTarget) -> Any:
    """The receiver app (``webhooks.app``) served by uvicorn in a thread, storing into the
    target, verifying with the sandbox's keys; the sandbox delivers the location's events to it.
    The sandbox's webhook settings are restored afterwards (it is shared by the session)."""
    import socket
    import threading

    import uvicorn

    from airflow_provider_contacts.webhooks.app import WebhookSettings, create_app

    admin = target.sandbox.admin
    keys = admin.webhook_keys()
    settings = WebhookSettings(rsa_public_key=keys["rsa_public_key_pem"], ed25519_public_key=keys["ed25519_public_key_pem"])
    app = create_app(settings, store=target.store)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        threading.Event().wait(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/events"
    before = {k: admin.config()[k] for k in ("webhook_loss_rate", "webhook_duplicate_rate", "webhook_time_scale")}
    admin.configure(webhook_time_scale=0.001)
    admin.subscribe_webhook(url, target.location)
    try:
        yield admin
    finally:
        admin.unsubscribe_webhook(url)
        admin.configure(**before)
        server.should_exit = True
        thread.join(10)


def test_sandbox_events_drive_the_reconcile_and_lost_ones_are_repaired_within_the_sweep_period(
    target: EventTarget, receiver: Any
) -> None:
    # 1. Every delivery arrives: the run costs about one request per event.
    make_changes(target, seed=1)
    log = receiver.wait_for_webhooks(timeout_s=120)
    assert log["by_outcome"].get("delivered", 0) == log["emitted"] > 0
    stored = target.pending()
    report = target.run()
    assert target.diff() == []
    assert report.events["applied"] == stored and target.pending() == 0
    assert report.requests <= stored + 3, (report.requests, stored)
    assert report.events["deletion_scan"].startswith("skipped") and report.sweep.contacts == 0

    # 2. 10 % of the deliveries are lost and 10 % arrive twice (the receiver dedupes by webhookId).
    receiver.clear_webhook_deliveries()
    receiver.configure(webhook_loss_rate=0.10, webhook_duplicate_rate=0.10)
    for round_ in range(3):
        make_changes(target, seed=100 + round_, n=2)
    log = receiver.wait_for_webhooks(timeout_s=120)
    assert log["by_outcome"].get("lost", 0) > 0, log["by_outcome"]
    runs = 0
    while target.diff():
        target.clock.advance(HOUR)
        target.run()
        runs += 1
        assert runs <= 4, target.diff()  # sweep_period 3 h at hourly runs: 3 runs, plus the first
    assert target.pending() == 0


def test_an_event_for_a_contact_the_search_does_not_show_yet_waits(target: EventTarget) -> None:
    target.emit("ContactCreate", "notIndexedYet0000001")  # e.g. HighLevel's search index lags
    report = target.run()
    assert report.events["deferred"] == 1 and target.pending() == 1
    target.emit("ContactUpdate", "longGoneContact00001", age=timedelta(hours=1))  # past the grace
    report = target.run()
    assert report.events["contacts_not_found"] == 1
    assert report.events["deletion_scan"] == "a contact named by an event has vanished"
    assert target.pending() == 1  # the young one still waits


def test_an_event_the_lagging_search_index_shows_from_before_the_change_waits(target: EventTarget) -> None:
    """HighLevel's search index lags (ghl-live-notes.md): the re-read of an updated contact can
    return its copy from before the update. That copy is not written and the event stays pending
    until the search shows the change; an event past the grace writes what the search shows."""
    sb = target.sandbox
    contacts = sb.admin.dump()["contacts"]
    lagging, old = contacts[7], contacts[8]
    before = target.row("ghl_contacts", lagging["id"])
    sb.admin.configure(search_lag_s=30)  # the index shows changes 30 s late
    sb.admin.update_contact(lagging["id"], city="Lagging City")
    target.emit("ContactUpdate", lagging["id"])
    target.emit("ContactUpdate", old["id"], age=timedelta(hours=1))  # a late delivery: past the grace

    report = target.run()
    assert report.events["contacts_stale"] == 1 and report.events["deferred"] == 1
    assert report.events["applied"] == 1 and target.pending() == 1
    assert target.row("ghl_contacts", lagging["id"]) == before  # the index's old copy was not written

    sb.admin.configure(search_lag_s=0)  # the index caught up
    report = target.run()
    assert report.events["applied"] == 1 and report.events["contacts_stale"] == 0 and target.pending() == 0
    assert "Lagging City" in target.row("ghl_contacts", lagging["id"])[2]
    assert target.diff() == []


def test_events_are_consumed_in_the_same_transaction_as_their_rows(target: EventTarget) -> None:
    contact = target.sandbox.admin.dump()["contacts"][5]
    target.sandbox.admin.update_contact(contact["id"], city="Transactional")
    target.emit("ContactUpdate", contact["id"])
    before = target.row("ghl_contacts", contact["id"])

    class Failing(StoreEventSource):
        def mark_consumed(self, keys: Any, tx: Any, run_id: Any) -> None:
            super().mark_consumed(keys, tx, run_id)
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        target.run(source=Failing(target.store))
    assert target.pending() == 1 and target.row("ghl_contacts", contact["id"]) == before
    target.run()
    assert target.pending() == 0 and "Transactional" in target.row("ghl_contacts", contact["id"])[2]


def test_folding_lets_deletes_win_and_ignores_other_types() -> None:
    def ev(etype: str, rid: str | None, cid: str | None = None) -> PendingEvent:
        return PendingEvent.from_body(uuid.uuid4().hex, {"type": etype, "locationId": "L", "id": rid, "contactId": cid})

    folded = fold_events([
        ev("ContactUpdate", "c1"), ev("ContactDelete", "c1"), ev("NoteCreate", "n1", "c1"),
        ev("TaskComplete", "t1", "c2"), ev("TaskDelete", "t2", "c2"), ev("OpportunityCreate", "o1"),
        ev("ContactTagUpdate", "c3"),
    ])
    assert set(folded.contacts) == {"c3"}
    assert folded.children_of == {"c2"}
    assert folded.deleted == {"contacts": {"c1"}, "tasks": {"t2"}, "notes": set()}
    assert [e.type for e in folded.ignored] == ["OpportunityCreate"]
    row = {"webhook_id": "w1", "event_type": "NoteDelete", "entity_id": "n9", "contact_id": "c9",
           "body": json.dumps({"type": "NoteDelete", "id": "n9", "contactId": "c9", "locationId": "L",
                               "timestamp": "2025-01-28T14:35:00Z"})}
    event = PendingEvent.from_row(row)
    assert (event.key, event.entity, event.is_delete, event.location_id) == ("w1", "notes", True, "L")
    assert event.timestamp == datetime(2025, 1, 28, 14, 35, tzinfo=timezone.utc)


# -- the trigger -------------------------------------------------------------------------------
def test_the_trigger_fires_once_per_new_batch_of_pending_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_contacts.triggers.webhook_events import GHLWebhookEventTrigger

    db = tmp_path / "events.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_EVENTS_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    store = WebhookEventStore("events_db")
    trigger = GHLWebhookEventTrigger(target_conn_id="events_db", location_id="L1", poll_interval=0.05,
                                     renotify_after=3600)
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    trigger = GHLWebhookEventTrigger(**kwargs)

    def put(location: str) -> str:
        body = {"type": "ContactUpdate", "locationId": location, "id": uuid.uuid4().hex[:20],
                "timestamp": datetime.now(timezone.utc).isoformat(), "webhookId": uuid.uuid4().hex}
        store.store(parse_event(json.dumps(body)))
        return body["webhookId"]

    async def scenario() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        gen = trigger.run()

        async def next_event() -> dict[str, Any]:
            return (await asyncio.wait_for(gen.__anext__(), timeout=10)).payload

        put("other-location")  # not this trigger's location
        first = put("L1")
        put("L1")
        seen.append(await next_event())
        waiting = asyncio.ensure_future(next_event())
        await asyncio.sleep(0.4)
        assert not waiting.done()  # the same pending events are not announced again
        store.mark_consumed([first], None, "r1")
        await asyncio.sleep(0.2)
        assert not waiting.done()  # fewer pending events: nothing new
        put("L1")
        seen.append(await waiting)
        await gen.aclose()
        return seen

    first, second = asyncio.run(scenario())
    assert first["status"] == "pending" and first["location_ids"] == ["L1"] and first["pending"] == 2
    assert second["pending"] == 2 and second["new"] == 1
    assert classpath.endswith("GHLWebhookEventTrigger")
    store.dispose()


def test_an_event_driven_reconcile_dag_runs_on_its_schedule_or_pending_events() -> None:
    from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule

    from airflow_provider_contacts.sync.dag import build_reconcile_dag
    from airflow_provider_contacts.triggers.webhook_events import GHLWebhookEventTrigger

    dag = build_reconcile_dag("events_dag", event_driven=True, params={"target_conn_id": "warehouse"})
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, GHLWebhookEventTrigger) and watcher.trigger.target_conn_id == "warehouse"
    assert "run interval (sizes the task/note sweep): 1:00:00" in dag.doc_md  # the hourly part sizes the sweep
    only_events = build_reconcile_dag("events_only", event_driven=True, schedule=None)
    assert [a.name for a in only_events.timetable.asset_condition.objects] == ["ghl_webhook_events"]
    with pytest.raises(ValueError, match="target_conn_id"):
        GHLWebhookEventTrigger(target_conn_id=" ")
