"""Declarative mapping from HighLevel API records to target table columns.

A mapping is a dict (or a YAML file holding one) of this shape::

    options:
      default_country: US          # national phone numbers are taken to be from here
    contacts:                      # one section per table: contacts, tasks, notes
      columns:
        email: {source: email, transform: email}
        phone: {source: phone, transform: phone, on_error: "null"}
        first_name: firstName      # shorthand for {source: firstName, transform: text}
        lead_score: {custom_field: "Lead Score", transform: number}
        date_added: {source: dateAdded, transform: timestamp, required: true}

Per column: ``source`` (API field name; dotted paths reach into objects, e.g.
``dndSettings.SMS.status``) **or** ``custom_field`` (a contact custom field by its name or its
``fieldKey``, resolved to an id through the custom fields endpoint once per run);
``transform`` (see :mod:`.transforms`, default ``text``); ``required`` (default false: a missing
value quarantines the record); ``on_error`` (``quarantine`` (default): the record goes to the
quarantine table with the reason and its target row is left as it was; ``null``: the column is
stored as NULL, the untouched value stays in ``raw_json``).

Every table also gets system columns that the mapping cannot redefine: ``id`` (key),
``location_id``, ``raw_json``, ``content_hash``, ``first_seen_at``, ``last_synced_at``,
``deleted_at`` and, for tasks and notes, ``contact_id``.

A record "cannot be mapped" when its ``id`` is missing, when a ``required`` column is empty, or
when a transform raises for a column whose ``on_error`` is ``quarantine``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_provider_contacts.sync.transforms import TRANSFORM_TYPES, TRANSFORMS, TransformError

__all__ = [
    "ColumnSpec",
    "FieldMapping",
    "MappingError",
    "MappedRecord",
    "Quarantined",
    "SYSTEM_COLUMNS",
    "TABLES",
    "canonical_json",
    "content_hash",
]

#: Logical entity -> default target table name.
TABLES: dict[str, str] = {"contacts": "ghl_contacts", "tasks": "ghl_tasks", "notes": "ghl_notes"}

#: Columns every table has, with their logical types; tasks and notes add ``contact_id``.
SYSTEM_COLUMNS: dict[str, str] = {
    "id": "key",
    "location_id": "text",
    "raw_json": "json",
    "content_hash": "text",
    "first_seen_at": "timestamp",
    "last_synced_at": "timestamp",
    "deleted_at": "timestamp",
}
CHILD_SYSTEM_COLUMNS: dict[str, str] = {"contact_id": "text"}
_ON_ERROR = ("quarantine", "null")
_COLUMN_KEYS = {"source", "custom_field", "transform", "required", "on_error", "type"}


class MappingError(ValueError):
    """The mapping itself is invalid (a configuration error, not a bad record)."""


def canonical_json(record: Mapping[str, Any]) -> str:
    """The record as compact JSON with sorted keys: the form that is stored and hashed."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json`; equal hashes mean equal API content."""
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ColumnSpec:
    """One mapped column: where its value comes from and how it is converted."""

    name: str
    source: str | None = None
    custom_field: str | None = None
    transform: str = "text"
    required: bool = False
    on_error: str = "quarantine"

    @property
    def sql_type(self) -> str:
        """Logical column type (``text``, ``timestamp``, ``boolean``, ``number``, ``json``)."""
        return TRANSFORM_TYPES[self.transform]

    @property
    def label(self) -> str:
        """The API field the column reads, for error messages."""
        return f"custom field {self.custom_field!r}" if self.custom_field else repr(self.source)


@dataclass(frozen=True)
class MappedRecord:
    """A record that mapped: its id, parent contact (tasks/notes), columns, raw JSON and hash."""

    id: str
    contact_id: str | None
    columns: dict[str, Any]
    raw_json: str
    content_hash: str


@dataclass(frozen=True)
class Quarantined:
    """A record that could not be mapped, with every reason found and its raw JSON."""

    id: str | None
    contact_id: str | None
    reasons: list[str]
    raw_json: str

    @property
    def reason(self) -> str:
        """All reasons in one line."""
        return "; ".join(self.reasons)


