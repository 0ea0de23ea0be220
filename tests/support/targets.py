"""Throwaway SQL targets for the sync tests: an SQLite file, or a PostgreSQL schema of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_contacts.sync import FieldMapping, SqlSink, get_target_hook
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook


@contextmanager
def throwaway_sink(kind: str, mapping: FieldMapping, *, folder: Path, postgres_url: str | None = None,
                   prefix: str = "ghl_test") -> Iterator[SqlSink]:
    """A :class:`SqlSink` on ``kind`` (``"sqlite"``: a file in ``folder``; ``"postgresql"``: the
    ``ghl_target`` connection set to ``postgres_url``, in a new schema ``<prefix>_<hex>`` that is
    dropped afterwards). The connection's environment variable is restored on exit."""
    if kind == "sqlite":
        sink = SqlSink(EmbeddedSqliteHook(folder / "t.sqlite"), mapping)
        try:
            yield sink
        finally:
            sink.close()
        return
    if not postgres_url:
        raise ValueError("a postgresql sink needs postgres_url")
    previous = os.environ.get("AIRFLOW_CONN_GHL_TARGET")
    os.environ["AIRFLOW_CONN_GHL_TARGET"] = postgres_url
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    sink = SqlSink(get_target_hook("ghl_target"), mapping, schema=schema)
    try:
        yield sink
    finally:
        sink.close()
        get_target_hook("ghl_target").run(f"DROP SCHEMA IF EXISTS {schema} CASCADE", autocommit=True)
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_GHL_TARGET", None)
        else:
            os.environ["AIRFLOW_CONN_GHL_TARGET"] = previous
