"""Checks of operator, sensor and trigger parameters, run before any request.

The one place where a rendered parameter is turned into what the hook is given - or refused with
an error that names the parameter and the fix:

* ids (:func:`check_id`, :func:`check_id_list`): non-empty strings without ``/``, ``?``, ``#`` or
  spaces, because they are interpolated into URL paths;
* lists and dicts as templates render them (:func:`coerce_list`, :func:`coerce_mapping`): a
  list/dict, a JSON or Python literal, or a comma-separated string;
* request bodies and search filters (:func:`validate_request`, :func:`validate_filters`),
  validated with the hook's pydantic request models so that the error names the field;
* the rendered ``location_id`` override (:func:`clean_location_id`);
* durations (:func:`duration_seconds`, :func:`positive_seconds`) and date-times
  (:func:`to_utc`, :func:`iso`).

A bad parameter raises :class:`GHLInputError` (it fails the task at once: no retry can fix an
input), except where the check runs at DAG parse time and says so (``ValueError``).
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts.dates import format_datetime, parse_datetime
from airflow_provider_contacts.errors import GHLValidationError

if TYPE_CHECKING:
    from airflow_provider_contacts.models import RequestModel

M = TypeVar("M", bound="RequestModel")


class GHLInputError(GHLValidationError, AirflowFailException):
    """An operator or sensor parameter is invalid; raised before any request is sent.

    It is a :class:`~airflow_provider_contacts.errors.GHLValidationError` (``status`` is ``None``)
    and an ``AirflowFailException``, so the task fails at once instead of retrying an input that
    cannot succeed.
    """


def input_error(owner: str, param: str, problem: str, operation: str | None = None) -> GHLInputError:
    """Build the error for a bad parameter: ``"<owner>: parameter '<param>': <problem>"``."""
    return GHLInputError(f"{owner}: parameter '{param}': {problem}", operation=operation)


def is_unset(value: Any) -> bool:
    """Whether a rendered optional parameter is unset: ``None``, or a string that is blank or
    ``"None"`` (what Jinja renders ``None`` into)."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


# -- ids -----------------------------------------------------------------------------------------
def check_id(owner: str, param: str, value: Any, operation: str | None = None) -> str:
    """Return ``value`` as a clean id, or raise :class:`GHLInputError` naming ``param``.

    Ids are interpolated into URL paths, so they must be non-empty strings without ``/``, ``?`` or
    ``#``; surrounding whitespace (a common templating artefact) is stripped.
    """
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise input_error(
            owner,
            param,
            f"needs a HighLevel id (a non-empty string), got {value!r}; pass the id, e.g. "
            "\"{{ ti.xcom_pull(task_ids='create_contact')['id'] }}\"",
            operation,
        )
    text = value.strip()
    if any(ch in text for ch in "/?#") or any(ch.isspace() for ch in text):
        raise input_error(owner, param, f"{text!r} is not an id (it contains '/', '?', '#' or spaces)", operation)
    return text


def check_id_list(owner: str, param: str, values: Any, operation: str | None = None) -> list[str]:
    """Return ``values`` (a list, or a JSON list / comma-separated string) as a list of clean ids."""
    items = coerce_list(owner, param, values, operation)
    if not items:
        raise input_error(owner, param, "needs at least one id", operation)
    return [check_id(owner, f"{param}[{i}]", v, operation) for i, v in enumerate(items)]


def clean_location_id(location_id: Any, owner: str | None = None) -> str | None:
    """The rendered ``location_id`` override, stripped; ``None`` when it is unset (``None``, ``""``,
    ``"None"``): the connection's ``location_id`` extra is used then.

    Checked here, before any request, with the rule of the path builder
    (:func:`~airflow_provider_contacts.hooks.paths.is_highlevel_id`): a location id is sent in
    paths and bodies, so ``"../etc"`` would otherwise fail differently in every operation. An
    integer is taken as the id it spells.

    :param owner: the operator or sensor, named in the error.
    :raises GHLInputError: not a HighLevel id, naming the parameter ``location_id`` and the fix.
    """
    from airflow_provider_contacts.hooks.paths import is_highlevel_id, not_an_id

    if is_unset(location_id):
        return None
    value = location_id.strip() if isinstance(location_id, str) else location_id
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if is_highlevel_id(value):
        return value
    prefix = f"{owner}: " if owner else ""
    raise GHLInputError(
        f"{prefix}parameter 'location_id': {not_an_id(value)}; pass the location's id, or leave it unset "
        "to use the connection's 'location_id' extra"
    )


