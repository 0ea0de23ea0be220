"""The lead source: a table of leads in any common-sql database, and the link table beside it.

``crm_conn_id`` names any Airflow connection whose hook is a common-sql ``DbApiHook``
(PostgreSQL, SQLite, MySQL ...). When it is the default ``crm_source`` and no such connection
exists, the source is the embedded SQLite file ``$AIRFLOW_HOME/ghl_crm_leads.sqlite``, whose
``crm_leads`` table is created from the packaged demo CSV (``leads_demo.csv``) on first use, so
the DAG runs out of the box.

The **link table** ``ghl_lead_links`` lives in the SOURCE database (it describes the source's
rows, travels with them, and commits in the same database as the write-backs of the two-way sync):

================== ==========================================================================
``id``             ``<location_id>:<lead id>`` (primary key)
``location_id``    the HighLevel location
``lead_id``        the lead's key, as text
``contact_id``     the HighLevel contact it is linked to
``written_json``   the last values written to (or agreed with) HighLevel, by HighLevel field:
                   ``{"email": ..., "firstName": ..., "tags": [...], "cf:<custom field>": ...}``
``lead_updated_at``     the lead's change time when it was last synced
``contact_updated_at``  the contact's ``dateUpdated`` after the provider's last write
``onboarded_at``   when the follow-up tasks and the note were made (NULL: still to do)
``created_at``     when the link was made; ``synced_at``: when values were last written
``contact_deleted_at``  the contact was found deleted in HighLevel; ``lead_deleted_at``: the
                   lead left the source table
================== ==========================================================================

Leads are read in key order, a page at a time (keyset paging: ``WHERE key > ? ORDER BY key``),
so memory stays flat whatever the table's size.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.sync.connection import HookConnection
from airflow_provider_contacts.sync.schema import COLUMN_TYPES

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "DEFAULT_CRM_CONN_ID",
    "DEMO_LEADS_CSV",
    "EMBEDDED_LEADS_NAME",
    "LINK_COLUMNS",
    "LINK_TABLE",
    "LeadLink",
    "LeadSource",
    "embedded_leads_path",
    "get_source_hook",
]

DEFAULT_CRM_CONN_ID = "crm_source"
EMBEDDED_LEADS_NAME = "ghl_crm_leads.sqlite"
DEMO_LEADS_CSV = Path(__file__).with_name("leads_demo.csv")
LINK_TABLE = "ghl_lead_links"
LINK_COLUMNS: dict[str, str] = {
    "id": "key",
    "location_id": "text",
    "lead_id": "text",
    "contact_id": "text",
    "written_json": "text",
    "lead_updated_at": "text",
    "contact_updated_at": "text",
    "onboarded_at": "timestamp",
    "created_at": "timestamp",
    "synced_at": "timestamp",
    "contact_deleted_at": "timestamp",
    "lead_deleted_at": "timestamp",
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_MISSING_TABLE = re.compile(
    r"no such table|does not exist|doesn't exist|undefined ?table|invalid object name|unknown table", re.IGNORECASE
)


def _is_missing_table(exc: BaseException) -> bool:
    """Whether a driver's error says the table does not exist (SQLite ``no such table``, PostgreSQL
    ``UndefinedTable`` / ``relation ... does not exist``, MySQL ``Table ... doesn't exist``, SQL
    Server ``Invalid object name``), as opposed to a dropped connection or a timeout."""
    return bool(_MISSING_TABLE.search(f"{type(exc).__name__} {exc}"))


def embedded_leads_path(airflow_home: str | os.PathLike[str] | None = None) -> Path:
    """Path of the embedded demo source: ``<AIRFLOW_HOME>/ghl_crm_leads.sqlite``."""
    home = airflow_home or os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"
    return Path(home) / EMBEDDED_LEADS_NAME


def create_demo_leads(path: str | os.PathLike[str], table: str = "crm_leads", csv_path: Path = DEMO_LEADS_CSV) -> int:
    """Create ``table`` in the SQLite file ``path`` from the demo CSV unless it exists; returns
    the rows inserted (0 when the table was there)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(path)) as db:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
        if exists:
            return 0
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        columns = list(rows[0]) if rows else ["id"]
        defs = ", ".join(f'"{c}" {"INTEGER PRIMARY KEY" if c == "id" else "TEXT"}' for c in columns)
        db.execute(f'CREATE TABLE "{table}" ({defs})')
        marks = ", ".join("?" * len(columns))
        db.executemany(
            f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) VALUES ({marks})',
            [[(r[c] or None) for c in columns] for r in rows],
        )
    return len(rows)


