"""Value transforms used by the declarative field mapping.

Each transform takes the raw API value and returns the column value, or raises
:class:`TransformError` with a message that names the problem and the fix. ``None`` and empty
strings always map to ``None`` (SQL ``NULL``): a missing value is not an error here; required
fields are checked by the mapping itself.

Transforms:

``text``       the value as a string (numbers and booleans as their JSON spelling), trimmed.
``email``      trimmed and lower-cased; must look like ``local@domain.tld``.
``phone``      normalised to E.164 (``+<country code><number>``, 8 to 15 digits); national
               numbers take the mapping's ``default_country``.
``timestamp``  ISO-8601 date/time (``Z``, offsets and fractions accepted; a bare date is
               midnight UTC; a naive time is taken as UTC) or epoch seconds/milliseconds, to an
               aware ``datetime`` in UTC.
``date``       a calendar date (``YYYY-MM-DD``, or a timestamp whose date part is used) as
               ``YYYY-MM-DD`` text.
``boolean``    ``true``/``false`` (also ``"true"``, ``"false"``, ``1``, ``0``, ``"yes"``, ``"no"``).
``number``     an int or float (numeric strings accepted, thousands separators not).
``tags``       a list of trimmed, non-empty, de-duplicated strings, in the API's order.
``json``       the value unchanged (stored as JSON text).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from typing import Any

__all__ = [
    "COUNTRY_CALLING_CODES",
    "TRANSFORMS",
    "TRANSFORM_TYPES",
    "TransformError",
    "to_e164",
]


class TransformError(ValueError):
    """A value that a transform cannot convert; the message says why and how to fix it."""


#: ITU calling codes for the default-country setting of the phone transform (ISO 3166 alpha-2).
COUNTRY_CALLING_CODES: dict[str, str] = {
    "US": "1", "CA": "1", "PR": "1", "GB": "44", "IE": "353", "DE": "49", "FR": "33", "ES": "34",
    "IT": "39", "NL": "31", "BE": "32", "CH": "41", "AT": "43", "PT": "351", "SE": "46", "NO": "47",
    "DK": "45", "FI": "358", "PL": "48", "CZ": "420", "AU": "61", "NZ": "64", "IN": "91",
    "SG": "65", "HK": "852", "JP": "81", "KR": "82", "CN": "86", "PH": "63", "MY": "60",
    "ZA": "27", "NG": "234", "KE": "254", "AE": "971", "SA": "966", "IL": "972", "TR": "90",
    "BR": "55", "MX": "52", "AR": "54", "CL": "56", "CO": "57", "PE": "51",
}

_NANP_COUNTRIES = {"US", "CA", "PR"}
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/\u00a0]")
_PHONE_EXTENSION = re.compile(r"(?:ext\.?|extension|x|#)\s*\d{1,6}$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_e164(raw: str, default_country: str = "US") -> str:
    """Normalise a phone number to E.164, or raise :class:`TransformError`.

    Accepted: ``+<cc> ...`` and ``00<cc> ...`` international forms (a ``(0)`` trunk marker is
    dropped), and national forms of ``default_country`` (for the North American plan: 10 digits,
    or 11 starting with ``1``; elsewhere a single leading trunk ``0`` is dropped). Spaces, dashes,
    dots, slashes and parentheses are ignored; a trailing extension (``x12``, ``ext. 12``) is not
    representable in E.164 and is rejected, as are letters and lengths outside 8..15 digits.
    """
    text = raw.strip()
    if _PHONE_EXTENSION.search(text):
        raise TransformError(f"phone {raw!r} has an extension, which E.164 cannot hold; store it elsewhere")
    text = text.replace("(0)", "")
    compact = _PHONE_PUNCTUATION.sub("", text)
    international = compact.startswith("+") or compact.startswith("00")
    digits = compact[1:] if compact.startswith("+") else compact[2:] if compact.startswith("00") else compact
    if not digits.isdigit():
        raise TransformError(f"phone {raw!r} contains characters other than digits and punctuation")
    country = default_country.upper()
    if not international:
        code = COUNTRY_CALLING_CODES.get(country)
        if code is None:
            raise TransformError(
                f"phone {raw!r} is national but default_country {default_country!r} is unknown; "
                f"set options.default_country to one of {sorted(COUNTRY_CALLING_CODES)}"
            )
        if code == "1":
            if len(digits) == 11 and digits.startswith("1"):
                digits = digits[1:]
            if len(digits) != 10:
                raise TransformError(
                    f"phone {raw!r} is not a valid {country} number (needs 10 digits, got {len(digits)})"
                )
        elif digits.startswith("0"):
            digits = digits[1:]
        digits = code + digits
    if digits.startswith("1") and len(digits) == 11:
        area, exchange = digits[1:4], digits[4:7]
        if area[0] in "01" or exchange[0] in "01":
            raise TransformError(
                f"phone {raw!r} is not a valid North American number (area code and exchange cannot start with 0 or 1)"
            )
    if digits.startswith("0") or not 8 <= len(digits) <= 15:
        raise TransformError(f"phone {raw!r} does not normalise to E.164 (8 to 15 digits, no leading 0)")
    return "+" + digits


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
    if not isinstance(value, (str, int)):
        raise TransformError(f"phone {value!r} is neither a string nor a number")
    return to_e164(str(value), default_country)


def _timestamp(value: Any, **_: Any) -> datetime | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise TransformError(f"timestamp {value!r} is a boolean, not a date/time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise TransformError(f"timestamp {value!r} is not finite")
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if not isinstance(value, str):
        raise TransformError(f"timestamp {value!r} is not a string or epoch number")
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0), tzinfo=timezone.utc)
        else:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise TransformError(
            f"timestamp {value!r} is not ISO-8601 (e.g. 2024-05-01T12:30:00Z); fix it in HighLevel "
            "or map the field with transform: text"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _date(value: Any, **_: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise TransformError(f"date {value!r} is not YYYY-MM-DD") from None
    stamp = _timestamp(value)
    return stamp.date().isoformat() if stamp else None


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


def _number(value: Any, **_: Any) -> int | float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise TransformError(f"number {value!r} is a boolean")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise TransformError(f"number {value!r} is not numeric (use a dot for decimals, no separators)") from None
    if not math.isfinite(number):
        raise TransformError(f"number {value!r} is not finite")
    return number


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

#: Transform name -> logical column type (see ``sinks.COLUMN_TYPES``).
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