# -- lists, dicts, bodies --------------------------------------------------------------------------
def coerce_list(owner: str, param: str, values: Any, operation: str | None = None) -> list[Any]:
    """A list from a list/tuple/set, a JSON or Python list literal, or a comma-separated string."""
    if values is None:
        return []
    if isinstance(values, str):
        text = values.strip()
        if text.startswith("["):
            parsed = _parse_literal(text)
            if not isinstance(parsed, list):
                raise input_error(owner, param, f"{text!r} is not a JSON list", operation)
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(values, (list, tuple, set, frozenset)):
        return list(values)
    raise input_error(owner, param, f"needs a list, got {type(values).__name__}", operation)


def _parse_literal(text: str) -> Any:
    """Parse a JSON text, or a Python literal (what non-native Jinja renders a dict/list into)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return _UNPARSEABLE


_UNPARSEABLE = object()


def coerce_mapping(owner: str, param: str, value: Any, operation: str | None = None) -> dict[str, Any]:
    """A dict from a mapping, a pydantic model, or a JSON object string (rendered templates)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True, by_alias=True)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        parsed = _parse_literal(value.strip())
        if isinstance(parsed, dict):
            return parsed
        raise input_error(
            owner,
            param,
            f"must be a JSON object (a dict), got the string {value[:80]!r}; pass a dict or a JSON "
            "object, or set render_template_as_native_obj=True on the DAG for templated dicts",
            operation,
        )
    if value is None:
        return {}
    raise input_error(owner, param, f"must be a dict, got {type(value).__name__}", operation)


def validate_request(
    owner: str, param: str, model: type[M], value: Any, operation: str | None = None
) -> M:
    """Validate ``value`` against the hook's request model; errors name ``param`` and each field."""
    from airflow_provider_contacts.models import validate_body

    data = value if isinstance(value, model) else coerce_mapping(owner, param, value, operation)
    try:
        return validate_body(model, data, operation or owner)
    except GHLValidationError as exc:
        raise input_error(owner, param, exc.message, operation) from None


def validate_filters(owner: str, param: str, filters: Any, operation: str | None = None) -> list[dict[str, Any]]:
    """Advanced-search filters (list, or JSON list) validated one by one with the hook's models.

    Each item is a filter ``{"field", "operator", "value"}`` or a group ``{"group", "filters"}``;
    returns the JSON payloads. Errors name ``param``, the item index and the field.
    """
    from airflow_provider_contacts.models import SearchFilter, SearchFilterGroup

    out = []
    for i, item in enumerate(coerce_list(owner, param, filters, operation)):
        model = SearchFilterGroup if isinstance(item, Mapping) and "group" in item else SearchFilter
        out.append(validate_request(owner, f"{param}[{i}]", model, item, operation).payload())
    return out


# -- durations -------------------------------------------------------------------------------------
def duration_seconds(owner: str, param: str, value: timedelta | float | int | str) -> float:
    """A duration parameter (timedelta or a number of seconds) in seconds; else :class:`GHLInputError`."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise input_error(owner, param, f"must be a timedelta or a number of seconds, got {value!r}") from None


def positive_seconds(owner: str, param: str, value: Any) -> float:
    """A polling interval as a positive, finite number of seconds, else a ``ValueError`` naming
    ``param`` (raised at DAG parse time, where sensors and triggers are built).

    A zero or negative interval would poll in a tight loop (and spend the API's rate limit).
    """
    try:
        seconds = float(value.total_seconds() if hasattr(value, "total_seconds") else value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"{owner}: parameter '{param}' must be a positive number of seconds (or a timedelta), got {value!r}; "
            f"pass e.g. {param}=60 (HighLevel allows about 100 requests per 10 s per location)"
        )
    return seconds


# -- date-times ------------------------------------------------------------------------------------
def to_utc(value: Any, name: str = "since") -> datetime:
    """An aware UTC datetime from a datetime, an ISO 8601 string or epoch milliseconds.

    :raises ValueError: naming ``name`` when the value is missing or not a date-time.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        raise ValueError(
            f"'{name}' is empty; pass a date-time (e.g. '2024-05-01T00:00:00Z' or "
            "'{{ data_interval_start }}'; manual runs have no data interval, use '{{ dag_run.start_date }}')"
        )
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:
        raise ValueError(f"'{name}': {exc}") from None
    if not isinstance(parsed, datetime):
        raise ValueError(f"'{name}': {value!r} is not a date-time")
    return parsed.astimezone(timezone.utc)


def iso(value: Any, name: str = "since") -> str:
    """``value`` as HighLevel's ISO 8601 UTC string (``2024-05-01T00:00:00.000Z``)."""
    return format_datetime(to_utc(value, name))


__all__ = [
    "GHLInputError",
    "check_id",
    "check_id_list",
    "clean_location_id",
    "coerce_list",
    "coerce_mapping",
    "duration_seconds",
    "input_error",
    "is_unset",
    "iso",
    "positive_seconds",
    "to_utc",
    "validate_filters",
    "validate_request",
]
