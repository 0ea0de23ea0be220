"""Row-level work inside one target transaction: upserts by content hash, tombstones,
quarantine entries and sync state. Obtained from :meth:`SqlSink.transaction`; every method is
batched by id chunks (at most 500 ids per statement).

One bad row never costs its batch: rows are written under a savepoint, and when the database
refuses the batch it is written again row by row (each under its own savepoint); the rows still
refused are returned with the database's message, for the quarantine table. Only a batch of
several rows refused row for row (a systemic failure: schema, permissions, connection) raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_contacts.sync.mapping import TABLES, MappedRecord, Quarantined, content_hash
from airflow_provider_contacts.sync.schema import QUARANTINE_COLUMNS, QUARANTINE_TABLE, STATE_COLUMNS, STATE_TABLE

if TYPE_CHECKING:
    from airflow_provider_contacts.sync.mapping import FieldMapping


class SinkLike(Protocol):
    """What a transaction needs of its sink (``sinks.SqlSink`` provides it; this module does not
    import ``sinks``, which builds on it)."""

    hook: Any
    mapping: FieldMapping
    hard_delete: bool
    dialect_name: str
    placeholder: str

    @property
    def connection(self) -> Any: ...

    def table(self, name: str) -> str: ...

    def quote(self, name: str) -> str: ...

    def adapt(self, *args: Any, **kwargs: Any) -> Any: ...

__all__ = ["SinkTransaction", "UpsertCounts", "db_error_message"]

log = logging.getLogger(__name__)
_IN_CHUNK = 500
_MESSAGE_CHARS = 500


@dataclass
class UpsertCounts:
    """Outcome of writing one batch of mapped records to one table; ``rejected`` are the records
    the database refused (with the reason), to be quarantined."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Quarantined] = field(default_factory=list)


