"""Compare the target tables with the source of truth, field by field after mapping.

Used by the demo (``scripts/demo.py``) and the tests: ``truth`` is what HighLevel holds for the
location (e.g. the sandbox's ``dump()``: ``{"contacts": [...], "tasks": [...], "notes": [...]}``).
The target agrees when every record that maps is a live row with the mapped values and the same
raw JSON, every record that cannot be mapped is in the quarantine table, and no other live row
exists (records gone from HighLevel must carry ``deleted_at``, or be absent after a hard delete).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_contacts.sync.mapping import TABLES, FieldMapping, MappedRecord
from airflow_provider_contacts.sync.sinks import SqlSink

__all__ = ["diff_target", "live_rows"]


def live_rows(sink: SqlSink, entity: str, location_id: str) -> dict[str, dict[str, Any]]:
    """Live (not deleted) rows of ``entity`` in the location, by id, as column -> value."""
    with sink.transaction() as tx:
        tx.cur.execute(
            f"SELECT * FROM {sink.table(TABLES[entity])} WHERE location_id = {sink.placeholder} AND deleted_at IS NULL",
            (location_id,),
        )
        names = [str(d[0]).lower() for d in tx.cur.description]
        return {str(row[0]): dict(zip(names, row)) for row in tx.cur.fetchall()}


def _norm(value: Any, logical_type: str) -> Any:
    """A stored or mapped value in one comparable form per logical type."""
    if value is None:
        return None
    if logical_type == "timestamp":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if logical_type == "json":
        return json.loads(value) if isinstance(value, str) else value
    if logical_type == "boolean":
        return bool(value)
    if logical_type == "number":
        number = float(value)
        return None if math.isnan(number) else number
    return value


def diff_target(
    sink: SqlSink, mapping: FieldMapping, location_id: str, truth: Mapping[str, list[dict[str, Any]]], limit: int = 50
) -> list[str]:
    """Differences between the target and ``truth`` (empty list: they agree). At most ``limit``."""
    diffs: list[str] = []
    for entity, table in TABLES.items():
        columns = mapping.columns(entity)
        rows = live_rows(sink, entity, location_id)
        with sink.transaction() as tx:
            quarantined = set(tx.quarantined_ids(entity, location_id))
        expected_ids: set[str] = set()
        for record in truth.get(entity, []):
            result = mapping.map_record(entity, record)
            rid = str(record.get("id"))
            expected_ids.add(rid)
            if not isinstance(result, MappedRecord):
                if rid not in quarantined:
                    diffs.append(f"{table} {rid}: cannot be mapped ({result.reason}) but is not quarantined")
                continue
            row = rows.get(rid)
            if row is None:
                diffs.append(f"{table} {rid}: missing from the target")
                continue
            if _norm(row["raw_json"], "json") != json.loads(result.raw_json):
                diffs.append(f"{table} {rid}: raw_json differs from the API record")
            if row["content_hash"] != result.content_hash:
                diffs.append(f"{table} {rid}: content_hash differs")
            wanted = {"location_id": location_id, "contact_id": result.contact_id, **result.columns}
            for column, value in wanted.items():
                if column not in columns:
                    continue
                got, want = _norm(row.get(column), columns[column]), _norm(value, columns[column])
                if got != want:
                    diffs.append(f"{table} {rid}.{column}: target {got!r} != source {want!r}")
        for rid in sorted(set(rows) - expected_ids):
            diffs.append(f"{table} {rid}: live in the target but gone from the source (should be deleted)")
        if len(diffs) >= limit:
            break
    return diffs[:limit]
