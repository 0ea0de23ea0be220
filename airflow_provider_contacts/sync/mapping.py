"""Declarative mapping from HighLevel API records to target table columns.

A mapping is a dict (or a YAML file holding one) of this shape::

    options:
      default_country: US          # national phone numbers are taken to be from here
      custom_fields: auto          # auto (default): every custom field gets a cf_... column; none
    contacts:                      # one section per table: contacts, tasks, notes
      columns:
        email: {source: email, transform: email}
        phone: {source: phone, transform: phone}
        first_name: firstName      # shorthand for {source: firstName, transform: text}
        address1: {source: [address1, address]}    # first field present wins
        score: {custom_field: "Lead Score", transform: number}
        date_added: {source: dateAdded, transform: timestamp, required: true}

Per column:

``source``
    API field name, or a list of names tried in order (the first one present and not empty
    wins: ``GET /contacts/{id}`` says ``address1`` where ``POST /contacts/search`` says
    ``address``). Dotted paths reach into objects (``dndSettings.SMS.status``).
``custom_field``
    instead of ``source``: a contact custom field by its name or ``fieldKey``, resolved to an id
    through ``GET /locations/{id}/customFields`` once per run. A field the location does not
    have is a warning in the run report and NULLs, and fails the run only for a ``required``
    column.
``transform``
    see :mod:`.transforms`; default ``text``.
``required``
    default false. A required column that is empty or cannot be converted sets the record aside
    in the quarantine table (its target row is left as it was).
``on_error``
    what a failing transform does on a column that is not required: ``null`` (default) stores
    NULL, keeps the value in ``raw_json`` and counts it per column in the run report;
    ``quarantine`` sets the whole record aside instead (opt-in, for columns that must never be
    silently NULL).

``options.custom_fields``: ``auto`` (default) gives every custom field of the location a column
``cf_<snake_case name>`` typed from its ``dataType`` (see :mod:`.custom_fields`); ``none`` gives
none. The ``cf_`` prefix is reserved for those columns.

Every table also gets system columns that the mapping cannot redefine: ``id`` (key),
``location_id``, ``raw_json``, ``content_hash``, ``first_seen_at``, ``last_synced_at``,
``deleted_at`` and, for tasks and notes, ``contact_id``.

A record "cannot be mapped" (quarantine) only when its ``id`` is missing, when a task or note has
no ``contactId``, when a ``required`` column is empty or cannot be converted, or when a transform
fails on a column with ``on_error: quarantine``. Every text reaching the target is cleaned first
(NUL characters removed, lone surrogates replaced; :func:`.transforms.clean_text`), counted per
column (and ``raw_json``) in the run report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_contacts.sync.custom_fields import CUSTOM_COLUMN_PREFIX, CustomColumn, resolve_reference
from airflow_provider_contacts.sync.schema import TABLES
from airflow_provider_contacts.sync.transforms import (
    TRANSFORM_TYPES,
    TRANSFORMS,
    TransformError,
    clean_text,
    is_known_country,
)

if TYPE_CHECKING:
    from airflow_provider_contacts.sync.custom_fields import CustomFieldPlan

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
_ON_ERROR = ("null", "quarantine")
_CUSTOM_FIELDS_MODES = ("auto", "none")
_COLUMN_KEYS = {"source", "custom_field", "transform", "required", "on_error", "type"}
_OPTION_KEYS = {"default_country", "custom_fields"}
_MAX_IDENTIFIER = 63  # PostgreSQL's limit


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
    """One mapped column: where its value comes from and how it is converted.

    ``sources`` are API field names (dotted paths) tried in order; ``custom_field`` a custom field
    name or ``fieldKey`` (exactly one of the two is set).
    """

    name: str
    sources: tuple[str, ...] = ()
    custom_field: str | None = None
    transform: str = "text"
    required: bool = False
    on_error: str = "null"

    @property
    def source(self) -> str | None:
        """The first source field (``None`` for a custom field column)."""
        return self.sources[0] if self.sources else None

    @property
    def sql_type(self) -> str:
        """Logical column type (``text``, ``timestamp``, ``boolean``, ``number``, ``json``)."""
        return TRANSFORM_TYPES[self.transform]

    @property
    def label(self) -> str:
        """The API field(s) the column reads, for messages."""
        if self.custom_field:
            return f"custom field {self.custom_field!r}"
        return " or ".join(repr(s) for s in self.sources)


@dataclass(frozen=True)
class MappedRecord:
    """A record that mapped: its id, parent contact (tasks/notes), columns, raw JSON and hash.

    ``column_errors``: column -> why its value could not be converted (the column is NULL, the
    value is in ``raw_json``); ``cleaned``: columns (and ``raw_json``) whose text had characters
    removed or replaced to be storable (see :func:`.transforms.clean_text`).
    """

    id: str
    contact_id: str | None
    columns: dict[str, Any]
    raw_json: str
    content_hash: str
    column_errors: dict[str, str] = field(default_factory=dict)
    cleaned: tuple[str, ...] = ()


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


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _custom_value(record: Mapping[str, Any], field_id: str) -> Any:
    for item in record.get("customFields") or []:
        if isinstance(item, Mapping) and item.get("id") == field_id:
            for key in ("value", "fieldValue", "field_value"):
                if item.get(key) is not None:
                    return item[key]
            return None
    return None


@dataclass
class FieldMapping:
    """Parsed, validated mapping for the three tables. Build it with :meth:`from_dict` / :meth:`load`.

    Custom fields are bound per location and run (:meth:`bind_custom_fields`, done by the engine;
    :meth:`resolve_custom_fields` for explicit references only): ``custom_field_ids`` maps each
    explicit reference to its field id.
    """

    tables: dict[str, list[ColumnSpec]]
    default_country: str = "US"
    custom_fields: str = "auto"
    custom_field_ids: dict[str, str] = field(default_factory=dict)
    _fill: list[CustomColumn] = field(default_factory=list, repr=False)
    _auto_types: dict[str, str] = field(default_factory=dict, repr=False)
    _missing_refs: set[str] = field(default_factory=set, repr=False)

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
        if not isinstance(options, Mapping):
            raise MappingError(f"{origin}: options must be a dict")
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise MappingError(f"{origin}: unknown options {sorted(unknown)}; allowed: {sorted(_OPTION_KEYS)}")
        country = str(options.get("default_country", "US")).upper()
        if not is_known_country(country):
            raise MappingError(
                f"{origin}: options.default_country {country!r} is not an ISO 3166 alpha-2 country code "
                "known to the phone library (e.g. US, GB, DE)"
            )
        mode = str(options.get("custom_fields", "auto")).lower()
        if mode not in _CUSTOM_FIELDS_MODES:
            raise MappingError(f"{origin}: options.custom_fields must be one of {list(_CUSTOM_FIELDS_MODES)}, not {mode!r}")
        tables: dict[str, list[ColumnSpec]] = {}
        for entity in TABLES:
            section = data.get(entity) or {}
            columns = section.get("columns", {}) if isinstance(section, Mapping) else None
            if not isinstance(columns, Mapping):
                raise MappingError(f"{origin}: {entity}.columns must be a dict of column name -> spec")
            tables[entity] = [cls._column(entity, name, spec, origin) for name, spec in columns.items()]
        return cls(tables=tables, default_country=country, custom_fields=mode)

    @staticmethod
    def _column(entity: str, name: str, spec: Any, origin: str) -> ColumnSpec:
        where = f"{origin}: {entity}.columns.{name}"
        if not str(name).isidentifier() or name != name.lower() or not str(name).isascii():
            raise MappingError(f"{where}: column names must be lower-case identifiers (letters, digits, _)")
        if len(name) > _MAX_IDENTIFIER:
            raise MappingError(f"{where}: column names are at most {_MAX_IDENTIFIER} characters")
        if name in SYSTEM_COLUMNS or name in CHILD_SYSTEM_COLUMNS:
            raise MappingError(f"{where}: {name!r} is a system column; choose another name")
        if name.startswith(CUSTOM_COLUMN_PREFIX):
            raise MappingError(
                f"{where}: the prefix {CUSTOM_COLUMN_PREFIX!r} is reserved for the automatic custom field "
                "columns; choose another name"
            )
        if isinstance(spec, str):
            spec = {"source": spec}
        if not isinstance(spec, Mapping):
            raise MappingError(f"{where}: expected an API field name or a dict with 'source'")
        unknown = set(spec) - _COLUMN_KEYS
        if unknown:
            raise MappingError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_COLUMN_KEYS)}")
        source = spec.get("source")
        if bool(source) == bool(spec.get("custom_field")):
            raise MappingError(f"{where}: give exactly one of 'source' (API field or list of them) or 'custom_field' (name)")
        sources: tuple[str, ...] = ()
        if source:
            items = source if isinstance(source, list) else [source]
            if not all(isinstance(s, str) and s.strip() for s in items):
                raise MappingError(f"{where}: 'source' must be an API field name or a list of them, got {source!r}")
            sources = tuple(s.strip() for s in items)
        if spec.get("custom_field") and entity != "contacts":
            raise MappingError(f"{where}: custom fields exist on contacts only")
        transform = spec.get("transform", "text")
        if transform not in TRANSFORMS:
            raise MappingError(f"{where}: unknown transform {transform!r}; choose one of {sorted(TRANSFORMS)}")
        on_error = str(spec.get("on_error", "null")).lower()
        if on_error == "none":  # YAML's unquoted null reads as None
            on_error = "null"
        if on_error not in _ON_ERROR:
            raise MappingError(f"{where}: on_error must be one of {list(_ON_ERROR)}, not {spec.get('on_error')!r}")
        return ColumnSpec(
            name=name,
            sources=sources,
            custom_field=str(spec["custom_field"]) if spec.get("custom_field") else None,
            transform=transform,
            required=bool(spec.get("required", False)),
            on_error=on_error,
        )

    # -- custom fields ---------------------------------------------------------------------
    @property
    def custom_field_names(self) -> list[str]:
        """Custom field names/keys the contact mapping refers to explicitly."""
        return [c.custom_field for c in self.tables["contacts"] if c.custom_field]

    @property
    def required_custom_fields(self) -> list[str]:
        """Explicit custom field references of ``required`` columns."""
        return [c.custom_field for c in self.tables["contacts"] if c.custom_field and c.required]

    def resolve_custom_fields(self, fields: list[Mapping[str, Any]]) -> list[str]:
        """Resolve every explicit ``custom_field`` reference (by name, or by ``fieldKey``) to its id.

        ``fields`` are the location's custom field definitions (``id``, ``name``, ``fieldKey``).
        Returns the references the location does not have (their columns will be NULL).

        :raises MappingError: when a reference of a ``required`` column is not found (listing the
            names that exist).
        """
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for name in self.custom_field_names:
            fid = resolve_reference(name, fields)
            if fid is None:
                missing.append(name)
            else:
                resolved[name] = fid
        self.custom_field_ids = resolved
        self._missing_refs = set(missing)
        self._check_required(missing, sorted({str(d.get("name")) for d in fields if d.get("name")}))
        return missing

    def _check_required(self, missing: Sequence[str], available: Sequence[str] | None) -> None:
        required = [name for name in missing if name in self.required_custom_fields]
        if required:
            listing = f"; available: {list(available)}" if available is not None else ""
            raise MappingError(
                f"custom field(s) {required} of required column(s) do not exist in this location{listing}"
            )

    def bind_custom_fields(self, plan: CustomFieldPlan, available: Sequence[str] | None = None) -> None:
        """Use a location's custom field columns (from :func:`.custom_fields.plan_custom_columns`):
        the automatic columns to fill, every automatic column of the table, and the explicit
        references' ids.

        :raises MappingError: when an explicit reference of a ``required`` column is missing.
        """
        self.custom_field_ids = dict(plan.refs)
        self._missing_refs = set(plan.missing)
        self._fill = list(plan.fill)
        self._auto_types = dict(plan.table_columns)
        self._check_required(plan.missing, available)

    @property
    def custom_columns(self) -> list[CustomColumn]:
        """The automatic custom field columns filled for the bound location."""
        return list(self._fill)

    # -- mapping ---------------------------------------------------------------------------
    def columns(self, entity: str) -> dict[str, str]:
        """Every column of ``entity``'s table (system columns first, then mapped, then the
        automatic custom field columns of every location in the target) -> logical type."""
        out = dict(SYSTEM_COLUMNS)
        if entity != "contacts":
            out.update(CHILD_SYSTEM_COLUMNS)
        out.update({c.name: c.sql_type for c in self.tables[entity]})
        if entity == "contacts":
            for column, kind in self._auto_types.items():
                out.setdefault(column, kind)
        return out

    def map_record(self, entity: str, record: Mapping[str, Any]) -> MappedRecord | Quarantined:
        """Map one API record of ``entity``; never raises for bad data.

        Returns a :class:`MappedRecord` (columns that could not be converted are NULL and listed in
        ``column_errors``) or :class:`Quarantined` (no id, no ``contactId``, a required column empty
        or unconvertible, or a failure on an ``on_error: quarantine`` column).
        """
        clean_record, raw_cleaned = clean_text(dict(record))
        raw = canonical_json(clean_record)
        rid = record.get("id")
        contact_id = record.get("contactId") if entity != "contacts" else None
        reasons: list[str] = []
        if not isinstance(rid, str) or not rid:
            reasons.append("field 'id' is missing: the record cannot be keyed")
        if entity != "contacts" and not (isinstance(contact_id, str) and contact_id):
            reasons.append("field 'contactId' is missing: the record cannot be tied to a contact")
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        cleaned: list[str] = ["raw_json"] if raw_cleaned else []
        for column in self.tables[entity]:
            value = self._source_value(column, clean_record)
            if raw_cleaned and self._source_value(column, record) != value:
                cleaned.append(column.name)
            try:
                converted = TRANSFORMS[column.transform](value, default_country=self.default_country)
            except TransformError as exc:
                if column.required or column.on_error == "quarantine":
                    reasons.append(f"column {column.name} ({column.label}): {exc}")
                    continue
                errors[column.name] = f"{column.label}: {exc}"
                converted = None
            if column.required and (converted is None or converted == []):
                reasons.append(f"column {column.name}: required field {column.label} is empty")
            values[column.name] = converted
        if entity == "contacts":
            for auto in self._fill:
                value = _custom_value(clean_record, auto.field_id)
                if raw_cleaned and _custom_value(record, auto.field_id) != value:
                    cleaned.append(auto.column)
                try:
                    values[auto.column] = TRANSFORMS[auto.transform](value, default_country=self.default_country)
                except TransformError as exc:
                    errors[auto.column] = f"custom field {auto.name!r}: {exc}"
                    values[auto.column] = None
        if reasons:
            return Quarantined(rid if isinstance(rid, str) and rid else None, contact_id, reasons, raw)
        return MappedRecord(
            rid, contact_id, values, raw, hashlib.sha256(raw.encode("utf-8")).hexdigest(), errors, tuple(cleaned)
        )

    def _source_value(self, column: ColumnSpec, record: Mapping[str, Any]) -> Any:
        if column.custom_field:
            if column.custom_field in self._missing_refs:
                return None
            fid = self.custom_field_ids.get(column.custom_field)
            if fid is None:
                raise MappingError(
                    f"custom field {column.custom_field!r} was not resolved; call resolve_custom_fields() first"
                )
            return _custom_value(record, fid)
        value = None
        for source in column.sources:
            value = _lookup(record, source)
            if not (value is None or (isinstance(value, str) and not value.strip())):
                return value
        return value