def get_source_hook(crm_conn_id: str = DEFAULT_CRM_CONN_ID, table: str = "crm_leads") -> DbApiHook:
    """The common-sql hook of ``crm_conn_id``, or the embedded demo source (see module doc).

    :raises ValueError: the connection exists but is not a SQL connection.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

    try:
        conn = BaseHook.get_connection(crm_conn_id)
    except AirflowNotFoundException:
        if crm_conn_id != DEFAULT_CRM_CONN_ID:
            raise
        path = embedded_leads_path()
        create_demo_leads(path, table)
        return EmbeddedSqliteHook(path)
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = conn.get_hook()
    if not isinstance(hook, DbApiHook):
        raise ValueError(
            f"lead source connection {crm_conn_id!r} has type {conn.conn_type!r}, whose hook {type(hook).__name__} "
            "is not a common-sql DbApiHook; use a SQL connection (postgres, sqlite, mysql, ...)"
        )
    return hook


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(timezone.utc)


def iso(value: Any) -> str | None:
    """An ISO-8601 UTC text of a change time (datetime, text, epoch), or ``None``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        parsed = parse_datetime(value)
    except Exception:  # noqa: BLE001 - an unparsable change time is kept as text
        return str(value)
    return parsed.astimezone(timezone.utc).isoformat() if parsed else None


@dataclass
class LeadLink:
    """One row of the link table (see the module docstring)."""

    location_id: str
    lead_id: str
    contact_id: str
    written: dict[str, Any]
    lead_updated_at: str | None = None
    contact_updated_at: str | None = None
    onboarded_at: Any = None
    created_at: Any = None
    synced_at: Any = None
    contact_deleted_at: Any = None
    lead_deleted_at: Any = None

    @property
    def key(self) -> str:
        """The link table's primary key."""
        return f"{self.location_id}:{self.lead_id}"


