"""Durable storage of received webhook events in the target database, and the API to consume them.

The receiver (:mod:`.app`) writes every accepted event to the table ``ghl_webhook_events`` of the
sync's target (any common-sql connection; SQLite and PostgreSQL are tested) and commits before it
answers 200. The reconcile reads pending events with :meth:`WebhookEventStore.pending` and marks
them consumed with :meth:`WebhookEventStore.mark_consumed` **in the same transaction as the rows
it writes**, so an event is consumed exactly when its effect has committed.

Table ``ghl_webhook_events`` (created on first use, in ``schema`` when one is set):

===================  ========================  ==================================================
column               type                      content
===================  ========================  ==================================================
``webhook_id``       VARCHAR(255) primary key  ``webhookId`` of the body, or ``sha256:<hex>``
                                               derived from the body when it has none
                                               (:func:`.events.derive_webhook_id`)
``event_type``       VARCHAR(255)              ``type`` (``ContactUpdate``, ``TaskDelete``, ...,
                                               or any type HighLevel adds)
``location_id``      VARCHAR(255)              ``locationId``
``contact_id``       VARCHAR(255)              the contact concerned: ``id`` of a contact event,
                                               ``contactId`` of a task or note event
``entity_id``        VARCHAR(255)              ``id`` of the body (contact, task or note id)
``event_timestamp``  timestamp (UTC)           ``timestamp`` of the body (a retry keeps it)
``received_at``      timestamp (UTC)           when this receiver first stored the event
``body``             TEXT                      the body as received (JSON text)
``consumed_at``      timestamp (UTC), NULL     when a run consumed it (``NULL``: pending)
``consumed_by_run``  VARCHAR(250), NULL        that run's id
===================  ========================  ==================================================

Index ``ix_ghl_webhook_events_pending`` on ``(location_id, consumed_at, received_at)``.
Timestamps are ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL and ISO-8601 UTC text with microseconds
on SQLite (``2024-05-01T12:30:00.000000+00:00``; sorts as text), like the sync's own tables.
Identifiers are quoted by SQLAlchemy's dialect of the target.

Consuming events (the reconcile)::

    store = WebhookEventStore("ghl_target")
    events = store.pending("ve9EPM428h8vShlRW1KT", limit=1000)
    ...  # apply them (re-read contacts by id, tombstone deletes, ...)
    with sink.transaction() as tx:        # the reconcile's own DB-API transaction (SqlSink)
        ...                               # write rows
        store.mark_consumed([e.webhook_id for e in events], tx, run_id)
    # or with SQLAlchemy:  with store.engine.begin() as conn: ...; store.mark_consumed(ids, conn, run_id)

``mark_consumed`` only marks events still pending (``consumed_at IS NULL``) and returns how many it
marked. A run that fails before its commit leaves its events pending for the next run. Duplicates
never reach the table (the key is the webhook id; a retried delivery is an insert that does
nothing), so an event is applied at most once per successful run and at least once overall.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.types import TypeDecorator

from airflow_provider_contacts.webhooks.events import WebhookEvent

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["DEFAULT_TARGET_CONN_ID", "TABLE_NAME", "StorageUnavailable", "StoredEvent", "WebhookEventStore"]

log = logging.getLogger(__name__)

TABLE_NAME = "ghl_webhook_events"
#: The sync's default target connection (``sync.target.DEFAULT_TARGET_CONN_ID``): when it does not
#: exist the embedded SQLite file ``$AIRFLOW_HOME/ghl_contacts.sqlite`` is used, as by the reconcile.
DEFAULT_TARGET_CONN_ID = "ghl_target"
_IN_CHUNK = 500
_MESSAGE_CHARS = 300


class StorageUnavailable(RuntimeError):
    """The target could not store or read events (database down, connection missing, timeout).

    The message is the error class and the first line of the database's message, never SQL
    parameters (event bodies) or connection passwords.
    """


def _error_message(exc: BaseException) -> str:
    from airflow_provider_contacts.sync.writes import db_error_message  # (the error path only)

    return db_error_message(getattr(exc, "orig", None) or exc)[:_MESSAGE_CHARS]  # SQLAlchemy wraps the driver's error


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes: ``TIMESTAMP WITH TIME ZONE`` where the database has one, ISO-8601 text
    with microseconds on SQLite (the sync's convention). Accepts already-converted values."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        value = _utc(value)
        return value.isoformat(timespec="microseconds") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return _to_datetime(value)


def _to_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return _utc(value)


def build_table(metadata: sa.MetaData, name: str = TABLE_NAME) -> sa.Table:
    """The SQLAlchemy Core definition of the events table (see the module docstring)."""
    table = sa.Table(
        name,
        metadata,
        sa.Column("webhook_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(255)),
        sa.Column("location_id", sa.String(255)),
        sa.Column("contact_id", sa.String(255)),
        sa.Column("entity_id", sa.String(255)),
        sa.Column("event_timestamp", UtcDateTime()),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("consumed_at", UtcDateTime(), nullable=True),
        sa.Column("consumed_by_run", sa.String(250), nullable=True),
    )
    sa.Index(f"ix_{name}_pending", table.c.location_id, table.c.consumed_at, table.c.received_at)
    return table


@dataclass(frozen=True)
class StoredEvent:
    """One row of ``ghl_webhook_events`` (see the module docstring for the columns)."""

    webhook_id: str
    event_type: str | None
    location_id: str | None
    contact_id: str | None
    entity_id: str | None
    event_timestamp: datetime | None
    received_at: datetime
    body: str
    consumed_at: datetime | None = None
    consumed_by_run: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The body parsed (a dict; ``{}`` if the stored text is not a JSON object)."""
        try:
            value = json.loads(self.body, strict=False)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    #: ``contact``, ``task`` or ``note`` for the documented types, else ``None`` (as for a delivery).
    entity = WebhookEvent.entity
    #: ``ContactDelete``, ``TaskDelete`` or ``NoteDelete``.
    is_delete = WebhookEvent.is_delete


