"""HighLevel webhook events in the reconciliation: apply pending events first, then let the
polling backstop run at the budget the event stream allows.

The receiver (:mod:`airflow_provider_contacts.webhooks`) stores every verified event in the
target database (table ``ghl_webhook_events``). A run with an :class:`EventSync` does, before the
incremental search (``ReconcileEngine.run``):

1. **Read** up to ``max_events_per_run`` pending events of the location (oldest first), in chunks
   of ``chunk_size``. Each chunk is folded into what it names:

   - ``ContactCreate`` / ``ContactUpdate`` / ``ContactTagUpdate`` / ``ContactDndUpdate`` (any
     ``Contact*`` type but ``ContactDelete``): the contact is re-read;
   - ``ContactDelete``: the contact and its tasks and notes are tombstoned (or deleted with
     ``hard_delete``), as the deletion scan does it. Nothing else about that contact is read;
   - ``TaskCreate`` / ``TaskComplete`` / ``NoteCreate`` / ``NoteUpdate`` (any other ``Task*`` /
     ``Note*`` type): the tasks and notes of the event's ``contactId`` are re-read; the ones that
     are gone are tombstoned (as the sweep does);
   - ``TaskDelete`` / ``NoteDelete``: that task or note is tombstoned (no request);
   - any other type (HighLevel sends many more to an app: opportunities, appointments, ...) is
     consumed and counted as ``ignored``.

2. **Re-read** the named contacts by id in batches of up to 500 with one ``POST /contacts/search``
   each (contacts.json ``search-contacts-advanced``, filter ``{"field": "id", "operator": "eq",
   "value": [ids]}``): the same endpoint and shape as the incremental search, so a contact's
   stored row and content hash do not depend on the path that read it. Tasks and notes come from
   the batched task search and ``GET /contacts/{id}/notes`` (``Extractor.children``).

3. **Write** contacts, tasks, notes and tombstones and **mark the chunk's events consumed in the
   same transaction** (``EventSource.mark_consumed``): a run killed in between applies the chunk
   again next time, and a chunk is never consumed without its rows.

Idempotent whatever the delivery: rows come from the API, not from the event bodies, so a
duplicated or reordered event re-reads the same current state; a delete wins over any update of
the same record in the same chunk (HighLevel never reuses an id), and a record re-read alive while
an event of the chunk deletes it is not written. HighLevel's search index lags a few seconds
(``ghl-live-notes.md``), so a re-read can come back without the change an event announces: an
event for a contact the search does not find, or finds with a ``dateUpdated`` more than
``stale_tolerance`` older than the event's ``timestamp`` (the index's copy from before the
change), stays pending for ``search_lag_grace`` (the record is not written) and is then consumed
(the incremental search, deletion scan and sweep settle it).

**The backstop at a lower budget** (what events cannot see: task edits other than completion,
tasks and notes removed with their contact, lost deliveries). With events:

- the incremental search still runs every run (one request when few contacts changed); contacts
  it finds changed that no event announced are *unannounced changes*: evidence that deliveries
  are being lost (or are late);
- the **deletion scan** (one request per 500 contacts) runs only when it is due: every
  ``deletion_scan_period`` (24 h by default, instead of every run), at once when a run saw
  unannounced changes or a contact named by an event had vanished, and on every full run;
- the **sweep** of tasks and notes runs at most once per ``schedule_interval`` (the DAG's
  configured period) whatever the number of event-triggered runs in between; its slice is sized
  as without events, so the location is covered once per ``sweep_period``.

Everything a run did with events is in ``report.events`` (:meth:`EventRun.summary`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

#: The engine (``sync.engine.ReconcileEngine``): not imported, the engine imports this module.
ReconcileEngine = Any

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.errors import GHLAPIError
from airflow_provider_contacts.failures import is_not_found
from airflow_provider_contacts.sync.extract import Children, iso_utc, to_api_dict
from airflow_provider_contacts.sync.progress import hook_stat

if TYPE_CHECKING:
    from airflow_provider_contacts.sync.report import RunReport
    from airflow_provider_contacts.sync.state import SyncState
    from airflow_provider_contacts.sync.writes import SinkTransaction

__all__ = [
    "AsyncEventReader",
    "EventSource",
    "EventSync",
    "EventSyncConfig",
    "EventRun",
    "StoreEventSource",
    "PendingEvent",
    "contacts_by_id",
    "fold_events",
]

log = logging.getLogger(__name__)

#: Sync-state names (``ghl_sync_state``) of the event-driven backstop.
LAST_DELETION_SCAN_STATE = "events_last_deletion_scan_at"
LAST_SWEEP_STATE = "events_last_sweep_at"
#: ``POST /contacts/search`` takes at most 500 per page: the size of one by-id batch.
MAX_IDS_PER_SEARCH = 500
SEARCH_OPERATION = "search-contacts-advanced"


# -- events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingEvent:
    """One stored HighLevel event, reduced to what the reconcile needs.

    :param key: the store's id of the event (what ``mark_consumed`` takes).
    :param type: HighLevel's ``type`` (``ContactUpdate``, ``TaskDelete``, ...).
    :param location_id: ``locationId`` of the event.
    :param record_id: ``id`` of the contact, task or note the event is about.
    :param contact_id: ``contactId`` of a task or note event (the contact itself for contact events).
    :param timestamp: the event's ``timestamp`` (aware UTC), ``None`` when absent or not a date.
    :param webhook_id: ``webhookId`` (informational: the receiver dedupes on it).
    """

    key: Any
    type: str
    location_id: str | None
    record_id: str | None
    contact_id: str | None = None
    timestamp: datetime | None = None
    webhook_id: str | None = None

    @property
    def entity(self) -> str | None:
        """``contacts``, ``tasks``, ``notes``, or ``None`` for a type the reconcile ignores."""
        for prefix, entity in (("Contact", "contacts"), ("Task", "tasks"), ("Note", "notes")):
            if self.type.startswith(prefix):
                return entity
        return None

    @property
    def is_delete(self) -> bool:
        """Whether the event says its record was deleted (``ContactDelete``, ``TaskDelete``, ...)."""
        return self.type.endswith("Delete")

    @classmethod
    def from_body(cls, key: Any, body: Mapping[str, Any], **fallback: Any) -> PendingEvent:
        """From an event body as HighLevel sends it (``type``, ``locationId``, ``id``,
        ``contactId``, ``timestamp``, ``webhookId``); ``fallback`` fills what the body lacks."""
        etype = str(body.get("type") or fallback.get("type") or "")
        record_id = body.get("id") or fallback.get("record_id")
        contact_id = body.get("contactId") or fallback.get("contact_id")
        if etype.startswith("Contact") and not contact_id:
            contact_id = record_id
        return cls(
            key=key,
            type=etype,
            location_id=_text(body.get("locationId") or fallback.get("location_id")),
            record_id=_text(record_id),
            contact_id=_text(contact_id),
            timestamp=_moment(body.get("timestamp") or fallback.get("timestamp")),
            webhook_id=_text(body.get("webhookId") or fallback.get("webhook_id")),
        )

    @classmethod
    def from_row(cls, row: Any) -> PendingEvent:
        """From a stored row: a mapping or an object with attributes. The raw body (``body`` /
        ``raw_body`` / ``raw_json`` / ``payload``: JSON text, bytes or a dict) is the source; the
        row's own columns (``event_type``/``type``, ``location_id``, ``record_id``/``object_id``,
        ``contact_id``, ``event_timestamp``/``timestamp``, ``webhook_id``) fill what it lacks."""
        get = row.get if isinstance(row, Mapping) else (lambda name, default=None: getattr(row, name, default))
        key = _first(get, "webhook_id", "id", "event_id", "key")
        raw = _first(get, "body", "raw_body", "raw_json", "payload")
        body: Mapping[str, Any] = {}
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode("utf-8", errors="replace")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = {}
        if isinstance(raw, Mapping):
            body = raw
        return cls.from_body(
            key,
            body,
            type=_first(get, "event_type", "type"),
            location_id=_first(get, "location_id"),
            record_id=_first(get, "record_id", "object_id", "entity_id"),
            contact_id=_first(get, "contact_id"),
            timestamp=_first(get, "event_timestamp", "timestamp"),
            webhook_id=_first(get, "webhook_id"),
        )


def _first(get: Any, *names: str) -> Any:
    for name in names:
        value = get(name, None)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return parse_datetime(value)
    try:
        return parse_datetime(value) if value not in (None, "") else None
    except ValueError:
        return None


def _older_than_events(record: Mapping[str, Any], events: Sequence[PendingEvent], tolerance: timedelta) -> bool:
    """Whether ``record`` (a re-read contact) was last updated more than ``tolerance`` before the
    newest of ``events``: the search index still shows the contact from before the change."""
    updated = _moment(record.get("dateUpdated"))
    stamps = [e.timestamp for e in events if e.timestamp is not None]
    return updated is not None and bool(stamps) and updated < max(stamps) - tolerance


@runtime_checkable
class EventSource(Protocol):
    """Where pending events come from and are marked consumed.

    ``pending`` returns up to ``limit`` events of the location not yet consumed, oldest first.
    ``mark_consumed`` marks events consumed inside the sink transaction ``tx`` (the rows they
    caused commit with it), recording ``run_id`` (the Airflow run, or ``None``).
    """

    def pending(self, location_id: str, limit: int) -> Sequence[PendingEvent]: ...

    def mark_consumed(self, keys: Sequence[Any], tx: SinkTransaction, run_id: str | None) -> None: ...


class StoreEventSource:
    """:class:`EventSource` over the receiver's store (:mod:`airflow_provider_contacts.webhooks.store`)
    sharing the sink's connection, so consuming an event commits with the rows it caused.

    :param store: an object with ``pending(location_id, limit)`` (rows or dicts, oldest first)
        and ``mark_consumed(ids, <connection or transaction>, run_id)``.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def for_sink(cls, sink: Any) -> StoreEventSource:
        """The receiver's store (``WebhookEventStore``) on the sink's database and schema."""
        from airflow_provider_contacts.webhooks.store import WebhookEventStore

        return cls(WebhookEventStore(schema=sink.schema, engine=sqlalchemy_engine(sink.hook)))

    def pending(self, location_id: str, limit: int) -> list[PendingEvent]:
        return [row if isinstance(row, PendingEvent) else PendingEvent.from_row(row)
                for row in self.store.pending(location_id, limit)]

    def mark_consumed(self, keys: Sequence[Any], tx: SinkTransaction, run_id: str | None) -> None:
        if keys:
            self.store.mark_consumed(list(keys), tx, run_id)

    def close(self) -> None:
        """Dispose of the store's pooled connections."""
        dispose = getattr(self.store, "dispose", None)
        if dispose is not None:
            dispose()


