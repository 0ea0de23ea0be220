"""Resolve the SQL target: a stored Airflow connection, or the embedded SQLite default.

``target_conn_id`` names any Airflow connection whose hook is a common-sql ``DbApiHook``
(PostgreSQL, SQLite, MySQL, ...). When the id is the default ``ghl_target`` and no such
connection exists, the target is the embedded SQLite file ``$AIRFLOW_HOME/ghl_contacts.sqlite``
(created on first use), so the DAG works out of the box.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.providers.sqlite.hooks.sqlite import SqliteHook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = ["DEFAULT_TARGET_CONN_ID", "EMBEDDED_SQLITE_NAME", "EmbeddedSqliteHook", "embedded_sqlite_path", "get_target_hook"]

DEFAULT_TARGET_CONN_ID = "ghl_target"
EMBEDDED_SQLITE_NAME = "ghl_contacts.sqlite"


def embedded_sqlite_path(airflow_home: str | os.PathLike[str] | None = None) -> Path:
    """Path of the embedded default target: ``<AIRFLOW_HOME>/ghl_contacts.sqlite``."""
    home = airflow_home or os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"
    return Path(home) / EMBEDDED_SQLITE_NAME


class EmbeddedSqliteHook(SqliteHook):
    """A ``SqliteHook`` on a file path, with no stored Airflow connection behind it.

    Opens the file with a 60 s busy timeout and write-ahead logging, so several locations' tasks
    can write to it in turn without "database is locked" failures.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(sqlite_conn_id="ghl_target_embedded")
        self.path = Path(path)

    def get_uri(self) -> str:
        """``sqlite:///<path>`` (used by common-sql to pick the dialect)."""
        return f"sqlite:///{self.path}"

    def get_conn(self) -> sqlite3.Connection:
        """A new connection to the file (parent directory created if missing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @property
    def connection_extra(self) -> dict:
        """No stored connection, hence no extras."""
        return {}


def get_target_hook(target_conn_id: str = DEFAULT_TARGET_CONN_ID) -> DbApiHook:
    """The common-sql hook of ``target_conn_id``, or the embedded SQLite hook (see module doc).

    Raises ``ValueError`` when the connection exists but is not a SQL connection, and Airflow's
    not-found error when a non-default id does not exist.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(target_conn_id)
    except AirflowNotFoundException:
        if target_conn_id != DEFAULT_TARGET_CONN_ID:
            raise
        return EmbeddedSqliteHook(embedded_sqlite_path())
    hook = conn.get_hook()
    if not isinstance(hook, DbApiHook):
        raise ValueError(
            f"target connection {target_conn_id!r} has type {conn.conn_type!r}, whose hook "
            f"{type(hook).__name__} is not a common-sql DbApiHook; use a SQL connection (postgres, sqlite, mysql, ...)"
        )
    return hook
