"""Where many records go instead of XCom: a table or a file (the record targets).

XCom is for small values. Operators that can return many records (search, list, by business:
:class:`~airflow_provider_contacts.operators.base.GHLRecordsOperator`) take the same output
parameters; :func:`deliver_records` sends their records where those parameters say:

* ``output_table`` + ``output_conn_id``: rows go to a table through any common-sql connection
  (``DbApiHook.insert_rows`` with ``replace=True`` and ``replace_index=["id"]``, so re-running a task
  updates rows instead of duplicating them; each dialect renders its own upsert: ``REPLACE INTO``
  for SQLite/MySQL, ``ON CONFLICT`` for PostgreSQL, ``MERGE`` for MSSQL). The table is created
  when missing (``create_table=True``): ``id`` (primary key), one text column per key field
  (snake_case), and ``record`` with the whole record as JSON.
* ``output_path``: JSON Lines (one record per line) written through
  :class:`airflow.sdk.ObjectStoragePath`, so ``file://``, ``s3://``, ``gs://``... all work (with the
  matching provider installed; ``output_conn_id`` then names the storage connection). The file
  is replaced on each run.
* neither: the records go to XCom, but at most ``max_xcom_records`` of them (default 1,000); past
  that the task fails with an error telling to set ``output_table`` or ``output_path``.

Records are streamed: pages are written in batches of ``batch_size`` as they arrive, so memory
stays bounded by one batch whatever the size of the location.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from airflow_provider_contacts.hooks.pagination import batched
from airflow_provider_contacts.params import input_error
from airflow_provider_contacts.redaction import mask_url_credentials, redact_url_credentials

#: Default cap of records pushed to XCom.
DEFAULT_MAX_XCOM_RECORDS = 1_000
#: Default number of records written per batch (one transaction / one flush).
DEFAULT_BATCH_SIZE = 500

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def snake_case(name: str) -> str:
    """``dateAdded`` -> ``date_added`` (column names that need no quoting in any dialect)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class OutputOptions:
    """Where records go and the XCom cap (validated by :meth:`check`)."""

    output_table: str | None = None
    output_conn_id: str | None = None
    output_path: str | None = None
    max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS
    batch_size: int = DEFAULT_BATCH_SIZE
    create_table: bool = True

    def check(self, owner: str, operation: str | None = None) -> None:
        """Raise :class:`~airflow_provider_contacts.params.GHLInputError` on a bad combination."""
        if self.output_table and self.output_path:
            raise input_error(owner, "output_table", "set either output_table or output_path, not both", operation)
        if self.output_table:
            if not self.output_conn_id:
                raise input_error(
                    owner,
                    "output_conn_id",
                    "output_table needs output_conn_id: the id of a common-sql connection "
                    "(sqlite, postgres, mysql, ...) to write the table through",
                    operation,
                )
            if not _TABLE_RE.match(self.output_table):
                raise input_error(
                    owner, "output_table", f"{self.output_table!r} is not a table name ('table' or 'schema.table')", operation
                )
        if not isinstance(self.max_xcom_records, int) or self.max_xcom_records < 0:
            raise input_error(owner, "max_xcom_records", "must be an integer >= 0", operation)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise input_error(owner, "batch_size", "must be an integer >= 1", operation)

    @property
    def has_target(self) -> bool:
        """True when records go to a table or a file rather than XCom."""
        return bool(self.output_table or self.output_path)


