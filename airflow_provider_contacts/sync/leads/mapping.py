"""The leads mapping: columns of a lead table -> HighLevel contact fields (the reconcile's mapping
format, read in reverse), plus the lead-specific ``leads:`` section.

The file has the reconcile mapping's ``options`` and ``contacts`` sections, validated by the same
:class:`~.mapping_model.MappingModel` (unknown keys, booleans, transforms, field names with a
did-you-mean), and read the other way round: the column name is the *lead table's* column, its
``source`` the HighLevel contact field the value is written to (exactly one, a field of
``CreateContactDto``), or ``custom_field`` a custom field of the location (by name or
``fieldKey``). ``transform`` normalises the lead's value before it is compared and written:

==========  =======================================================================================
``text``    trimmed; empty -> no value
``email``   trimmed, lower-cased, ``local@domain.tld`` (else the lead is reported, not written)
``phone``   E.164 through ``phonenumbers`` (``(415) 555-0134`` -> ``+14155550134``, national numbers
            of ``options.default_country``); a number that does not parse is reported with the fix
``number``, ``boolean``, ``date``, ``tags``  as in the reconcile
==========  =======================================================================================

The ``leads:`` section (:class:`LeadsSection`): ``table``, ``key``, ``updated_at``, ``note``,
``lifecycle`` (``column``, ``tag_prefix``, ``tags``, ``custom_field``) and ``two_way`` (lead column
-> conflict rule ``newest`` | ``highlevel`` | ``source``). docs/leads.md documents it.

A mapped value is a dict keyed by HighLevel field (``email``, ``firstName`` ...), ``tags`` (the
managed tags: a ``tags`` column plus the lifecycle stage's tags) and ``cf:<reference>`` per custom
field: what :mod:`.flow` compares with the last values written (kept in the link table).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from airflow_provider_contacts.sync.mapping import ColumnSpec, FieldMapping
from airflow_provider_contacts.sync.mapping_model import MappingError, format_errors
from airflow_provider_contacts.sync.transforms import TRANSFORMS, TransformError, to_e164

__all__ = [
    "CONFLICT_RULES",
    "DEFAULT_LEADS_MAPPING_FILE",
    "LeadError",
    "LeadMapping",
    "LeadsSection",
    "MappedLead",
]

DEFAULT_LEADS_MAPPING_FILE = Path(__file__).with_name("leads_mapping.yaml")
CONFLICT_RULES = ("newest", "highlevel", "source")
#: Transforms that make sense for a value written to HighLevel.
WRITABLE_TRANSFORMS = ("text", "email", "phone", "number", "boolean", "date", "tags")
#: HighLevel fields a lead column may be written to (``CreateContactDto``'s plain fields).
WRITABLE_FIELDS = (
    "firstName", "lastName", "name", "email", "phone", "companyName", "address1", "city", "state",
    "postalCode", "country", "website", "timezone", "dnd", "tags", "source", "dateOfBirth", "assignedTo", "gender",
)
#: Fields ``PUT /contacts/{id}`` accepts (contacts.json ``UpdateContactDto``; no companyName, gender).
UPDATABLE_FIELDS = frozenset(WRITABLE_FIELDS) - {"companyName", "gender"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FIXES = {
    "email": "write it as local@domain.tld (e.g. jane@example.com), or leave it empty",
    "phone": "write it with its country code (e.g. +14155550134), or as a national number of options.default_country",
    "number": "write a plain number (dot for decimals)",
    "boolean": "write true/false/yes/no/1/0",
    "date": "write a date such as 2024-05-01",
    "tags": "write a comma-separated list or a JSON list of texts",
    "text": "write plain text",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LifecycleSection(_Model):
    """``leads.lifecycle``: the lead's stage column -> managed tags and/or a custom field."""

    column: str | None = "lifecycle_stage"
    tag_prefix: str = "stage:"
    tags: dict[str, list[str]] = {}
    custom_field: str | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("tags must map a stage value to a list of tags, e.g. {customer: [customer, vip]}")
        out: dict[str, list[str]] = {}
        for stage, tags in value.items():
            items = [tags] if isinstance(tags, str) else tags
            if not isinstance(items, list) or not all(isinstance(t, str) and t.strip() for t in items):
                raise ValueError(f"tags.{stage}: give a list of tag texts, not {tags!r}")
            out[str(stage).strip().lower()] = [t.strip().lower() for t in items]
        return out

    @field_validator("tag_prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        return "" if value is None else value


class LeadsSection(_Model):
    """The ``leads:`` section (see the module docstring and docs/leads.md)."""

    table: str = "crm_leads"
    key: str = "id"
    updated_at: str | None = "updated_at"
    note: str | None = "notes"
    lifecycle: LifecycleSection = LifecycleSection()
    two_way: dict[str, str] = {}

    @field_validator("table", "key", mode="before")
    @classmethod
    def _identifier(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str) or not _IDENT.match(value.split(".")[-1]):
            raise ValueError(f"{info.field_name} must be a SQL identifier (letters, digits, _), not {value!r}")
        return value

    @field_validator("lifecycle", mode="before")
    @classmethod
    def _lifecycle(cls, value: Any) -> Any:
        return {"column": None} if value is None else value

    @field_validator("two_way", mode="before")
    @classmethod
    def _two_way(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("two_way must map a lead column to a conflict rule, e.g. {phone: newest}")
        out = {}
        for column, rule in value.items():
            text = str(rule).strip().lower() if rule is not None else ""
            if text not in CONFLICT_RULES:
                raise ValueError(f"two_way.{column}: conflict rule {rule!r} unknown; use one of {list(CONFLICT_RULES)}")
            out[str(column)] = text
        return out


@dataclass(frozen=True)
class LeadError:
    """Why one lead cannot be written: the lead, the column, its value, the problem and the fix."""

    lead_id: str
    column: str
    value: Any
    problem: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the value as text, at most 200 characters)."""
        value = None if self.value is None else str(self.value)[:200]
        return {"lead_id": self.lead_id, "column": self.column, "value": value, "problem": self.problem, "fix": self.fix}

    def __str__(self) -> str:
        return f"lead {self.lead_id}: column {self.column} ({self.value!r}): {self.problem}; fix: {self.fix}"


@dataclass
class MappedLead:
    """One lead row, mapped: its key, change time, HighLevel values, note text, stage and raw row."""

    lead_id: str
    key_value: Any
    updated_at: Any
    values: dict[str, Any]
    note: str | None
    stage: str | None
    row: dict[str, Any]
    errors: list[LeadError] = field(default_factory=list)

    @property
    def email(self) -> str | None:
        """The normalised email (lower-case), if any."""
        return self.values.get("email")

    @property
    def phone(self) -> str | None:
        """The normalised phone (E.164), if any."""
        return self.values.get("phone")


def _text_value(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class LeadMapping:
    """A validated leads mapping (build it with :meth:`load` or :meth:`from_dict`)."""

    def __init__(self, fields: FieldMapping, section: LeadsSection, origin: str = "leads mapping") -> None:
        self.fields = fields
        self.section = section
        self.origin = origin
        self.columns: list[ColumnSpec] = list(fields.tables["contacts"])
        self.default_country = fields.default_country
        problems: list[str] = []
        for column in self.columns:
            where = f"contacts.columns.{column.name}"
            if column.transform not in WRITABLE_TRANSFORMS:
                problems.append(f"{where}.transform: {column.transform!r} cannot be written to HighLevel; use one of {list(WRITABLE_TRANSFORMS)}")
            if column.sources and (len(column.sources) != 1 or column.sources[0] not in WRITABLE_FIELDS):
                problems.append(
                    f"{where}.source: a lead column is written to exactly one HighLevel contact field of "
                    f"{list(WRITABLE_FIELDS)}, not {list(column.sources)}"
                )
            if column.name in {section.key, section.updated_at, section.note, section.lifecycle.column}:
                problems.append(f"{where}: the column is used by the leads section already; map it once")
        by_column = {c.name: c for c in self.columns}
        for column, _rule in section.two_way.items():
            spec = by_column.get(column)
            if spec is None or not spec.sources or spec.sources[0] == "tags":
                problems.append(
                    f"leads.two_way.{column}: only mapped columns written to a plain contact field can sync both ways "
                    f"(mapped: {sorted(c.name for c in self.columns if c.sources and c.sources[0] != 'tags')})"
                )
            elif spec.sources[0] not in UPDATABLE_FIELDS:
                problems.append(
                    f"leads.two_way.{column}: HighLevel's update-contact cannot change {spec.sources[0]!r} (UpdateContactDto "
                    "lacks it), so a change in the lead table could never reach HighLevel; remove the column from two_way"
                )
        if problems:
            raise MappingError(f"{origin}: " + "; ".join(problems))

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> LeadMapping:
        """Read a leads mapping YAML file (``None``: the packaged :data:`DEFAULT_LEADS_MAPPING_FILE`)."""
        path = Path(path or DEFAULT_LEADS_MAPPING_FILE)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise MappingError(f"leads mapping {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, origin: str = "leads mapping") -> LeadMapping:
        """Validate ``data``: ``options`` and ``contacts`` as in the reconcile mapping (reversed),
        ``leads`` by :class:`LeadsSection`.

        :raises MappingError: naming the key, the problem and the fix.
        """
        data = dict(data or {})
        unknown = sorted(set(data) - {"options", "contacts", "leads"})
        if unknown:
            raise MappingError(f"{origin}: unknown top-level keys {unknown}; allowed: options, contacts, leads")
        leads = data.pop("leads", None) or {}
        try:
            section = LeadsSection.model_validate(leads)
        except ValidationError as exc:
            lines = [f"leads.{line}" for line in format_errors(exc)]
            raise MappingError(f"{origin}: " + "; ".join(lines)) from None
        fields = FieldMapping.from_dict({"options": data.get("options"), "contacts": data.get("contacts")}, origin)
        return cls(fields, section, origin)

    # -- what the mapping names ------------------------------------------------------------------
    @property
    def lead_columns(self) -> list[str]:
        """Every lead table column the flow reads (key first)."""
        s = self.section
        names = [s.key, *(c.name for c in self.columns)]
        names += [n for n in (s.updated_at, s.note, s.lifecycle.column) if n]
        return list(dict.fromkeys(names))

    @property
    def custom_field_refs(self) -> list[str]:
        """Custom field references (names or fieldKeys) written by the flow."""
        refs = [c.custom_field for c in self.columns if c.custom_field]
        if self.section.lifecycle.column and self.section.lifecycle.custom_field:
            refs.append(self.section.lifecycle.custom_field)
        return list(dict.fromkeys(refs))

    def field_of(self, column: str) -> str:
        """The value key (HighLevel field or ``cf:<ref>``) a lead column is written to."""
        for spec in self.columns:
            if spec.name == column:
                return spec.sources[0] if spec.sources else f"cf:{spec.custom_field}"
        raise KeyError(column)

    def column_spec(self, column: str) -> ColumnSpec:
        """The mapped column ``column``."""
        return next(c for c in self.columns if c.name == column)

    # -- mapping one lead ------------------------------------------------------------------------
    def normalise(self, spec: ColumnSpec, value: Any) -> Any:
        """``value`` of column ``spec`` as it is compared and written (``None``: no value).

        :raises TransformError: the value cannot be written (the message says why).
        """
        if spec.transform == "phone":
            text = _text_value(value)
            if text is None:
                return None
            if isinstance(value, float) and value.is_integer():
                text = str(int(value))
            return to_e164(text, self.default_country)
        if spec.transform == "text":
            return _text_value(value)
        if spec.transform == "tags":
            if isinstance(value, str) and value.strip().startswith("["):
                import json

                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            tags = TRANSFORMS["tags"](value)
            return sorted({t.lower() for t in tags}) if tags else None
        if isinstance(value, str) and not value.strip():
            return None
        converted = TRANSFORMS[spec.transform](value, default_country=self.default_country)
        return converted

    def stage_tags(self, stage: str | None) -> list[str]:
        """The managed tags of a lifecycle stage (none for an empty stage)."""
        if not stage:
            return []
        life = self.section.lifecycle
        key = stage.strip().lower()
        if key in life.tags:
            return sorted(set(life.tags[key]))
        return [f"{life.tag_prefix}{key}".strip().lower()]

    def map_lead(self, row: Mapping[str, Any]) -> MappedLead:
        """Map one lead row (column -> value); problems are collected in ``errors``, never raised."""
        s = self.section
        key_value = row.get(s.key)
        lead_id = "" if key_value is None else str(key_value).strip()
        values: dict[str, Any] = {}
        errors: list[LeadError] = []
        if not lead_id:
            errors.append(LeadError("(no id)", s.key, key_value, f"the key column {s.key!r} is empty", "give every lead an id"))
        managed_tags: set[str] = set()
        tags_mapped = False
        for spec in self.columns:
            raw = row.get(spec.name)
            try:
                value = self.normalise(spec, raw)
            except TransformError as exc:
                errors.append(LeadError(lead_id or "(no id)", spec.name, raw, str(exc), _FIXES.get(spec.transform, "fix the value")))
                continue
            target = spec.sources[0] if spec.sources else f"cf:{spec.custom_field}"
            if target == "tags":
                tags_mapped = True
                managed_tags.update(value or [])
                continue
            if value is None and spec.required:
                errors.append(LeadError(lead_id or "(no id)", spec.name, raw, "the column is required but empty", "fill it in"))
            if value is not None:
                values[target] = value
        stage = _text_value(row.get(s.lifecycle.column)) if s.lifecycle.column else None
        if s.lifecycle.column:
            managed_tags.update(self.stage_tags(stage))
            tags_mapped = True
            if s.lifecycle.custom_field and stage:
                values[f"cf:{s.lifecycle.custom_field}"] = stage
        if tags_mapped:
            values["tags"] = sorted(managed_tags)
        if not values.get("email") and not values.get("phone") and not any(e.column in ("email", "phone") for e in errors):
            email_col = next((c.name for c in self.columns if c.sources == ("email",)), "email")
            errors.append(
                LeadError(
                    lead_id or "(no id)", email_col, None,
                    "the lead has neither an email nor a phone, so it cannot be matched to a contact without risking a duplicate",
                    "fill in the email or the phone",
                )
            )
        note = _text_value(row.get(s.note)) if s.note else None
        return MappedLead(lead_id, key_value, row.get(s.updated_at) if s.updated_at else None, values, note, stage, dict(row), errors)
