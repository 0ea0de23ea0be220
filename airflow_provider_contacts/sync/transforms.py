"""Value transforms used by the declarative field mapping, and the text cleaning every target needs.

Each transform takes the raw API value and returns the column value, or raises
:class:`TransformError` with a message that names the value and the problem. ``None`` and empty
strings always map to ``None`` (SQL ``NULL``): a missing value is not an error here; required
fields are checked by the mapping itself. What a failure costs is the mapping's decision
(:mod:`.mapping`): by default the column is stored as NULL and the failure is counted per column
in the run report; only required columns (or ``on_error: quarantine``) set the record aside.

Transforms:

``text``       the value as a string (numbers and booleans as their JSON spelling), trimmed.
``email``      trimmed and lower-cased; must look like ``local@domain.tld``.
``phone``      E.164 (``+<country code><number>``) where the value parses as a possible number
               (Google's ``phonenumbers``; national numbers take the mapping's
               ``default_country``), otherwise the original string, trimmed. Never fails on a
               string: HighLevel stores phones as given (``ghl-live-notes.md``).
``timestamp``  an aware ``datetime`` in UTC, parsed by :func:`airflow_provider_contacts.dates.
               parse_datetime` (ISO 8601, epoch milliseconds as number or digit string,
               negative ones too, and the ``dateOfBirth`` forms of the spec).
``date``       a calendar date as ``YYYY-MM-DD`` text, by :func:`airflow_provider_contacts.dates.
               parse_date` (epoch milliseconds give their UTC date: ``74736000000`` ->
               ``1972-05-15``, ``-89596800000`` -> ``1967-03-01``).
``boolean``    ``true``/``false`` (also ``"true"``, ``"false"``, ``1``, ``0``, ``"yes"``, ``"no"``).
``number``     an int or float (numeric strings accepted, thousands separators not); integers
               beyond 64 bits become floats, values beyond the float range are refused.
``tags``       a list of trimmed, non-empty, de-duplicated strings, in the API's order.
``json``       the value unchanged (stored as JSON).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import phonenumbers

from airflow_provider_contacts.dates import DateParseError, parse_date, parse_datetime

__all__ = [
    "TRANSFORMS",
    "TRANSFORM_TYPES",
    "TransformError",
    "clean_text",
    "is_known_country",
    "to_e164",
]


class TransformError(ValueError):
    """A value that a transform cannot convert; the message names the value and the problem."""


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INT64 = 2**63 - 1
#: Lone UTF-16 surrogates: JSON can carry them (``"\\ud800"``) but no UTF-8 target can store them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- cleaning ---------------------------------------------------------------------------------


def _clean_str(text: str) -> tuple[str, bool]:
    changed = False
    if "\x00" in text:
        text, changed = text.replace("\x00", ""), True
    if _SURROGATE.search(text):
        text, changed = _SURROGATE.sub("\ufffd", text), True
    return text, changed


def clean_text(value: Any) -> tuple[Any, bool]:
    """``value`` with every string in it (dict keys and values, list items, recursively) made
    storable in any SQL target: NUL characters (``\\u0000``, which PostgreSQL ``text`` and
    ``jsonb`` refuse) removed, lone UTF-16 surrogates (no UTF-8 encoding) replaced by U+FFFD.

    Returns ``(cleaned value, whether anything changed)``; an unchanged value is returned as is.
    """
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key, key_changed = _clean_str(key) if isinstance(key, str) else (key, False)
            new_item, item_changed = clean_text(item)
            changed = changed or key_changed or item_changed
            out[new_key] = new_item
        return (out, True) if changed else (value, False)
    if isinstance(value, (list, tuple)):
        items = [clean_text(item) for item in value]
        if any(changed for _, changed in items):
            return [item for item, _ in items], True
        return value, False
    return value, False


# -- phones -----------------------------------------------------------------------------------


def is_known_country(code: str) -> bool:
    """Whether ``code`` is an ISO 3166 alpha-2 region that ``phonenumbers`` knows (``US``, ``DE``)."""
    return str(code).upper() in phonenumbers.SUPPORTED_REGIONS


def to_e164(raw: str, default_country: str = "US") -> str:
    """E.164 form of a phone number, or :class:`TransformError` when it has none.

    ``raw`` is parsed with ``phonenumbers.parse(raw, default_country)``: ``+<cc> ...``, ``00<cc>
    ...`` (also where the country's own international prefix differs), a ``(0)`` trunk marker,
    ``tel:`` URIs, punctuation and vanity letters are understood; national numbers take
    ``default_country``. A number is accepted when it is a *possible* full number (its length
    fits its country's numbering plan: ``is_possible_number``), not only when it is assigned in
    the plan (``is_valid_number``), so stored values such as ``+12010710892`` (an exchange that
    starts with 0) stay as they are. Refused: what does not parse, local-only numbers without an
    area code (``555-0134``), wrong lengths, and numbers with an extension (E.164 cannot hold it).
    """
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, default_country.upper())
        if not _possible(number) and re.match(r"^\s*00\d", text):
            number = phonenumbers.parse("+" + text.lstrip()[2:], default_country.upper())
    except phonenumbers.NumberParseException as exc:
        raise TransformError(f"phone {raw!r} does not parse as a phone number: {exc}") from None
    if number.extension:
        raise TransformError(f"phone {raw!r} has an extension, which E.164 cannot hold")
    if not _possible(number):
        raise TransformError(f"phone {raw!r} is not a possible number of its country (wrong length or local-only)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _possible(number: phonenumbers.PhoneNumber) -> bool:
    reason = phonenumbers.is_possible_number_with_reason(number)
    return reason == phonenumbers.ValidationResult.IS_POSSIBLE


# -- transforms -------------------------------------------------------------------------------


def _text(value: Any, **_: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        raise TransformError(f"value {value!r} is structured; map it with transform: json")
    return json.dumps(value)


def _email(value: Any, **_: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise TransformError(f"email {value!r} is not a string")
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise TransformError(f"email {value!r} is not of the form local@domain.tld")
    return email


def _phone(value: Any, default_country: str = "US", **_: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TransformError(f"phone {value!r} is neither a string nor a number")
    text = str(value).strip()
    try:
        return to_e164(text, default_country)
    except TransformError:
        return text  # stored as given: never drop a phone HighLevel holds


def _timestamp(value: Any, **_: Any) -> Any:
    try:
        return parse_datetime(value)
    except DateParseError as exc:
        raise TransformError(f"timestamp: {exc}") from None


def _date(value: Any, **_: Any) -> str | None:
    try:
        day = parse_date(value)
    except DateParseError as exc:
        raise TransformError(f"date: {exc}") from None
    return day.isoformat() if day is not None else None


_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _boolean(value: Any, **_: Any) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformError(f"boolean {value!r} is not one of true/false/yes/no/1/0")


def _storable_number(number: int | float, raw: Any) -> int | float:
    if isinstance(number, int):
        if -_INT64 <= number <= _INT64:
            return number
        try:
            number = float(number)  # beyond 64 bits: no target's integer holds it, a double does
        except OverflowError:
            raise TransformError(f"number {raw!r} is beyond the range of a double") from None
    if not math.isfinite(number):
        raise TransformError(f"number {raw!r} is not finite")
    return number


def _number(value: Any, **_: Any) -> int | float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise TransformError(f"number {value!r} is a boolean")
    if isinstance(value, (int, float)):
        return _storable_number(value, value)
    if not isinstance(value, str):
        raise TransformError(f"number {value!r} is not numeric")
    text = value.strip()
    try:
        return _storable_number(int(text), value)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise TransformError(f"number {value!r} is not numeric (use a dot for decimals, no separators)") from None
    return _storable_number(number, value)


def _tags(value: Any, **_: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list):
        raise TransformError(f"tags {value!r} are not a list of strings")
    seen: dict[str, None] = {}
    for tag in value:
        if not isinstance(tag, str):
            raise TransformError(f"tag {tag!r} is not a string")
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return list(seen)


def _json(value: Any, **_: Any) -> Any:
    return value


#: Transform name -> function(value, default_country=...) -> column value.
TRANSFORMS: dict[str, Callable[..., Any]] = {
    "text": _text,
    "email": _email,
    "phone": _phone,
    "timestamp": _timestamp,
    "date": _date,
    "boolean": _boolean,
    "number": _number,
    "tags": _tags,
    "json": _json,
}

#: Transform name -> logical column type (see ``schema.COLUMN_TYPES``).
TRANSFORM_TYPES: dict[str, str] = {
    "text": "text",
    "email": "text",
    "phone": "text",
    "timestamp": "timestamp",
    "date": "text",
    "boolean": "boolean",
    "number": "number",
    "tags": "json",
    "json": "json",
}