class AsyncEventReader:
    """Async read of pending events for the triggerer (the receiver's store has sync methods
    only): the connection is read with ``aget_connection`` (never the sync lookup, which the
    triggerer's event loop refuses), the store is built on an engine made from it, and each read
    runs in a worker thread.

    :param target_conn_id: the SQL target connection; ``ghl_target`` that does not exist means
        the embedded SQLite file, as for the reconcile (:mod:`.target`).
    :param schema: schema of ``ghl_webhook_events``.
    """

    def __init__(self, target_conn_id: str, *, schema: str | None = None) -> None:
        self.target_conn_id = target_conn_id
        self.schema = schema
        self._store: Any = None

    async def _astore(self) -> Any:
        if self._store is None:
            from airflow_provider_contacts.webhooks.store import WebhookEventStore

            engine = await async_engine_for(self.target_conn_id)
            self._store = WebhookEventStore(self.target_conn_id, schema=self.schema, engine=engine)
        return self._store

    async def apending(self, location_id: str | None, limit: int) -> list[dict[str, Any]]:
        """``[{"webhook_id", "location_id", "event_type", "received_at"}]`` of up to ``limit``
        pending events (oldest first), of ``location_id`` or of every location."""
        import asyncio

        store = await self._astore()
        rows = await asyncio.to_thread(store.pending, location_id, limit)
        return [
            {"webhook_id": r.webhook_id, "location_id": r.location_id, "event_type": r.event_type,
             "received_at": r.received_at.isoformat() if r.received_at else None}
            for r in rows
        ]

    async def aclose(self) -> None:
        """Dispose of the engine's pooled connections."""
        if self._store is not None:
            self._store.dispose()
            self._store = None


