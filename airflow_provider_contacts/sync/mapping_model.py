"""The mapping file as a pydantic model: every key, type and name checked when it is loaded.

:class:`MappingModel` validates the whole file (``options``, ``contacts``, ``tasks``, ``notes``);
:func:`validate_mapping` turns pydantic's errors into one :class:`~.mapping.MappingError` whose
lines each name the key (``contacts.columns.email.required``) and the fix. What is checked:

- only known keys, at every level (a misspelt key is an error with a did-you-mean, never ignored);
- booleans are YAML booleans: ``required: "false"`` (a string) is an error saying
  ``write `required: false` (no quotes)``, never truthy; so are ``unchecked``;
- ``transform``, ``on_error``, ``options.custom_fields`` from their fixed sets;
  ``options.default_country`` an ISO 3166 alpha-2 code the phone library knows (an unquoted
  ``NO`` reads as a YAML boolean: the error says to quote it);
- column names: lower-case identifiers, no system column, not the reserved ``cf_`` prefix;
- every ``source`` names a field the API sends for that entity (:mod:`.known_fields`: the
  spec's contact, task and note schemas plus the live search-only fields; a dotted path checks
  its first segment), with a did-you-mean: ``unknown field 'emial' for contacts; did you mean
  'email'?``. Escape hatches for fields the lists do not name: ``unchecked: true`` on the column,
  or the field under ``options.extra_fields.<entity>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from airflow_provider_contacts.sync.custom_fields import CUSTOM_COLUMN_PREFIX
from airflow_provider_contacts.sync.known_fields import KNOWN_FIELDS, did_you_mean
from airflow_provider_contacts.sync.schema import CHILD_SYSTEM_COLUMNS, SYSTEM_COLUMNS, TABLES
from airflow_provider_contacts.sync.transforms import TRANSFORMS, is_known_country

__all__ = ["ColumnModel", "MappingModel", "OptionsModel", "TableModel", "format_errors", "validate_mapping"]

ON_ERROR = ("null", "quarantine")
CUSTOM_FIELDS_MODES = ("auto", "none")
MAX_IDENTIFIER = 63  # PostgreSQL's limit
_TRUE_WORDS = {"true", "yes", "y", "on", "1"}
_FALSE_WORDS = {"false", "no", "n", "off", "0"}


def _strict_bool(value: Any, key: str) -> bool:
    """``value`` when it is a real boolean; otherwise a ValueError naming ``key`` and the fix."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        fix = f"`{key}: {'true' if word in _TRUE_WORDS else 'false'}`"
    else:
        fix = f"`{key}: true` or `{key}: false`"
    what = f"the string {value!r}" if isinstance(value, str) else f"{value!r}"
    raise ValueError(
        f"'{key}' must be a boolean (true or false), not {what}: write {fix} (no quotes)"
    )


def _text(value: Any, key: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, (bool, int, float)):
        raise ValueError(f"'{key}' must be text, not {value!r}: quote it, e.g. {key}: '{value}'")
    raise ValueError(f"'{key}' must be a non-empty text, not {value!r}")


