"""Compare the target tables with the source of truth, field by field after mapping.

Used by the demo (``scripts/demo.py``) and the tests: ``truth`` is what HighLevel holds for the
location (e.g. the sandbox's ``dump()``: ``{"contacts": [...], "tasks": [...], "notes": [...]}``).
The target agrees when every record that maps is a live row with the mapped values and the same
raw JSON, every record that cannot be mapped is in the quarantine table, and no other live row
exists (records gone from HighLevel must carry ``deleted_at``, or be absent after a hard delete).

"The same raw JSON" allows for the two shapes of a contact (``ghl-live-notes.md``): ``truth`` may
hold the stored shape (``address1``, ``dateOfBirth`` as a date) while the target holds what
``POST /contacts/search`` answered (``address``, epoch-millisecond ``dateOfBirth``, extra fields);
every non-empty field of the truth must then be in the row, equal after folding the two shapes.
The custom field columns compared are the ones the engine assigned to the location (read from
the sync state).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_contacts.dates import parse_date
from airflow_provider_contacts.sync.custom_fields import STATE_NAME as CUSTOM_FIELDS_STATE
from airflow_provider_contacts.sync.custom_fields import plan_custom_columns
from airflow_provider_contacts.sync.mapping import TABLES, FieldMapping, MappedRecord, canonical_json, content_hash
from airflow_provider_contacts.sync.sinks import SqlSink

__all__ = ["bind_stored_custom_fields", "diff_target", "live_rows"]


def bind_stored_custom_fields(sink: SqlSink, mapping: FieldMapping, location_id: str) -> None:
    """Bind ``mapping`` to the custom field columns the engine stored for the location."""
    with sink.transaction() as tx:
        states = tx.all_states(CUSTOM_FIELDS_STATE)
    stored = states.pop(location_id, None)
    references = mapping.custom_field_names
    plan = plan_custom_columns(stored, states.values(), None, auto=mapping.custom_fields == "auto", references=references)
    if stored is None and mapping.custom_field_ids:  # resolved by the caller, never run by the engine
        plan.refs = {r: mapping.custom_field_ids[r] for r in references if r in mapping.custom_field_ids}
        plan.missing = [r for r in references if r not in plan.refs]
    mapping.bind_custom_fields(plan)


def _folded(record: Mapping[str, Any]) -> dict[str, Any]:
    """A contact with the search shape folded into the ``GET /contacts/{id}`` shape, empty values dropped."""
    out = dict(record)
    if "address" in out:
        address = out.pop("address")
        if out.get("address1") in (None, ""):
            out["address1"] = address
    try:
        day = parse_date(out.get("dateOfBirth"))
    except ValueError:
        day = None
    if day is not None:
        out["dateOfBirth"] = day.isoformat()
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


def _same_record(entity: str, stored: Mapping[str, Any], truth: Mapping[str, Any]) -> bool:
    if stored == truth:
        return True
    if entity != "contacts":
        return False
    have, want = _folded(stored), _folded(truth)
    return all(have.get(k) == v for k, v in want.items())


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
    bind_stored_custom_fields(sink, mapping, location_id)
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
            stored = _norm(row["raw_json"], "json")
            if not _same_record(entity, stored, json.loads(result.raw_json)):
                diffs.append(f"{table} {rid}: raw_json differs from the API record")
            stored_text = row["raw_json"] if isinstance(row["raw_json"], str) else canonical_json(stored)
            if row["content_hash"] != content_hash(json.loads(stored_text)):
                diffs.append(f"{table} {rid}: content_hash is not the hash of raw_json")
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