class LeadSource(HookConnection):
    """The lead table and the link table in one source database (one DB-API connection).

    :param hook: any common-sql ``DbApiHook``.
    :param table: the lead table (``schema.table`` allowed).
    :param key: its key column.
    :param schema: schema of the link table (``None``: the connection's default; also the
        lead table's when ``table`` is not qualified).
    """

    def __init__(self, hook: DbApiHook, table: str = "crm_leads", key: str = "id", *, schema: str | None = None) -> None:
        for what, name in (("table", table), ("key", key), ("schema", schema or "x")):
            if not all(_IDENT.match(part) for part in name.split(".")) or name.count(".") > 1:
                raise ValueError(f"lead source {what} {name!r} is not a plain SQL identifier; use letters, digits and '_'")
        if schema and str(hook.dialect_name) == "sqlite":
            raise ValueError("SQLite has no schemas: leave the lead source schema empty")
        self.hook = hook
        self.schema = schema
        self.table_name = table if "." in table or not schema else f"{schema}.{table}"
        self.key = key
        self._conn: Any = None
        self._columns: list[str] | None = None

    # -- connection and naming ---------------------------------------------------------------------
    @cached_property
    def _preparer(self) -> Any:
        from sqlalchemy.dialects import registry
        from sqlalchemy.engine.default import DefaultDialect

        try:
            dialect = registry.load(self.dialect_name)()
        except Exception:  # noqa: BLE001
            dialect = DefaultDialect()
        return dialect.identifier_preparer

    def quote(self, name: str) -> str:
        """``name`` quoted for this database where it needs it."""
        return ".".join(str(self._preparer.quote(part)) for part in name.split("."))

    @property
    def mark(self) -> str:
        """The driver's placeholder."""
        return str(self.hook.placeholder)

    def link_table(self) -> str:
        """The link table's qualified name."""
        return f"{self.schema}.{LINK_TABLE}" if self.schema else LINK_TABLE

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor whose work commits when the block ends (rolled back if it raises)."""
        conn = self.connection()
        cur = conn.cursor()
        try:
            yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()

    def _adapt(self, value: Any, kind: str) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime) and (kind != "timestamp" or self.dialect_name == "sqlite"):
            return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
        return value

    # -- DDL and columns ---------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """The lead table's column names (as the database spells them).

        :raises GHLConfigError: the table does not exist (naming it and the fix): the lead DAGs'
            tasks fail at once on it.
        :raises ValueError: the table cannot be read for another reason (e.g. the connection
            dropped): retryable.
        """
        if self._columns is None:
            with self.transaction() as cur:
                try:
                    cur.execute(f"SELECT * FROM {self.quote(self.table_name)} WHERE 1 = 0")
                except Exception as exc:  # noqa: BLE001 - "no such table" differs per driver
                    text = (
                        f"lead table {self.table_name!r} cannot be read ({type(exc).__name__}: {str(exc).strip()[:200]}); "
                        "create it, or set the leads_table param to the table holding your leads"
                    )
                    if _is_missing_table(exc):
                        from airflow_provider_contacts.errors import GHLConfigError

                        raise GHLConfigError(text) from None
                    raise ValueError(text) from None
                self._columns = [str(d[0]) for d in cur.description]
        return self._columns

    def check_columns(self, wanted: Sequence[str]) -> None:
        """Refuse a leads mapping naming columns the lead table lacks.

        :raises MappingError: (a configuration error: the lead DAGs' tasks fail at once) naming
            every missing column with the table's closest column (did you mean), the table's
            columns and the fix.
        """
        from airflow_provider_contacts.sync.known_fields import did_you_mean
        from airflow_provider_contacts.sync.mapping_model import MappingError

        columns = self.columns()
        have = {c.lower() for c in columns}
        missing = [c for c in wanted if c.lower() not in have]
        if missing:
            hints = {c: did_you_mean(c, columns) for c in missing}
            hints = {c: h for c, h in hints.items() if h}
            if len(hints) == 1 and len(missing) == 1:
                hint = f"; did you mean {next(iter(hints.values()))!r}?"
            elif hints:
                hint = "; did you mean " + ", ".join(f"{h!r} for {c!r}" for c, h in hints.items()) + "?"
            else:
                hint = ""
            raise MappingError(
                f"lead table {self.table_name!r} has no column(s) {missing}{hint} (it has {columns}): fix the column "
                "names in the leads mapping (contacts.columns / leads section) to the table's own, or add the "
                "columns to the table"
            )

    def ensure_link_table(self) -> None:
        """Create the link table (and its contact index) when missing."""
        types = COLUMN_TYPES.get(self.dialect_name, COLUMN_TYPES["default"])
        cols = ", ".join(f"{name} {types[kind]}" for name, kind in LINK_COLUMNS.items())
        with self.transaction() as cur:
            if self.schema and self.dialect_name != "sqlite":
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.link_table()} ({cols})")
            cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{LINK_TABLE}_contact ON {self.link_table()} (contact_id)")

    # -- leads -------------------------------------------------------------------------------------
    def iter_lead_pages(self, columns: Sequence[str], page_size: int = 200) -> Iterator[list[dict[str, Any]]]:
        """Every lead (the named columns) in key order, ``page_size`` at a time."""
        actual = {c.lower(): c for c in self.columns()}
        names = [actual[c.lower()] for c in columns]
        select = ", ".join(self.quote(c) for c in names)
        key = self.quote(actual[self.key.lower()])
        table = self.quote(self.table_name)
        last: Any = None
        while True:
            with self.transaction() as cur:
                if last is None:
                    cur.execute(f"SELECT {select} FROM {table} ORDER BY {key} LIMIT {int(page_size)}")
                else:
                    cur.execute(
                        f"SELECT {select} FROM {table} WHERE {key} > {self.mark} ORDER BY {key} LIMIT {int(page_size)}",
                        (last,),
                    )
                rows = [dict(zip(columns, r)) for r in cur.fetchall()]
            if not rows:
                return
            yield rows
            last = rows[-1][self.key]
            if len(rows) < page_size:
                return

    def update_lead(self, cur: Any, key_value: Any, values: Mapping[str, Any]) -> int:
        """``UPDATE`` one lead's columns (in ``cur``'s transaction); returns the rows changed."""
        actual = {c.lower(): c for c in self.columns()}
        sets = ", ".join(f"{self.quote(actual[c.lower()])} = {self.mark}" for c in values)
        cur.execute(
            f"UPDATE {self.quote(self.table_name)} SET {sets} WHERE {self.quote(actual[self.key.lower()])} = {self.mark}",
            (*[self._adapt(v, "text") for v in values.values()], key_value),
        )
        return max(cur.rowcount, 0)

    def delete_lead(self, cur: Any, key_value: Any) -> int:
        """``DELETE`` one lead (in ``cur``'s transaction); returns the rows deleted."""
        actual = {c.lower(): c for c in self.columns()}
        cur.execute(
            f"DELETE FROM {self.quote(self.table_name)} WHERE {self.quote(actual[self.key.lower()])} = {self.mark}",
            (key_value,),
        )
        return max(cur.rowcount, 0)

    # -- links ------------------------------------------------------------------------------------
    def _link(self, row: Sequence[Any]) -> LeadLink:
        values = dict(zip(LINK_COLUMNS, row))
        return LeadLink(
            location_id=str(values["location_id"]),
            lead_id=str(values["lead_id"]),
            contact_id=str(values["contact_id"]),
            written=json.loads(values["written_json"] or "{}"),
            lead_updated_at=values["lead_updated_at"],
            contact_updated_at=values["contact_updated_at"],
            onboarded_at=values["onboarded_at"],
            created_at=values["created_at"],
            synced_at=values["synced_at"],
            contact_deleted_at=values["contact_deleted_at"],
            lead_deleted_at=values["lead_deleted_at"],
        )

    def links(self, location_id: str, lead_ids: Sequence[str]) -> dict[str, LeadLink]:
        """The links of these leads: lead id -> :class:`LeadLink`."""
        out: dict[str, LeadLink] = {}
        keys = [f"{location_id}:{lid}" for lid in lead_ids]
        with self.transaction() as cur:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                cur.execute(
                    f"SELECT {', '.join(LINK_COLUMNS)} FROM {self.link_table()} WHERE id IN ({', '.join([self.mark] * len(chunk))})",
                    tuple(chunk),
                )
                for row in cur.fetchall():
                    link = self._link(row)
                    out[link.lead_id] = link
        return out

    def all_links(self, location_id: str) -> Iterator[LeadLink]:
        """Every link of the location."""
        with self.transaction() as cur:
            cur.execute(
                f"SELECT {', '.join(LINK_COLUMNS)} FROM {self.link_table()} WHERE location_id = {self.mark}",
                (location_id,),
            )
            rows = cur.fetchall()
        return (self._link(r) for r in rows)

    def save_link(self, cur: Any, link: LeadLink) -> None:
        """Insert or replace a link row (in ``cur``'s transaction)."""
        row = [
            link.key,
            link.location_id,
            link.lead_id,
            link.contact_id,
            json.dumps(link.written, sort_keys=True, ensure_ascii=False, default=str),
            link.lead_updated_at,
            link.contact_updated_at,
            self._adapt(link.onboarded_at, "timestamp"),
            self._adapt(link.created_at, "timestamp"),
            self._adapt(link.synced_at, "timestamp"),
            self._adapt(link.contact_deleted_at, "timestamp"),
            self._adapt(link.lead_deleted_at, "timestamp"),
        ]
        sql = self.hook.dialect.generate_replace_sql(self.link_table(), row, list(LINK_COLUMNS), replace_index="id")
        cur.execute(sql, tuple(row))