class MappingError(ValueError):
    """The mapping itself is invalid (a configuration error, not a bad record)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ColumnModel(_Model):
    """One column of a table section (a plain string is shorthand for ``{source: <string>}``)."""

    source: tuple[str, ...] | None = None
    custom_field: str | None = None
    transform: str = "text"
    required: bool = False
    on_error: str = "null"
    unchecked: bool = False

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise ValueError(f"'source' must be an API field name or a list of them, got {value!r}")
        return tuple(s.strip() for s in items)

    @field_validator("custom_field", mode="before")
    @classmethod
    def _custom_field(cls, value: Any) -> Any:
        return None if value is None else _text(value, "custom_field")

    @field_validator("transform", mode="before")
    @classmethod
    def _transform(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in TRANSFORMS:
            hint = did_you_mean(value, TRANSFORMS) if isinstance(value, str) else None
            raise ValueError(
                f"unknown transform {value!r}; choose one of {sorted(TRANSFORMS)}"
                + (f"; did you mean {hint!r}?" if hint else "")
            )
        return value

    @field_validator("required", "unchecked", mode="before")
    @classmethod
    def _booleans(cls, value: Any, info: Any) -> Any:
        return _strict_bool(value, info.field_name)

    @field_validator("on_error", mode="before")
    @classmethod
    def _on_error(cls, value: Any) -> Any:
        if value is None:  # YAML's unquoted `null` reads as None
            return "null"
        if not isinstance(value, str) or value.strip().lower() not in ON_ERROR:
            raise ValueError(f"on_error must be one of {list(ON_ERROR)}, not {value!r}")
        return value.strip().lower()

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnModel:
        if (self.source is None) == (self.custom_field is None):
            raise ValueError("give exactly one of 'source' (API field or list of them) or 'custom_field' (name)")
        return self


class TableModel(_Model):
    """A table section: ``columns`` (column name -> :class:`ColumnModel` or a field name)."""

    columns: dict[str, ColumnModel] = {}

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError("'columns' must be a dict of column name -> spec")
        return {name: {"source": spec} if isinstance(spec, str) else spec for name, spec in value.items()}


class OptionsModel(_Model):
    """``options``: ``default_country``, ``custom_fields``, ``extra_fields``."""

    default_country: str = "US"
    custom_fields: str = "auto"
    extra_fields: dict[str, tuple[str, ...]] = {}

    @field_validator("default_country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(
                f"default_country must be a country code as text, not the boolean {value!r} (YAML reads an "
                "unquoted NO, for Norway, as false): quote it, e.g. default_country: 'NO'"
            )
        country = _text(value, "default_country").upper()
        if not is_known_country(country):
            raise ValueError(
                f"default_country {country!r} is not an ISO 3166 alpha-2 country code known to the phone "
                "library (e.g. US, GB, DE)"
            )
        return country

    @field_validator("custom_fields", mode="before")
    @classmethod
    def _custom_fields(cls, value: Any) -> Any:
        mode = "none" if value is None or value is False else str(value).strip().lower()
        if mode not in CUSTOM_FIELDS_MODES:
            raise ValueError(f"custom_fields must be one of {list(CUSTOM_FIELDS_MODES)}, not {value!r}")
        return mode

    @field_validator("extra_fields", mode="before")
    @classmethod
    def _extra_fields(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(
                "extra_fields must map an entity to a list of API field names, e.g. "
                "extra_fields: {contacts: [myField]}"
            )
        out: dict[str, tuple[str, ...]] = {}
        for entity, names in value.items():
            if entity not in TABLES:
                hint = did_you_mean(str(entity), TABLES)
                raise ValueError(
                    f"extra_fields: unknown entity {entity!r}; use {', '.join(TABLES)}"
                    + (f"; did you mean {hint!r}?" if hint else "")
                )
            items = names if isinstance(names, list) else [names]
            if not all(isinstance(n, str) and n.strip() for n in items):
                raise ValueError(f"extra_fields.{entity} must be a list of API field names, got {names!r}")
            out[entity] = tuple(n.strip() for n in items)
        return out


class MappingModel(_Model):
    """The whole mapping file. Build it with :func:`validate_mapping` (errors as MappingError text)."""

    options: OptionsModel = OptionsModel()
    contacts: TableModel = TableModel()
    tasks: TableModel = TableModel()
    notes: TableModel = TableModel()

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(f"the mapping must be a dict with keys options, {', '.join(TABLES)}; got {type(data).__name__}")
        return {k: ({} if v is None else v) for k, v in data.items()}

    @model_validator(mode="after")
    def _names_and_fields(self) -> MappingModel:
        """Column names, custom fields on contacts only, and every source a known field."""
        problems: list[str] = []
        for entity in TABLES:
            known = KNOWN_FIELDS[entity] | set(self.options.extra_fields.get(entity, ()))
            for name, column in self.table(entity).columns.items():
                where = f"{entity}.columns.{name}"
                problem = _column_name_problem(name)
                if problem:
                    problems.append(f"{where}: {problem}")
                if column.custom_field is not None and entity != "contacts":
                    problems.append(f"{where}: custom fields exist on contacts only")
                if column.unchecked or not column.source:
                    continue
                for source in column.source:
                    first = source.split(".", 1)[0]
                    if first in known:
                        continue
                    hint = did_you_mean(first, known)
                    inside = f" (in {source!r})" if first != source else ""
                    problems.append(
                        f"{where}.source: unknown field {first!r}{inside} for {entity}"
                        + (f"; did you mean {hint!r}?" if hint else "")
                        + f" (a field HighLevel's {entity} schemas do not list: add `unchecked: true` to the column, "
                        f"or list it under options.extra_fields.{entity})"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def table(self, entity: str) -> TableModel:
        """The section of ``entity`` (``contacts``, ``tasks``, ``notes``)."""
        return getattr(self, entity)


def _column_name_problem(name: Any) -> str | None:
    text = str(name)
    if not isinstance(name, str) or not text.isidentifier() or text != text.lower() or not text.isascii():
        return "column names must be lower-case identifiers (letters, digits, _)"
    if len(text) > MAX_IDENTIFIER:
        return f"column names are at most {MAX_IDENTIFIER} characters"
    if text in SYSTEM_COLUMNS or text in CHILD_SYSTEM_COLUMNS:
        return f"{text!r} is a system column; choose another name"
    if text.startswith(CUSTOM_COLUMN_PREFIX):
        return (
            f"the prefix {CUSTOM_COLUMN_PREFIX!r} is reserved for the automatic custom field columns; "
            "choose another name"
        )
    return None


_ALLOWED: dict[str, tuple[str, list[str]]] = {
    "": ("top-level keys", ["options", *TABLES]),
    "options": ("options", sorted(OptionsModel.model_fields)),
    **{entity: ("keys", sorted(TableModel.model_fields)) for entity in TABLES},
}


def _allowed(parent: tuple[Any, ...]) -> tuple[str, list[str]]:
    key = ".".join(str(p) for p in parent)
    if key in _ALLOWED:
        return _ALLOWED[key]
    return "keys", sorted(ColumnModel.model_fields)


def format_errors(exc: ValidationError) -> list[str]:
    """One line per problem, each starting with the dotted key it is about."""
    lines: list[str] = []
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        where = ".".join(str(p) for p in loc)
        if kind == "value_error":
            message = str(error["ctx"]["error"])
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            if len(loc) == 3 and loc[1] == "columns":
                message = f"expected an API field name or a dict with 'source', got {error['input']!r}"
            else:
                message = f"expected a dict, got {error['input']!r}"
        elif kind in ("string_type", "str_type"):
            message = f"expected text, got {error['input']!r}"
        else:
            message = str(error["msg"])
        for line in message.splitlines():
            lines.append(f"{where}: {line}" if where else line)
    for parent, keys in unknown.items():
        label, allowed = _allowed(parent)
        where = ".".join(str(p) for p in parent)
        hints = {k: h for k in sorted(keys) if (h := did_you_mean(k, allowed))}
        line = f"unknown {label} {sorted(keys)}; allowed: {', '.join(allowed)}"
        if len(keys) == 1 and hints:
            line += f"; did you mean {next(iter(hints.values()))!r}?"
        elif hints:
            line += "; did you mean " + ", ".join(f"{h!r} for {k!r}" for k, h in hints.items()) + "?"
        lines.append(f"{where}: {line}" if where else line)
    return lines


def validate_mapping(data: Any, origin: str = "mapping") -> MappingModel:
    """Validate ``data`` (the parsed mapping file) into a :class:`MappingModel`.

    :raises MappingError: naming every problem found, one
        per line, each with its key and the fix.
    """
    try:
        return MappingModel.model_validate(data)
    except ValidationError as exc:
        lines = format_errors(exc)
    if len(lines) == 1:
        raise MappingError(f"{origin}: {lines[0]}")
    raise MappingError(f"{origin}: {len(lines)} problems:\n" + "\n".join(f"  - {line}" for line in lines))