def db_error_message(exc: BaseException) -> str:
    """``<ErrorClass>: <first line of the database's message>`` (at most 500 characters)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:_MESSAGE_CHARS]


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SinkTransaction:
    """Operations inside one :meth:`SqlSink.transaction`; all methods are batched by id chunks."""

    def __init__(self, sink: SinkLike, cursor: Any) -> None:
        self.sink = sink
        self.cur = cursor

    # -- primitives ------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        self.cur.execute(sql, tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and fetch every row."""
        self.cur.execute(sql, tuple(params))
        return list(self.cur.fetchall())

    def column_names(self, name: str) -> set[str] | None:
        """Lower-cased column names of table ``name``, or ``None`` when it does not exist."""
        try:
            if self.sink.dialect_name == "sqlite":
                rows = self.query(f"PRAGMA table_info({name})")
                return {str(r[1]).lower() for r in rows} or None
            self.execute("SAVEPOINT ghl_probe")
            self.cur.execute(f"SELECT * FROM {self.sink.table(name)} WHERE 1 = 0")
            names = {str(d[0]).lower() for d in self.cur.description}
            self.execute("RELEASE SAVEPOINT ghl_probe")
            return names
        except Exception:  # noqa: BLE001 - "relation does not exist" differs per driver
            self.execute("ROLLBACK TO SAVEPOINT ghl_probe")
            return None

    def _marks(self, n: int) -> str:
        return ", ".join([self.sink.placeholder] * n)

    def upsert(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert-or-replace ``rows`` (whole rows, key column ``id``) through the dialect's upsert."""
        if not rows:
            return
        # Column names go to common-sql already quoted by SQLAlchemy's preparer of the dialect
        # (common-sql's escape_word leaves a quoted name alone, and on SQLite it knows no
        # reserved words, so ``order`` would reach ``REPLACE INTO`` bare).
        sql = self.sink.hook.dialect.generate_replace_sql(
            self.sink.table(name), rows[0], [self.sink.quote(c) for c in columns], replace_index=self.sink.quote("id")
        )
        self.cur.executemany(sql, [tuple(r) for r in rows])

    def _open(self) -> None:
        """Make sure a transaction is open before a savepoint (Python's sqlite3 opens one only
        before DML; a savepoint outside one would commit on release)."""
        if self.sink.dialect_name == "sqlite":
            conn = self.sink.connection()
            if not conn.in_transaction:
                self.cur.execute("BEGIN")

    def write_rows(self, name: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]]) -> dict[str, str]:
        """Upsert ``(key, row)`` pairs; returns ``{key: database message}`` of the rows refused.

        The batch is written under a savepoint; if the database refuses it, it is rolled back to
        the savepoint and written row by row, each under its own savepoint, so the good rows land
        and only the bad ones are returned. When every row of a batch of several is refused the
        failure is not about a row (missing column, permissions, lost connection): it is raised.
        """
        if not rows:
            return {}
        self._open()
        self.execute("SAVEPOINT ghl_batch")
        try:
            self.upsert(name, columns, [row for _, row in rows])
        except Exception as batch_error:  # noqa: BLE001 - driver-specific errors; narrowed row by row below
            self.execute("ROLLBACK TO SAVEPOINT ghl_batch")
            failed: dict[str, str] = {}
            for key, row in rows:
                self.execute("SAVEPOINT ghl_row")
                try:
                    self.upsert(name, columns, [row])
                except Exception as exc:  # noqa: BLE001
                    self.execute("ROLLBACK TO SAVEPOINT ghl_row")
                    failed[key] = db_error_message(exc)
                self.execute("RELEASE SAVEPOINT ghl_row")
            if len(rows) > 1 and len(failed) == len(rows):
                raise batch_error
            self.execute("RELEASE SAVEPOINT ghl_batch")
            return failed
        self.execute("RELEASE SAVEPOINT ghl_batch")
        return {}

    def _select_in(self, sql_prefix: str, ids: Sequence[str], params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(ids)):
            out.extend(self.query(f"{sql_prefix} IN ({self._marks(len(chunk))})", [*params, *chunk]))
        return out

    # -- records ---------------------------------------------------------------------------
    def upsert_records(
        self, entity: str, location_id: str, records: Sequence[MappedRecord], now: datetime
    ) -> UpsertCounts:
        """Write mapped records of ``entity``; the content hash decides inserted/updated/unchanged.

        A row whose hash is unchanged is not touched (so repeated runs leave identical tables); a
        soft-deleted row that comes back is revived (``deleted_at`` cleared) and counts as updated.
        Records that map cleanly also leave the quarantine table.
        """
        counts = UpsertCounts()
        if not records:
            return counts
        name = TABLES[entity]
        unique: dict[str, MappedRecord] = {r.id: r for r in records}
        existing = {
            row[0]: row[1:]
            for row in self._select_in(
                f"SELECT id, content_hash, first_seen_at, deleted_at FROM {self.sink.table(name)} WHERE id",
                list(unique),
            )
        }
        columns = self.sink.mapping.columns(entity)
        names = list(columns)
        rows: list[tuple[str, list[Any]]] = []
        inserts: set[str] = set()
        for rid, record in unique.items():
            old = existing.get(rid)
            if old is not None and old[0] == record.content_hash and old[2] is None:
                counts.unchanged += 1
                continue
            if old is None:
                inserts.add(rid)
            values: dict[str, Any] = {
                "id": rid,
                "location_id": location_id,
                "raw_json": record.raw_json,
                "content_hash": record.content_hash,
                "first_seen_at": old[1] if old is not None else now,
                "last_synced_at": now,
                "deleted_at": None,
                "contact_id": record.contact_id,
                **record.columns,
            }
            rows.append((rid, [self.sink.adapt(values.get(c), columns[c]) for c in names]))
        failed = self.write_rows(name, names, rows)
        for rid, _ in rows:
            if rid in failed:
                record = unique[rid]
                counts.rejected.append(
                    Quarantined(rid, record.contact_id, [f"the target refused the row: {failed[rid]}"], record.raw_json)
                )
            elif rid in inserts:
                counts.inserted += 1
            else:
                counts.updated += 1
        self.clear_quarantine(entity, [rid for rid in unique if rid not in failed])
        return counts

    def stored_hashes(self, entity: str, ids: Sequence[str]) -> dict[str, str]:
        """Content hash of the live rows among ``ids`` (soft-deleted rows are left out)."""
        rows = self._select_in(
            f"SELECT id, content_hash FROM {self.sink.table(TABLES[entity])} WHERE deleted_at IS NULL AND id", ids
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def live_ids(self, entity: str, location_id: str) -> Iterator[str]:
        """Ids of ``entity`` rows of the location not marked deleted (streamed)."""
        self.cur.execute(
            f"SELECT id FROM {self.sink.table(TABLES[entity])} WHERE location_id = {self.sink.placeholder} "
            "AND deleted_at IS NULL",
            (location_id,),
        )
        while True:
            rows = self.cur.fetchmany(5000)
            if not rows:
                return
            for row in rows:
                yield str(row[0])

    def live_child_ids(self, entity: str, contact_ids: Sequence[str]) -> dict[str, str]:
        """Live task/note id -> contact id for the given contacts."""
        rows = self._select_in(
            f"SELECT id, contact_id FROM {self.sink.table(TABLES[entity])} WHERE deleted_at IS NULL AND contact_id",
            contact_ids,
        )
        return {str(r[0]): str(r[1]) for r in rows}

    def count_live(self, entity: str, location_id: str) -> int:
        """Number of live rows of ``entity`` in the location."""
        rows = self.query(
            f"SELECT COUNT(*) FROM {self.sink.table(TABLES[entity])} WHERE location_id = {self.sink.placeholder} "
            "AND deleted_at IS NULL",
            (location_id,),
        )
        return int(rows[0][0])

    def contact_ids_after(self, location_id: str, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` live contact ids of the location greater than ``after``, ascending."""
        ph = self.sink.placeholder
        sql = f"SELECT id FROM {self.sink.table(TABLES['contacts'])} WHERE location_id = {ph} AND deleted_at IS NULL"
        params: list[Any] = [location_id]
        if after:
            sql += f" AND id > {ph}"
            params.append(after)
        sql += f" ORDER BY id LIMIT {int(limit)}"
        return [str(r[0]) for r in self.query(sql, params)]

    def live_raw_after(
        self, entity: str, location_id: str, after: str | None, limit: int
    ) -> list[tuple[str, Any]]:
        """Up to ``limit`` ``(id, raw_json)`` of live ``entity`` rows of the location with an id
        greater than ``after``, ascending (keyset pages: constant memory over any table size)."""
        ph = self.sink.placeholder
        sql = (
            f"SELECT id, raw_json FROM {self.sink.table(TABLES[entity])} "
            f"WHERE location_id = {ph} AND deleted_at IS NULL"
        )
        params: list[Any] = [location_id]
        if after is not None:
            sql += f" AND id > {ph}"
            params.append(after)
        sql += f" ORDER BY id LIMIT {int(limit)}"
        return [(str(r[0]), r[1]) for r in self.query(sql, params)]

    def update_columns(self, entity: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """Set ``columns`` of the rows ``(id, values)`` (values adapted already); returns how many."""
        if not rows or not columns:
            return 0
        ph = self.sink.placeholder
        sets = ", ".join(f"{self.sink.quote(c)} = {ph}" for c in columns)
        sql = f"UPDATE {self.sink.table(TABLES[entity])} SET {sets} WHERE id = {ph}"
        self.cur.executemany(sql, [(*values, rid) for rid, values in rows])
        return len(rows)

    def mark_deleted(self, entity: str, ids: Iterable[str], now: datetime) -> int:
        """Tombstone (or, with ``hard_delete``, remove) the live rows with these ids; returns how many."""
        table = self.sink.table(TABLES[entity])
        total = 0
        for chunk in _chunks(sorted(set(ids))):
            marks = self._marks(len(chunk))
            if self.sink.hard_delete:
                self.cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", tuple(chunk))
            else:
                self.cur.execute(
                    f"UPDATE {table} SET deleted_at = {self.sink.placeholder} WHERE deleted_at IS NULL AND id IN ({marks})",
                    (self.sink.adapt(now, "timestamp"), *chunk),
                )
            total += max(self.cur.rowcount, 0)
        return total

    def delete_children_of(self, contact_ids: Sequence[str], now: datetime) -> dict[str, int]:
        """Tombstone (or, with ``hard_delete``, remove) every live task and note of the given
        (deleted) contacts, whatever the state of the contacts' own rows; their quarantine
        entries go too. Returns the count per entity."""
        out: dict[str, int] = {}
        for entity in ("tasks", "notes"):
            out[entity] = self.mark_deleted(entity, list(self.live_child_ids(entity, contact_ids)), now)
            self.clear_quarantine_of_contacts(entity, contact_ids)
        return out

    def child_parent_ids(self, location_id: str) -> set[str]:
        """Contact ids that live tasks or notes of the location belong to (the deletion scan
        compares them with the contacts HighLevel still has: children follow their contact)."""
        out: set[str] = set()
        for entity in ("tasks", "notes"):
            rows = self.query(
                f"SELECT DISTINCT contact_id FROM {self.sink.table(TABLES[entity])} WHERE location_id = "
                f"{self.sink.placeholder} AND deleted_at IS NULL AND contact_id IS NOT NULL",
                (location_id,),
            )
            out.update(str(r[0]) for r in rows)
        return out

    # -- quarantine ------------------------------------------------------------------------
    def quarantine(self, entity: str, location_id: str, items: Sequence[Quarantined], now: datetime) -> list[str]:
        """Record unmappable records with their reasons and raw JSON (keeps the first-seen time).

        Returns the record ids (or keys) the database refused even here (logged as warnings).
        """
        if not items:
            return []
        keyed: dict[str, Quarantined] = {}
        for item in items:
            rid = item.id or "sha256-" + content_hash({"raw": item.raw_json})[:32]
            keyed[f"{TABLES[entity]}:{rid}"] = item
        first_seen = {
            str(r[0]): r[1]
            for r in self._select_in(
                f"SELECT id, first_seen_at FROM {self.sink.table(QUARANTINE_TABLE)} WHERE id", list(keyed)
            )
        }
        rows = []
        for key, item in keyed.items():
            rows.append(
                (
                    key,
                    [
                        key,
                        location_id,
                        TABLES[entity],
                        item.id,
                        item.contact_id,
                        item.reason,
                        item.raw_json,
                        first_seen.get(key) or self.sink.adapt(now, "timestamp"),
                        self.sink.adapt(now, "timestamp"),
                    ],
                )
            )
        failed = self.write_rows(QUARANTINE_TABLE, list(QUARANTINE_COLUMNS), rows)
        for key, message in failed.items():
            log.warning("could not write the quarantine entry %s: %s", key, message)
        return list(failed)

    def clear_quarantine(self, entity: str, record_ids: Sequence[str]) -> None:
        """Remove quarantine entries of records that now map (or are gone)."""
        keys = [f"{TABLES[entity]}:{rid}" for rid in record_ids]
        for chunk in _chunks(keys):
            self.cur.execute(
                f"DELETE FROM {self.sink.table(QUARANTINE_TABLE)} WHERE id IN ({self._marks(len(chunk))})",
                tuple(chunk),
            )

    def clear_quarantine_of_contacts(self, entity: str, contact_ids: Sequence[str]) -> None:
        """Remove the quarantine entries of ``entity`` (tasks, notes) belonging to these contacts."""
        for chunk in _chunks(list(contact_ids)):
            self.cur.execute(
                f"DELETE FROM {self.sink.table(QUARANTINE_TABLE)} WHERE source_table = {self.sink.placeholder} "
                f"AND contact_id IN ({self._marks(len(chunk))})",
                (TABLES[entity], *chunk),
            )

    def quarantined_ids(self, entity: str, location_id: str) -> list[str]:
        """Record ids of the location's quarantined ``entity`` records."""
        rows = self.query(
            f"SELECT record_id FROM {self.sink.table(QUARANTINE_TABLE)} WHERE location_id = {self.sink.placeholder} "
            f"AND source_table = {self.sink.placeholder} AND record_id IS NOT NULL",
            (location_id, TABLES[entity]),
        )
        return [str(r[0]) for r in rows]

    # -- state -----------------------------------------------------------------------------
    def get_state(self, location_id: str, name: str, default: Any = None) -> Any:
        """The stored JSON value ``name`` of the location, or ``default``."""
        rows = self.query(
            f"SELECT value_json FROM {self.sink.table(STATE_TABLE)} WHERE id = {self.sink.placeholder}",
            (f"{location_id}:{name}",),
        )
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else default

    def all_states(self, name: str) -> dict[str, Any]:
        """The stored JSON value ``name`` of every location: ``{location_id: value}``."""
        rows = self.query(
            f"SELECT location_id, value_json FROM {self.sink.table(STATE_TABLE)} WHERE name = {self.sink.placeholder}",
            (name,),
        )
        return {str(r[0]): json.loads(r[1]) for r in rows if r[1] is not None}

    def set_state(self, location_id: str, values: Mapping[str, Any], now: datetime) -> None:
        """Store JSON values by name for the location (committed with the transaction)."""
        rows = [
            [f"{location_id}:{name}", location_id, name, json.dumps(value, default=str), self.sink.adapt(now, "timestamp")]
            for name, value in values.items()
        ]
        self.upsert(STATE_TABLE, list(STATE_COLUMNS), rows)
