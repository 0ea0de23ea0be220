"""One DB-API connection of a common-sql hook, opened on first use: what the reconcile's target
(:class:`~airflow_provider_contacts.sync.sinks.SqlSink`) and the lead flow's source
(:class:`~airflow_provider_contacts.sync.leads.source.LeadSource`) hold.

Imports nothing heavy (DAG files parse modules that import it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: SQLite waits this long (ms) for another writer's lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 60_000


class HookConnection:
    """A lazily opened DB-API connection of ``self.hook`` (set by the subclass), closed by
    :meth:`close` or at the end of a ``with`` block."""

    hook: DbApiHook
    _conn: Any = None

    @property
    def dialect_name(self) -> str:
        """SQLAlchemy dialect name of the database (``sqlite``, ``postgresql``, ...)."""
        return str(self.hook.dialect_name)

    def connection(self) -> Any:
        """The DB-API connection, opened on first use (SQLite: with a busy timeout)."""
        if self._conn is None:
            self._conn = self.hook.get_conn()
            if self.dialect_name == "sqlite":
                cur = self._conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cur.close()
        return self._conn

    def close(self) -> None:
        """Close the connection (uncommitted work is rolled back by the database)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
