"""Automatic custom field columns: every contact custom field of a location becomes a column.

Custom fields are defined per location (``ghl-live-notes.md``: ids, names and ``fieldKey``\\ s
differ from one sub-account to the next), so the shipped mapping names none; with the mapping
option ``custom_fields: auto`` (the default) each field the location has gets a column of
``ghl_contacts``:

* **Name**: ``cf_`` + the field's name in snake case (``"Lead Score"`` -> ``cf_lead_score``,
  accents folded, at most 40 characters after the prefix). The ``cf_`` prefix is reserved: mapped
  columns may not start with it and no system column does, so nothing else can collide with an
  automatic column. Two fields whose names give the same column get a stable suffix from their
  ids (``cf_score_1a2b3c4d``: the first 8 hex digits of the SHA-1 of the field id); the field
  with the smaller id keeps the plain name when both appear in the same run.
* **Type**, from the field's ``dataType`` (see :data:`DATA_TYPE_TRANSFORMS`): numbers for
  ``NUMERICAL``/``MONETORY``, ``YYYY-MM-DD`` text for ``DATE``, JSON for multi-valued and
  structured types (``CHECKBOX``, ``MULTIPLE_OPTIONS``, ``TEXTBOX_LIST``, ``FILE_UPLOAD``,
  ``SIGNATURE``), E.164-or-as-given text for ``PHONE``, text for the rest and for unknown types.
* **Stability**: the assignment field id -> column is stored in the sync state
  (``ghl_sync_state``, name ``custom_field_columns``) and never changes: a field renamed in
  HighLevel keeps its column (the rename is reported), a field deleted in HighLevel keeps its
  column, no longer filled (reported), a field added later gets a column on the next run
  (``ALTER TABLE ... ADD COLUMN``). A column keeps the type it was created with.
* **Several locations in one target** share ``ghl_contacts``: fields of different locations with
  the same name and type share a column (an agency's templated sub-accounts land in the same
  columns); the same name with another type gets the suffixed name instead.

Custom fields that the mapping names explicitly (``custom_field: ...``) get no automatic column
(they have their mapped one) unless they already had one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_contacts.sync.transforms import TRANSFORM_TYPES

__all__ = [
    "CUSTOM_COLUMN_PREFIX",
    "DATA_TYPE_TRANSFORMS",
    "STATE_NAME",
    "CustomColumn",
    "CustomFieldPlan",
    "column_base",
    "plan_custom_columns",
    "resolve_reference",
    "table_custom_columns",
]

#: Prefix of every automatic custom field column (reserved: mapped columns may not use it).
CUSTOM_COLUMN_PREFIX = "cf_"
#: Name of the per-location value in ``ghl_sync_state`` holding the assignments.
STATE_NAME = "custom_field_columns"
_MAX_BASE = 40

#: HighLevel custom field ``dataType`` -> transform of its automatic column (others: ``text``).
DATA_TYPE_TRANSFORMS: dict[str, str] = {
    "TEXT": "text",
    "LARGE_TEXT": "text",
    "SINGLE_OPTIONS": "text",
    "RADIO": "text",
    "EMAIL": "text",
    "PHONE": "phone",
    "NUMERICAL": "number",
    "MONETORY": "number",  # HighLevel's spelling
    "MONETARY": "number",
    "DATE": "date",
    "CHECKBOX": "json",
    "MULTIPLE_OPTIONS": "json",
    "TEXTBOX_LIST": "json",
    "FILE_UPLOAD": "json",
    "SIGNATURE": "json",
}


def column_base(name: str) -> str:
    """``cf_`` + ``name`` in snake case: ``"Lead Score"`` -> ``cf_lead_score``,
    ``"Größe (cm)"`` -> ``cf_grosse_cm``; a name without letters or digits gives ``cf_field``."""
    folded = unicodedata.normalize("NFKD", str(name).replace("ß", "ss")).encode("ascii", "ignore").decode()
    snake = re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")
    snake = snake[:_MAX_BASE].rstrip("_") or "field"
    return CUSTOM_COLUMN_PREFIX + snake


def _suffixes(field_id: str) -> Iterable[str]:
    digest = hashlib.sha1(field_id.encode("utf-8")).hexdigest()
    for length in (8, 12, 16, 19):  # cf_ + 40 + _ + 19 = 63, PostgreSQL's identifier limit
        yield "_" + digest[:length]


@dataclass(frozen=True)
class CustomColumn:
    """One custom field's automatic column in one location.

    :param field_id: the HighLevel custom field id (the stable key).
    :param column: the column name (never changes once assigned).
    :param name: the field's name as last seen; ``field_key`` its ``fieldKey``.
    :param data_type: the field's ``dataType`` when the column was assigned (or last seen).
    :param transform: the transform of the column (fixed at assignment, like the column's type).
    :param removed: the field no longer exists in the location; the column is kept, not filled.
    """

    field_id: str
    column: str
    name: str
    field_key: str | None = None
    data_type: str | None = None
    transform: str = "text"
    removed: bool = False

    @property
    def sql_type(self) -> str:
        """Logical column type (``text``, ``number``, ``json``, ...)."""
        return TRANSFORM_TYPES.get(self.transform, "text")

    def to_state(self) -> dict[str, Any]:
        """The JSON form stored in ``ghl_sync_state``."""
        return {
            "column": self.column,
            "name": self.name,
            "fieldKey": self.field_key,
            "dataType": self.data_type,
            "transform": self.transform,
            "removed": self.removed,
        }

    @classmethod
    def from_state(cls, field_id: str, data: Mapping[str, Any]) -> CustomColumn:
        """Inverse of :meth:`to_state` (an unknown stored transform reads as ``text``)."""
        transform = str(data.get("transform") or "text")
        return cls(
            field_id=str(field_id),
            column=str(data["column"]),
            name=str(data.get("name") or ""),
            field_key=data.get("fieldKey"),
            data_type=data.get("dataType"),
            transform=transform if transform in TRANSFORM_TYPES else "text",
            removed=bool(data.get("removed", False)),
        )


def _stored_columns(stored: Mapping[str, Any] | None) -> dict[str, CustomColumn]:
    fields = (stored or {}).get("fields") or {}
    out: dict[str, CustomColumn] = {}
    for fid, data in fields.items():
        if isinstance(data, Mapping) and data.get("column"):
            out[str(fid)] = CustomColumn.from_state(fid, data)
    return out


def table_custom_columns(states: Iterable[Mapping[str, Any] | None]) -> dict[str, str]:
    """Every automatic column of the target (column -> logical type) from all locations' stored
    assignments; the first location listing a column decides its type."""
    out: dict[str, str] = {}
    for stored in states:
        for col in _stored_columns(stored).values():
            out.setdefault(col.column, col.sql_type)
    return out


def resolve_reference(reference: str, fields: Iterable[Mapping[str, Any]]) -> str | None:
    """The id of the custom field named ``reference`` (by ``name`` or ``fieldKey``, exact first,
    then case-insensitive), or ``None``."""
    definitions = [f for f in fields if f.get("id")]
    for exact in (True, False):
        for definition in definitions:
            for key in ("name", "fieldKey"):
                value = definition.get(key)
                if value is None:
                    continue
                if (str(value) == reference) if exact else (str(value).lower() == reference.lower()):
                    return str(definition["id"])
    return None


@dataclass
class CustomFieldPlan:
    """The custom field columns of one location for one run (see :func:`plan_custom_columns`).

    ``columns``: every assignment of the location (removed fields included); ``fill``: the ones
    filled this run (``custom_fields: auto`` and the field still exists); ``table_columns``: every
    automatic column of the target, all locations (column -> logical type); ``refs``: explicit
    ``custom_field`` references -> field id; ``missing``: explicit references the location does
    not have; ``added`` / ``renamed`` / ``removed``: what changed, as report lines.
    """

    columns: dict[str, CustomColumn] = field(default_factory=dict)
    fill: list[CustomColumn] = field(default_factory=list)
    table_columns: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """The value stored as ``custom_field_columns`` in ``ghl_sync_state``."""
        return {
            "fields": {fid: col.to_state() for fid, col in sorted(self.columns.items())},
            "refs": dict(sorted(self.refs.items())),
        }


def plan_custom_columns(
    stored: Mapping[str, Any] | None,
    others: Iterable[Mapping[str, Any] | None],
    fields: list[Mapping[str, Any]] | None,
    *,
    auto: bool = True,
    references: Iterable[str] = (),
) -> CustomFieldPlan:
    """Decide this run's custom field columns of one location.

    :param stored: the location's stored ``custom_field_columns`` value (``None``: first run).
    :param others: the stored values of the other locations writing to the same target.
    :param fields: the location's contact custom field definitions (``id``, ``name``,
        ``fieldKey``, ``dataType``), or ``None`` when they could not be read (then the stored
        assignments and references are used unchanged).
    :param auto: ``custom_fields: auto`` (assign and fill columns) or ``none`` (fill none).
    :param references: the mapping's explicit ``custom_field`` references (names or fieldKeys).
    """
    plan = CustomFieldPlan(columns=_stored_columns(stored))
    stored_refs = {str(k): str(v) for k, v in ((stored or {}).get("refs") or {}).items()}
    references = list(dict.fromkeys(references))
    other_types = table_custom_columns(others)

    if fields is None:
        plan.refs = {ref: stored_refs[ref] for ref in references if ref in stored_refs}
        plan.missing = [ref for ref in references if ref not in plan.refs]
    else:
        current = {str(f["id"]): f for f in fields if f.get("id")}
        for ref in references:
            fid = resolve_reference(ref, current.values())
            if fid is None:
                plan.missing.append(ref)
            else:
                plan.refs[ref] = fid
        for fid, col in list(plan.columns.items()):
            definition = current.get(fid)
            if definition is None:
                if not col.removed:
                    plan.columns[fid] = replace(col, removed=True)
                    plan.removed.append(f"{col.column} ({col.name!r} no longer exists; column kept, not filled)")
                continue
            name = str(definition.get("name") or col.name)
            if name != col.name:
                plan.renamed.append(f"{col.column}: {col.name!r} renamed to {name!r} (column kept)")
            if col.removed:
                plan.added.append(f"{col.column} ({name!r} exists again; filled again)")
            plan.columns[fid] = replace(
                col, name=name, field_key=definition.get("fieldKey"), data_type=definition.get("dataType"),
                removed=False,
            )
        if auto:
            explicit = set(plan.refs.values())
            taken = {col.column for col in plan.columns.values()}
            for fid in sorted(current):
                if fid in plan.columns or fid in explicit:
                    continue
                definition = current[fid]
                data_type = str(definition.get("dataType") or "").upper() or None
                transform = DATA_TYPE_TRANSFORMS.get(data_type or "", "text")
                sql_type = TRANSFORM_TYPES[transform]
                base = column_base(str(definition.get("name") or definition.get("fieldKey") or fid))
                column = next(
                    candidate
                    for candidate in (base, *(base + s for s in _suffixes(fid)))
                    if candidate not in taken and other_types.get(candidate, sql_type) == sql_type
                )
                taken.add(column)
                col = CustomColumn(fid, column, str(definition.get("name") or ""), definition.get("fieldKey"),
                                   data_type, transform)
                plan.columns[fid] = col
                plan.added.append(f"{column} ({col.name!r}, {data_type or 'no dataType'} -> {sql_type})")
    if auto:
        plan.fill = sorted((c for c in plan.columns.values() if not c.removed), key=lambda c: c.column)
    plan.table_columns = dict(other_types)
    for col in sorted(plan.columns.values(), key=lambda c: c.column):
        plan.table_columns.setdefault(col.column, col.sql_type)
    return plan