@dataclass
class FieldMapping:
    """Parsed, validated mapping for the three tables. Build it with :meth:`from_dict` / :meth:`load`."""

    tables: dict[str, list[ColumnSpec]]
    default_country: str = "US"
    custom_field_ids: dict[str, str] = field(default_factory=dict)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> FieldMapping:
        """Read a YAML mapping file (see the module docstring for the format)."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data or {}, origin=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "mapping") -> FieldMapping:
        """Validate ``data`` and build the mapping; raises :class:`MappingError` naming the bad key."""
        if not isinstance(data, Mapping):
            raise MappingError(f"{origin}: the mapping must be a dict with keys options/contacts/tasks/notes")
        unknown = set(data) - {"options", *TABLES}
        if unknown:
            raise MappingError(f"{origin}: unknown top-level keys {sorted(unknown)}; allowed: options, {', '.join(TABLES)}")
        options = data.get("options") or {}
        country = str(options.get("default_country", "US")).upper()
        tables: dict[str, list[ColumnSpec]] = {}
        for entity in TABLES:
            section = data.get(entity) or {}
            columns = section.get("columns", {}) if isinstance(section, Mapping) else None
            if not isinstance(columns, Mapping):
                raise MappingError(f"{origin}: {entity}.columns must be a dict of column name -> spec")
            tables[entity] = [cls._column(entity, name, spec, origin) for name, spec in columns.items()]
        return cls(tables=tables, default_country=country)

    @staticmethod
    def _column(entity: str, name: str, spec: Any, origin: str) -> ColumnSpec:
        where = f"{origin}: {entity}.columns.{name}"
        if not str(name).isidentifier() or name != name.lower():
            raise MappingError(f"{where}: column names must be lower-case identifiers (letters, digits, _)")
        if name in SYSTEM_COLUMNS or name in CHILD_SYSTEM_COLUMNS:
            raise MappingError(f"{where}: {name!r} is a system column; choose another name")
        if isinstance(spec, str):
            spec = {"source": spec}
        if not isinstance(spec, Mapping):
            raise MappingError(f"{where}: expected an API field name or a dict with 'source'")
        unknown = set(spec) - _COLUMN_KEYS
        if unknown:
            raise MappingError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_COLUMN_KEYS)}")
        if bool(spec.get("source")) == bool(spec.get("custom_field")):
            raise MappingError(f"{where}: give exactly one of 'source' (API field) or 'custom_field' (name)")
        if spec.get("custom_field") and entity != "contacts":
            raise MappingError(f"{where}: custom fields exist on contacts only")
        transform = spec.get("transform", "text")
        if transform not in TRANSFORMS:
            raise MappingError(f"{where}: unknown transform {transform!r}; choose one of {sorted(TRANSFORMS)}")
        on_error = str(spec.get("on_error", "quarantine"))
        if on_error not in _ON_ERROR:
            raise MappingError(f"{where}: on_error must be one of {list(_ON_ERROR)}, not {on_error!r}")
        return ColumnSpec(
            name=name,
            source=spec.get("source"),
            custom_field=spec.get("custom_field"),
            transform=transform,
            required=bool(spec.get("required", False)),
            on_error=on_error,
        )

    # -- custom fields ---------------------------------------------------------------------
    @property
    def custom_field_names(self) -> list[str]:
        """Custom field names/keys the contact mapping refers to."""
        return [c.custom_field for c in self.tables["contacts"] if c.custom_field]

    def resolve_custom_fields(self, fields: list[Mapping[str, Any]]) -> None:
        """Resolve every ``custom_field`` reference (by name, or by ``fieldKey``) to its id.

        ``fields`` are the location's custom field definitions (``id``, ``name``, ``fieldKey``).
        Raises :class:`MappingError` listing the available names when one is not found.
        """
        by_name: dict[str, str] = {}
        for definition in fields:
            fid = definition.get("id")
            for key in ("name", "fieldKey"):
                if definition.get(key) and fid:
                    by_name.setdefault(str(definition[key]), str(fid))
                    by_name.setdefault(str(definition[key]).lower(), str(fid))
        resolved: dict[str, str] = {}
        for name in self.custom_field_names:
            fid = by_name.get(name) or by_name.get(name.lower())
            if fid is None:
                names = sorted({str(d.get("name")) for d in fields if d.get("name")})
                raise MappingError(
                    f"custom field {name!r} does not exist in this location; available: {names}"
                )
            resolved[name] = fid
        self.custom_field_ids = resolved

    # -- mapping ---------------------------------------------------------------------------
    def columns(self, entity: str) -> dict[str, str]:
        """Every column of ``entity``'s table (system columns first) -> logical type."""
        out = dict(SYSTEM_COLUMNS)
        if entity != "contacts":
            out.update(CHILD_SYSTEM_COLUMNS)
        out.update({c.name: c.sql_type for c in self.tables[entity]})
        return out

    def map_record(self, entity: str, record: Mapping[str, Any]) -> MappedRecord | Quarantined:
        """Map one API record of ``entity``; never raises for bad data, returns :class:`Quarantined`."""
        raw = canonical_json(record)
        rid = record.get("id")
        contact_id = record.get("contactId") if entity != "contacts" else None
        reasons: list[str] = []
        if not isinstance(rid, str) or not rid:
            reasons.append("field 'id' is missing: the record cannot be keyed")
        if entity != "contacts" and not contact_id:
            reasons.append("field 'contactId' is missing: the record cannot be tied to a contact")
        values: dict[str, Any] = {}
        for column in self.tables[entity]:
            value = self._source_value(column, record)
            try:
                converted = TRANSFORMS[column.transform](value, default_country=self.default_country)
            except TransformError as exc:
                if column.on_error == "null":
                    converted = None
                else:
                    reasons.append(f"column {column.name} ({column.label}): {exc}")
                    continue
            if column.required and (converted is None or converted == []):
                reasons.append(f"column {column.name}: required field {column.label} is empty")
            values[column.name] = converted
        if reasons:
            return Quarantined(rid if isinstance(rid, str) and rid else None, contact_id, reasons, raw)
        return MappedRecord(rid, contact_id, values, raw, hashlib.sha256(raw.encode("utf-8")).hexdigest())

    def _source_value(self, column: ColumnSpec, record: Mapping[str, Any]) -> Any:
        if column.custom_field:
            fid = self.custom_field_ids.get(column.custom_field)
            if fid is None:
                raise MappingError(
                    f"custom field {column.custom_field!r} was not resolved; call resolve_custom_fields() first"
                )
            for item in record.get("customFields") or []:
                if isinstance(item, Mapping) and item.get("id") == fid:
                    return item.get("value", item.get("fieldValue"))
            return None
        value: Any = record
        for part in str(column.source).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value