class WebhookEventStore:
    """The events table in one target database.

    :param target_conn_id: an Airflow connection whose hook is a common-sql ``DbApiHook``
        (resolved with Airflow's normal lookup: ``AIRFLOW_CONN_*`` env vars, secrets backends, the
        metadata DB). The default ``ghl_target`` falls back to the embedded SQLite file
        ``$AIRFLOW_HOME/ghl_contacts.sqlite``, the reconcile's default target.
    :param schema: schema (namespace) of the table, e.g. ``ghl`` on PostgreSQL (created if missing);
        ``None``: the connection's default. Use the reconcile's target schema.
    :param engine: a SQLAlchemy engine to use instead of the connection's (tests, embedding).
    :param timeout_seconds: how long a write may wait for a lock or a connection (SQLite busy
        timeout; PostgreSQL connect timeout).

    Nothing connects until the first call; the table is created on first use. Thread-safe (one
    pooled engine; every call checks a connection out of the pool).
    """

    def __init__(
        self,
        target_conn_id: str = DEFAULT_TARGET_CONN_ID,
        *,
        schema: str | None = None,
        engine: Engine | None = None,
        timeout_seconds: float = 10.0,
        table_name: str = TABLE_NAME,
    ) -> None:
        self.target_conn_id = target_conn_id
        self.schema = schema or None
        self.timeout_seconds = timeout_seconds
        self.table = build_table(sa.MetaData(schema=self.schema), table_name)
        self._engine = engine
        self._ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WebhookEventStore(target_conn_id={self.target_conn_id!r}, schema={self.schema!r})"

    # -- connection ------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The target's SQLAlchemy engine (``DbApiHook.get_sqlalchemy_engine``), created once.

        Pool pre-ping on (a database that restarted is reconnected), SQL parameters hidden from
        error messages (they hold event bodies). Raises :class:`StorageUnavailable` when the
        connection cannot be resolved.
        """
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        from airflow_provider_contacts.sync.target import get_target_hook

        try:
            hook = get_target_hook(self.target_conn_id)
            dialect = str(hook.dialect_name)
        except Exception as exc:  # noqa: BLE001 - not found, secrets backend down, not a SQL conn
            raise StorageUnavailable(f"target connection {self.target_conn_id!r}: {_error_message(exc)}") from exc
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
        if dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": self.timeout_seconds, "check_same_thread": False}
        elif dialect == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": max(1, int(self.timeout_seconds))}
            kwargs["pool_timeout"] = self.timeout_seconds
        try:
            return hook.get_sqlalchemy_engine(engine_kwargs=kwargs)
        except Exception as exc:  # noqa: BLE001 - driver missing, bad URI
            raise StorageUnavailable(f"target connection {self.target_conn_id!r}: {_error_message(exc)}") from exc

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    def ensure_table(self) -> None:
        """Create the schema (when set), the table and its index if missing. Idempotent; done once
        per store, automatically before the first read or write.

        :raises StorageUnavailable: when the database cannot be reached or refuses.
        """
        if self._ready:
            return
        for attempt in (1, 2):  # two writers creating at the same moment: the loser looks again
            try:
                with self.engine.begin() as conn:
                    if self.schema and conn.dialect.name != "sqlite":
                        conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
                    self.table.metadata.create_all(conn, checkfirst=True)
                self._ready = True
                return
            except StorageUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - any driver error
                if attempt == 2:
                    raise StorageUnavailable(_error_message(exc)) from exc

    # -- the receiver's side ----------------------------------------------------------------
    def store(self, event: WebhookEvent, received_at: datetime | None = None) -> bool:
        """Insert ``event`` unless an event with its ``webhook_id`` is stored; commit.

        Returns ``True`` when it was inserted, ``False`` when it was a duplicate (the stored row is
        left as it is: consumed or not, with its first ``received_at``).

        :raises StorageUnavailable: when the insert could not be committed; the receiver then
            answers 429, so HighLevel delivers the event again later.
        """
        self.ensure_table()
        row = {
            "webhook_id": event.webhook_id,
            "event_type": event.event_type,
            "location_id": event.location_id,
            "contact_id": event.contact_id,
            "entity_id": event.entity_id,
            "event_timestamp": event.timestamp,
            "received_at": _utc(received_at) if received_at else datetime.now(timezone.utc),
            "body": event.body,
        }
        try:
            with self.engine.begin() as conn:
                name = conn.dialect.name
                if name in ("postgresql", "sqlite"):
                    module = postgresql if name == "postgresql" else sqlite
                    stmt = module.insert(self.table).values(**row).on_conflict_do_nothing(index_elements=["webhook_id"])
                    if conn.dialect.insert_returning:  # rowcount of this insert is -1 under psycopg 3
                        return conn.execute(stmt.returning(self.table.c.webhook_id)).first() is not None
                    return conn.execute(stmt).rowcount == 1
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(self.table).values(**row))
                    return True
                except sa.exc.IntegrityError:
                    exists = conn.execute(
                        sa.select(self.table.c.webhook_id).where(self.table.c.webhook_id == event.webhook_id)
                    ).first()
                    if exists is None:
                        raise
                    return False
        except Exception as exc:  # noqa: BLE001 - any driver error means "not stored"
            raise StorageUnavailable(_error_message(exc)) from exc

    def ping(self) -> None:
        """Check that the table is reachable (``SELECT 1`` after :meth:`ensure_table`).

        :raises StorageUnavailable: when it is not.
        """
        self.ensure_table()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.literal(1))).scalar()
        except Exception as exc:  # noqa: BLE001
            raise StorageUnavailable(_error_message(exc)) from exc

    def warm_up(self) -> str | None:
        """Resolve the connection, create the engine and the table now (the first delivery then
        waits for nothing). Returns ``None`` when ready, else why not (the receiver still starts;
        deliveries get 429 until the database answers)."""
        try:
            self.ping()
        except StorageUnavailable as exc:
            return str(exc)
        return None

    # -- the consumer's side -----------------------------------------------------------------
    def pending(
        self,
        location_id: str | None = None,
        limit: int = 1000,
        *,
        event_types: Iterable[str] | None = None,
        connection: Any = None,
        for_update: bool = False,
    ) -> list[StoredEvent]:
        """Events not yet consumed, oldest first (``received_at``, then ``webhook_id``).

        :param location_id: only this location's events; ``None``: every location.
        :param limit: at most this many (>= 1).
        :param event_types: only these ``type`` values (e.g. ``{"ContactDelete"}``).
        :param connection: read inside the caller's transaction (see :meth:`mark_consumed` for the
            accepted objects); ``None``: a connection of the store's own.
        :param for_update: lock the returned rows until the caller's transaction ends, skipping rows
            another transaction holds (PostgreSQL ``FOR UPDATE SKIP LOCKED``; ignored on SQLite,
            whose writers are serialised anyway). Only meaningful with ``connection``.
        :raises StorageUnavailable: when the database cannot be read.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        t = self.table
        stmt = sa.select(t).where(t.c.consumed_at.is_(None))
        if location_id is not None:
            stmt = stmt.where(t.c.location_id == location_id)
        if event_types is not None:
            stmt = stmt.where(t.c.event_type.in_(sorted(set(event_types))))
        stmt = stmt.order_by(t.c.received_at, t.c.webhook_id).limit(limit)
        if for_update:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = self._run(stmt, connection, fetch=True)
        return [self._stored(row) for row in rows]

    def count_pending(self, location_id: str | None = None, *, connection: Any = None) -> int:
        """Number of events not yet consumed (of ``location_id``, or of every location)."""
        t = self.table
        stmt = sa.select(sa.func.count()).select_from(t).where(t.c.consumed_at.is_(None))
        if location_id is not None:
            stmt = stmt.where(t.c.location_id == location_id)
        return int(self._run(stmt, connection, fetch=True)[0][0])

    def pending_by_location(self, *, connection: Any = None) -> dict[str | None, int]:
        """``{location_id: number of pending events}`` for every location with pending events
        (what an event trigger polls to decide which locations to reconcile)."""
        t = self.table
        stmt = (
            sa.select(t.c.location_id, sa.func.count())
            .where(t.c.consumed_at.is_(None))
            .group_by(t.c.location_id)
        )
        return {row[0]: int(row[1]) for row in self._run(stmt, connection, fetch=True)}

    def mark_consumed(
        self,
        webhook_ids: Iterable[str],
        connection: Any = None,
        run_id: str | None = None,
        *,
        consumed_at: datetime | None = None,
    ) -> int:
        """Mark events consumed by ``run_id``; returns how many were marked (events already
        consumed, or unknown ids, are left alone and not counted).

        :param webhook_ids: ``StoredEvent.webhook_id`` values (any number; batched by 500).
        :param connection: the caller's open transaction, so the marks commit (or roll back)
            together with the caller's rows; one of

            * a SQLAlchemy ``Connection`` (e.g. from ``store.engine.begin()``),
            * a DB-API cursor or connection to the same database (e.g. ``tx.cur`` of the sync's
              ``SqlSink.transaction()``, or that transaction object itself: its ``cur`` is used),
            * ``None``: a transaction of the store's own, committed before returning.

            The caller commits its own transaction; this method never commits it.
        :param run_id: the consuming DAG run's id (stored in ``consumed_by_run``).
        :param consumed_at: when (default: now, UTC).
        :raises StorageUnavailable: only with ``connection=None``; errors on the caller's
            connection propagate unchanged so the caller's transaction handling sees them.
        """
        ids = sorted({str(i) for i in webhook_ids})
        if not ids:
            return 0
        when = _utc(consumed_at) if consumed_at else datetime.now(timezone.utc)
        t = self.table
        marked = 0
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            stmt = (
                sa.update(t)
                .where(t.c.webhook_id.in_(chunk), t.c.consumed_at.is_(None))
                .values(consumed_at=self._db_time(when), consumed_by_run=run_id)
            )
            marked += self._run(stmt, connection, fetch=False)
        return marked

    def delete_consumed(self, before: datetime, *, connection: Any = None) -> int:
        """Delete events consumed before ``before`` (retention); returns how many were deleted.
        Pending events are never deleted."""
        t = self.table
        stmt = sa.delete(t).where(t.c.consumed_at.is_not(None), t.c.consumed_at < self._db_time(_utc(before)))
        return self._run(stmt, connection, fetch=False)

    # -- internals ---------------------------------------------------------------------------
    def _db_time(self, value: datetime) -> Any:
        """``value`` as stored (ISO text on SQLite), so statements also run on DB-API cursors."""
        return UtcDateTime().process_bind_param(value, self.engine.dialect)

    def _run(self, stmt: Any, connection: Any, *, fetch: bool) -> Any:
        """Execute ``stmt``: on the store's own transaction (errors -> StorageUnavailable), a
        SQLAlchemy connection, or a DB-API cursor/connection (compiled for the target's dialect).
        Returns the rows (``fetch``) or the number of rows affected."""
        self.ensure_table()
        if connection is None:
            try:
                with self.engine.begin() as conn:
                    result = conn.execute(stmt)
                    return [tuple(r) for r in result] if fetch else result.rowcount
            except Exception as exc:  # noqa: BLE001
                raise StorageUnavailable(_error_message(exc)) from exc
        if isinstance(connection, SAConnection):
            result = connection.execute(stmt)
            return [tuple(r) for r in result] if fetch else result.rowcount
        cursor = getattr(connection, "cur", None) or connection  # the sync's SinkTransaction
        own_cursor = not hasattr(cursor, "fetchall")  # a DB-API connection: open a cursor
        if own_cursor:
            cursor = cursor.cursor()
        try:
            compiled = stmt.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
            params: Any = compiled.params
            if compiled.positional:
                params = tuple(params[name] for name in compiled.positiontup)
            cursor.execute(str(compiled), params)
            return [tuple(r) for r in cursor.fetchall()] if fetch else cursor.rowcount
        finally:
            if own_cursor:
                cursor.close()

    def _stored(self, row: Sequence[Any]) -> StoredEvent:
        values = dict(zip((c.name for c in self.table.columns), row))
        for name in ("event_timestamp", "received_at", "consumed_at"):
            values[name] = _to_datetime(values[name])
        return StoredEvent(**values)