class RecordWriter(Protocol):
    """A target that accepts batches of API records (JSON-able dicts with an ``id``)."""

    def write(self, batch: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class TableWriter:
    """Upserts records into ``table`` through the common-sql connection ``conn_id``.

    :param key_fields: API fields stored as their own (text) columns besides ``id`` and ``record``.
    """

    def __init__(self, conn_id: str, table: str, key_fields: Sequence[str], create_table: bool = True) -> None:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise input_error(
                f"output connection {conn_id!r}",
                "output_conn_id",
                f"is of type {type(hook).__name__}, not a SQL (common-sql DbApiHook) connection",
            )
        self.hook = hook
        self.conn_id = conn_id
        self.table = table
        self.key_fields = [f for f in key_fields if f != "id"]
        self.columns = ["id", *(snake_case(f) for f in self.key_fields), "record"]
        if create_table:
            self._ensure_table()

    def _ensure_table(self) -> None:
        from sqlalchemy import Column, MetaData, String, Table, Text, inspect

        schema, _, name = self.table.rpartition(".")
        engine = self.hook.get_sqlalchemy_engine()
        try:
            if inspect(engine).has_table(name, schema=schema or None):
                return
            table = Table(
                name,
                MetaData(schema=schema or None),
                Column("id", String(64), primary_key=True),
                *(Column(col, Text) for col in self.columns[1:]),
            )
            table.create(engine, checkfirst=True)
        finally:
            engine.dispose()

    def _row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for field in self.key_fields:
            value = record.get(field)
            values.append(json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value)
        return (record.get("id"), *values, json.dumps(record, ensure_ascii=False, sort_keys=True))

    def write(self, batch: Sequence[Mapping[str, Any]]) -> None:
        rows = [self._row(r) for r in batch]
        self.hook.insert_rows(
            self.table,
            rows,
            target_fields=self.columns,
            commit_every=len(rows),
            replace=True,
            replace_index=["id"],
        )

    def close(self) -> None:
        """Nothing to flush: every batch is committed by ``insert_rows``."""

    def describe(self) -> dict[str, Any]:
        return {"output_table": self.table, "output_conn_id": self.conn_id}


class JsonLinesWriter:
    """Writes records as JSON Lines to ``path`` (any :class:`airflow.sdk.ObjectStoragePath` URL)."""

    def __init__(self, path: str, conn_id: str | None = None) -> None:
        from airflow.sdk import ObjectStoragePath

        mask_url_credentials(path)
        self.path = ObjectStoragePath(path, conn_id=conn_id) if conn_id else ObjectStoragePath(path)
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")

    def write(self, batch: Sequence[Mapping[str, Any]]) -> None:
        self._file.write("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in batch))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def describe(self) -> dict[str, Any]:
        """``{"output_path": <URL>}`` with any credentials in the URL replaced by ``***``."""
        return {"output_path": redact_url_credentials(str(self.path))}


def deliver_records(
    make_records: Callable[[], Iterable[Mapping[str, Any]]],
    options: OutputOptions,
    *,
    owner: str,
    key_fields: Sequence[str],
    operation: str | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Stream the records of ``make_records()`` to the target of ``options``, or collect them for XCom.

    The target is opened (and checked) before ``make_records`` is called, so a bad target fails
    before any API request.

    :returns: with a target ``{"count": n, "output_table"|"output_path": ...}``; without one
        ``{"count": n, "records": [...]}``.
    :raises GHLInputError: without a target, when there are more than ``max_xcom_records``
        records (raised as soon as the cap is passed, before anything is pushed).
    """
    options.check(owner, operation)
    if not options.has_target:
        collected = list(islice(iter(make_records()), options.max_xcom_records + 1))
        if len(collected) > options.max_xcom_records:
            raise input_error(
                owner,
                "max_xcom_records",
                f"more than {options.max_xcom_records} records match; XCom is for small values. "
                "Set output_table (+ output_conn_id) or output_path to write them to a table or a file, "
                "narrow the search, or raise max_xcom_records",
                operation,
            )
        return {"count": len(collected), "records": collected}

    writer: RecordWriter
    if options.output_table:
        writer = TableWriter(options.output_conn_id or "", options.output_table, key_fields, options.create_table)
    else:
        writer = JsonLinesWriter(options.output_path or "", options.output_conn_id)
    count = 0
    try:
        for batch in batched(make_records(), options.batch_size):
            writer.write(batch)
            count += len(batch)
            if log is not None:
                log.info("wrote %d record(s) so far to %s", count, writer.describe())
    finally:
        writer.close()
    return {"count": count, **writer.describe()}


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_XCOM_RECORDS",
    "JsonLinesWriter",
    "OutputOptions",
    "RecordWriter",
    "TableWriter",
    "deliver_records",
    "snake_case",
]
