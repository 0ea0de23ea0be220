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
``unchecked``
    default false. Every ``source`` must name a field the API sends for the entity (the spec's
    contact, task and note schemas plus the live search-only fields, :mod:`.known_fields`; a
    dotted path checks its first segment), or loading fails with a did-you-mean. ``unchecked:
    true`` accepts a field those lists do not name (so does ``options.extra_fields``).

The file is validated as a whole when it is loaded (:mod:`.mapping_model`, a pydantic model):
unknown keys, strings where booleans belong (``required: "false"``), unknown transforms and
unknown source fields are errors (:class:`MappingError`) naming the key and the fix.

``options.custom_fields``: ``auto`` (default) gives every custom field of the location a column
``cf_<snake_case name>`` typed from its ``dataType`` (see :mod:`.custom_fields`); ``none`` gives
none. The ``cf_`` prefix is reserved for those columns.
``options.extra_fields``: ``{contacts: [fieldA], tasks: [...], notes: [...]}``, API fields the
schemas do not list that ``source`` may name in that entity's columns.

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

from airflow_provider_contacts.sync.custom_fields import CustomColumn, resolve_reference
from airflow_provider_contacts.sync.mapping_model import MappingError, MappingModel, validate_mapping
from airflow_provider_contacts.sync.schema import CHILD_SYSTEM_COLUMNS, SYSTEM_COLUMNS, TABLES
from airflow_provider_contacts.sync.transforms import TRANSFORM_TYPES, TRANSFORMS, TransformError, clean_text

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
    unchecked: bool = False

    @property
    def source(self) -> str | None:
        """The first source field (``None`` for a custom field column)."""
        return self.sources[0] if self.sources else None

    @property
    def sql_type(self) -> str:
        """Logical column type (``text``, ``timestamp``, ``boolean``, ``number``, ``json``)."""
        return TRANSFORM_TYPES[self.transform]

    def spec_hash(self, default_country: str = "US") -> str:
        """SHA-256 (hex, 16 digits) of what decides the column's values: sources or custom field
        and transform (plus the default country for ``phone``). Stored per column in the sync
        state; a column whose hash changed is re-mapped from ``raw_json`` (see the engine)."""
        spec = {
            "sources": list(self.sources),
            "custom_field": self.custom_field,
            "transform": self.transform,
            "country": default_country if self.transform == "phone" else None,
        }
        return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()[:16]

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
    extra_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
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
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, origin: str = "mapping") -> FieldMapping:
        """Validate ``data`` through :class:`~.mapping_model.MappingModel` and build the mapping.

        :raises MappingError: naming every problem (key, what is wrong, the fix), e.g.
            ``contacts.columns.email.source: unknown field 'emial' for contacts; did you mean 'email'?``
        """
        return cls.from_model(validate_mapping(data, origin))

    @classmethod
    def from_model(cls, model: MappingModel) -> FieldMapping:
        """The mapping of a validated :class:`~.mapping_model.MappingModel`."""
        tables = {
            entity: [
                ColumnSpec(
                    name=name,
                    sources=tuple(column.source or ()),
                    custom_field=column.custom_field,
                    transform=column.transform,
                    required=column.required,
                    on_error=column.on_error,
                    unchecked=column.unchecked,
                )
                for name, column in model.table(entity).columns.items()
            ]
            for entity in TABLES
        }
        return cls(
            tables=tables,
            default_country=model.options.default_country,
            custom_fields=model.options.custom_fields,
            extra_fields={k: tuple(v) for k, v in model.options.extra_fields.items()},
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

    def column_specs(self, entity: str) -> dict[str, str]:
        """Mapped column of ``entity`` -> :meth:`ColumnSpec.spec_hash` (what the sync state keeps)."""
        return {c.name: c.spec_hash(self.default_country) for c in self.tables[entity]}

    def map_columns(
        self, entity: str, record: Mapping[str, Any], names: Sequence[str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Values of the mapped columns ``names`` for one record (e.g. a stored ``raw_json``), and
        column -> why a value could not be converted (stored NULL). Never quarantines: the record
        is stored already; a ``required`` column that is empty is NULL too."""
        clean_record, _ = clean_text(dict(record))
        wanted = set(names)
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for column in self.tables[entity]:
            if column.name not in wanted:
                continue
            try:
                values[column.name] = TRANSFORMS[column.transform](
                    self._source_value(column, clean_record), default_country=self.default_country
                )
            except TransformError as exc:
                errors[column.name] = f"{column.label}: {exc}"
                values[column.name] = None
        return values, errors

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