def _sqlite_engine(path: Any) -> Any:
    """A SQLAlchemy engine on the SQLite file ``path`` (shared across threads, 60 s busy timeout)."""
    import sqlalchemy as sa

    return sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 60, "check_same_thread": False})


async def async_engine_for(target_conn_id: str) -> Any:
    """A SQLAlchemy engine on ``target_conn_id``'s database, resolved with ``aget_connection``."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from airflow_provider_contacts.sync.target import DEFAULT_TARGET_CONN_ID, embedded_sqlite_path

    try:
        conn = await BaseHook.aget_connection(target_conn_id)
    except AirflowNotFoundException:
        if target_conn_id != DEFAULT_TARGET_CONN_ID:
            raise
        path = embedded_sqlite_path()
        return _sqlite_engine(path)
    if conn.conn_type == "sqlite":
        host = conn.host or ""
        path = host[len("file:"):].split("?", 1)[0] if host.startswith("file:") else host
        return _sqlite_engine(path)
    hook = conn.get_hook(hook_params={"connection": conn})
    return hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True, "hide_parameters": True})


# -- folding ---------------------------------------------------------------------------------
@dataclass
class FoldedEvents:
    """What one chunk of events asks for (see the module docstring)."""

    contacts: dict[str, list[PendingEvent]] = field(default_factory=dict)  # contact id -> events naming it
    children_of: set[str] = field(default_factory=set)  # contacts whose tasks and notes to re-read
    deleted: dict[str, set[str]] = field(default_factory=lambda: {"contacts": set(), "tasks": set(), "notes": set()})
    ignored: list[PendingEvent] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)


def fold_events(events: Iterable[PendingEvent]) -> FoldedEvents:
    """Fold events into contacts to re-read, contacts whose children to re-read, and deletions.

    Order does not matter: a delete wins over any other event of the same record (HighLevel never
    reuses an id), and a contact deleted in the chunk has nothing else read.
    """
    out = FoldedEvents()
    for event in events:
        out.by_type[event.type or "(none)"] = out.by_type.get(event.type or "(none)", 0) + 1
        entity = event.entity
        if entity is None or not event.record_id and not (entity != "contacts" and event.contact_id):
            out.ignored.append(event)
            continue
        if event.is_delete:
            if event.record_id:
                out.deleted[entity].add(event.record_id)
            else:  # a task/note delete without its own id: re-read its contact's children
                out.children_of.add(event.contact_id or "")
        elif entity == "contacts":
            out.contacts.setdefault(event.record_id or "", []).append(event)
        elif event.contact_id:
            out.children_of.add(event.contact_id)
        else:
            out.ignored.append(event)
    gone = out.deleted["contacts"]
    for cid in gone:
        out.contacts.pop(cid, None)
    out.children_of -= gone
    out.children_of.discard("")
    return out


def contacts_by_id(hook: Any, ids: Sequence[str], *, batch: int = MAX_IDS_PER_SEARCH) -> dict[str, dict[str, Any]]:
    """Contacts with these ids as API dicts, by id (the ones the search does not find are absent).

    One ``POST /contacts/search`` (``search-contacts-advanced``) per ``batch`` ids with the filter
    ``{"field": "id", "operator": "eq", "value": [ids]}`` and ``pageLimit`` = the batch size. If
    the API refuses the list form (400/422), each id is searched alone (``"value": id``), slower
    but the same shape.
    """
    out: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(i for i in ids if i))
    size = max(1, min(batch, MAX_IDS_PER_SEARCH))
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        try:
            found = _search_ids(hook, chunk, list_form=True)
        except GHLAPIError as exc:
            if exc.status not in (400, 422) or is_not_found(exc):
                raise
            log.warning(
                "%s refused an id list filter (%s: %s); searching the %d ids one by one",
                SEARCH_OPERATION, exc.status, exc.message, len(chunk),
            )
            found = [c for cid in chunk for c in _search_ids(hook, [cid], list_form=False)]
        wanted = set(chunk)
        for contact in found:
            if contact.get("id") in wanted:
                out[str(contact["id"])] = contact
    return out


def _search_ids(hook: Any, ids: list[str], *, list_form: bool) -> list[dict[str, Any]]:
    value: Any = ids if list_form else ids[0]
    page = hook.search_contacts(
        filters=[{"field": "id", "operator": "eq", "value": value}], page_limit=max(1, len(ids))
    )
    return [to_api_dict(c) for c in page.contacts]


# -- the run ---------------------------------------------------------------------------------
@dataclass
class EventSyncConfig:
    """Knobs of the event-driven part of a run.

    :param max_events_per_run: pending events applied per run at most (the rest wait for the next).
    :param chunk_size: events per committed chunk (each chunk: one transaction).
    :param deletion_scan_period: with events, the deletion scan runs once per this period (and
        at once when the stream shows losses); ``None``: every run, as without events.
    :param sweep_every: with events, the sweep runs at most once per this interval; ``None``:
        the run's ``schedule_interval``.
    :param search_lag_grace: an event naming a contact the search does not find, or finds in a
        state older than the event, stays pending this long (HighLevel's search index lags), then
        is consumed.
    :param stale_tolerance: a re-read contact whose ``dateUpdated`` is more than this before its
        newest event's ``timestamp`` is the search index's copy from before the change (both
        times come from HighLevel's clock; the event is sent after the change is saved).
    """

    max_events_per_run: int = 20_000
    chunk_size: int = 500
    deletion_scan_period: timedelta | None = timedelta(hours=24)
    sweep_every: timedelta | None = None
    search_lag_grace: timedelta = timedelta(minutes=10)
    stale_tolerance: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if self.max_events_per_run < 1 or self.chunk_size < 1:
            raise ValueError("max_events_per_run and chunk_size must be >= 1")


class EventSync:
    """Events in a reconcile run: pass one to ``ReconcileEngine(..., events=EventSync(...))``.

    :param source: where events come from; ``None``: the receiver's store in the target
        database (:meth:`StoreEventSource.for_sink`).
    :param config: :class:`EventSyncConfig`.
    :param run_id: recorded with each consumed event (the Airflow run id).
    """

    def __init__(self, source: EventSource | None = None, config: EventSyncConfig | None = None,
                 *, run_id: str | None = None) -> None:
        self.source = source
        self.config = config or EventSyncConfig()
        self.run_id = run_id

    def begin(self, engine: ReconcileEngine, state: SyncState, report: RunReport, full: bool) -> EventRun:
        """Start the event part of one run (called by the engine)."""
        source = self.source if self.source is not None else StoreEventSource.for_sink(engine.sink)
        return EventRun(self, source, engine, state, report, full)


class EventRun:
    """One run's event work: :meth:`apply`, then :meth:`after_contacts`, the two ``*_due``
    decisions and :meth:`finish` (the engine calls them in that order)."""

    def __init__(self, sync: EventSync, source: EventSource, engine: ReconcileEngine, state: SyncState,
                 report: RunReport, full: bool) -> None:
        self.sync = sync
        self.config = sync.config
        self.source = source
        self.engine = engine
        self.state = state
        self.report = report
        self.full = full
        self.stats: dict[str, Any] = {
            "pending": 0, "applied": 0, "deferred": 0, "ignored": 0, "by_type": {},
            "contacts_read": 0, "contacts_not_found": 0, "contacts_stale": 0, "children_read": 0,
            "deleted": {"contacts": 0, "tasks": 0, "notes": 0},
            "requests": 0, "unannounced_changes": 0,
            "deletion_scan": None, "sweep": None, "stream": "healthy",
        }
        self._vanished = False
        self._before: int | None = None
        self._seen: set[Any] = set()
        with engine.sink.transaction() as tx:
            self._last_scan = _moment(tx.get_state(engine.location_id, LAST_DELETION_SCAN_STATE))
            self._last_sweep = _moment(tx.get_state(engine.location_id, LAST_SWEEP_STATE))

    # -- 1. apply ----------------------------------------------------------------------------
    def apply(self) -> None:
        """Apply the location's pending events, chunk by chunk (module docstring, steps 1-3)."""
        engine = self.engine
        requests_before = hook_stat(engine.hook, "requests")
        events = list(self.source.pending(engine.location_id, self.config.max_events_per_run))
        self._seen = {e.key for e in events}
        self.stats["pending"] = len(events)
        progress = getattr(engine, "progress", None)
        if progress is not None and events:
            progress.phase("webhook events", total=len(events), records=engine._done)
        for start in range(0, len(events), self.config.chunk_size):
            self._apply_chunk(events[start : start + self.config.chunk_size])
            if progress is not None and events:
                progress.tick(min(len(events), start + self.config.chunk_size), engine._done)
        self.stats["requests"] = hook_stat(engine.hook, "requests") - requests_before
        if events:
            log.info(
                "webhook events: %d applied, %d deferred (search lag), %d ignored, %d request(s)",
                self.stats["applied"], self.stats["deferred"], self.stats["ignored"], self.stats["requests"],
            )
        self._before = self._changed_contacts()

    def _apply_chunk(self, events: list[PendingEvent]) -> None:
        engine, report, now = self.engine, self.report, engine_now(self.engine)
        folded = fold_events(events)
        for name, count in folded.by_type.items():
            self.stats["by_type"][name] = self.stats["by_type"].get(name, 0) + count
        records = contacts_by_id(engine.hook, sorted(folded.contacts), batch=min(MAX_IDS_PER_SEARCH, engine.config.page_limit))
        self.stats["contacts_read"] += len(records)
        deferred: set[Any] = set()
        for cid, named in folded.contacts.items():
            record = records.get(cid)
            if record is not None and not _older_than_events(record, named, self.config.stale_tolerance):
                continue
            young = [e for e in named if e.timestamp is not None and now - e.timestamp < self.config.search_lag_grace]
            if young:  # the search does not show the change yet: keep the events for the next run
                deferred.update(e.key for e in named)
                if record is not None:
                    del records[cid]  # the index's copy from before the change: not written
                    self.stats["contacts_stale"] += 1
            elif record is None:
                self.stats["contacts_not_found"] += 1
                self._vanished = True
        children = engine.extract.children(sorted(folded.children_of)) if folded.children_of else Children([])
        if children.vanished:
            self._vanished = True
        self.stats["children_read"] += len(children.contact_ids)
        # A record re-read alive that an event of this chunk deletes is not written (search lag).
        children.tasks = [t for t in children.tasks if str(t.get("id")) not in folded.deleted["tasks"]]
        children.notes = [n for n in children.notes if str(n.get("id")) not in folded.deleted["notes"]]
        mapped, bad = engine._map("contacts", list(records.values()))
        consumed = [e.key for e in events if e.key not in deferred]
        with engine.sink.transaction() as tx:
            if mapped or bad:
                engine._write(tx, "contacts", mapped, bad, report, now)
            engine._write_children(tx, children, report, now)
            gone = sorted(folded.deleted["contacts"])
            if gone:
                for entity, n in engine._tombstone_contacts(tx, gone, now, report).items():
                    self.stats["deleted"][entity] += n
            for entity in ("tasks", "notes"):
                ids = sorted(folded.deleted[entity])
                if ids:
                    n = tx.mark_deleted(entity, ids, now)
                    report.counts(entity).add(deleted=n)
                    self.stats["deleted"][entity] += n
                    tx.clear_quarantine(entity, ids)
            self.source.mark_consumed(consumed, tx, self.sync.run_id)
        engine._reread.update(children.contact_ids)  # the sweep need not read them again this run
        self.stats["applied"] += len(consumed)
        self.stats["deferred"] += len(deferred)
        self.stats["ignored"] += len(folded.ignored)

    # -- 2. health ---------------------------------------------------------------------------
    def _changed_contacts(self) -> int:
        counts = self.report.counts("contacts")
        return int(counts.inserted + counts.updated + counts.quarantined)

    def after_contacts(self) -> None:
        """After the incremental search: contacts it wrote are changes no event announced."""
        if self.full or self._before is None:
            return
        unannounced = self._changed_contacts() - self._before
        if unannounced:
            # Changes made while this run was going are announced by events that arrived after it
            # read them (late, not lost): count those contacts out.
            late = {e.contact_id for e in self.source.pending(self.engine.location_id, self.config.max_events_per_run)
                    if e.entity == "contacts" and e.key not in self._seen}
            self.stats["late_events"] = len(late)
            unannounced = max(0, unannounced - len(late))
        self.stats["unannounced_changes"] = unannounced
        if unannounced:
            self.stats["stream"] = "losing or late"
            log.info("the incremental search found %d contact change(s) no event announced: the deletion "
                     "scan runs this run", unannounced)

    def deletion_scan_due(self) -> bool:
        """Whether this run scans for deleted contacts (module docstring, "the backstop")."""
        now = engine_now(self.engine)
        period = self.config.deletion_scan_period
        if self.full:
            why = "full run"
        elif period is None:
            why = "every run (deletion_scan_period unset)"
        elif self.stats["unannounced_changes"]:
            why = "unannounced changes"
        elif self._vanished:
            why = "a contact named by an event has vanished"
        elif self._last_scan is None:
            why = "first run with events"
        elif now - self._last_scan >= period:
            why = f"due (every {period})"
        else:
            self.stats["deletion_scan"] = f"skipped: last {iso_utc(self._last_scan)}, next after {iso_utc(self._last_scan + period)}"
            return False
        self.stats["deletion_scan"] = why
        self._scan_at = now
        return True

    def sweep_due(self) -> bool:
        """Whether this run sweeps a slice of tasks and notes (at most once per ``sweep_every``)."""
        now = engine_now(self.engine)
        every = self.config.sweep_every or self.engine.config.schedule_interval
        # A little slack: a run scheduled every hour starts a few seconds either side.
        if self._last_sweep is not None and now - self._last_sweep < every * 0.95:
            self.stats["sweep"] = f"skipped: last {iso_utc(self._last_sweep)}, every {every}"
            return False
        self.stats["sweep"] = f"due (every {every})"
        self._sweep_at = now
        return True

    # -- 3. finish ---------------------------------------------------------------------------
    def finish(self) -> None:
        """Record when the scan and the sweep last ran; put the stats in ``report.events``."""
        values: dict[str, Any] = {}
        if getattr(self, "_scan_at", None) is not None:
            values[LAST_DELETION_SCAN_STATE] = iso_utc(self._scan_at)
        if getattr(self, "_sweep_at", None) is not None:
            values[LAST_SWEEP_STATE] = iso_utc(self._sweep_at)
        if values:
            with self.engine.sink.transaction() as tx:
                tx.set_state(self.engine.location_id, values, engine_now(self.engine))
        self.report.events = self.summary()
        close = getattr(self.source, "close", None)
        if self.sync.source is None and close is not None:  # the store this run made
            close()

    def summary(self) -> dict[str, Any]:
        """JSON-ready stats of the run's event work (``report.events``)."""
        return json.loads(json.dumps(self.stats, default=str))


def sqlalchemy_engine(hook: Any) -> Any:
    """A SQLAlchemy engine on the database of a common-sql hook (the embedded SQLite file, or the
    hook's own ``get_sqlalchemy_engine``), for the receiver's store."""
    path = getattr(hook, "path", None)
    if path is not None and str(getattr(hook, "dialect_name", "")) == "sqlite":
        return _sqlite_engine(path)
    return hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True, "hide_parameters": True})


def engine_now(engine: Any) -> datetime:
    return engine.clock()
