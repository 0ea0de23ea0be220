"""The one place that parses and formats HighLevel dates; every layer (models, hook, sync,
sensors, sandbox clients) calls it.

What HighLevel sends and accepts (``contacts.json`` and ``ghl-live-notes.md``):

* date-times (``dateAdded``, ``dateUpdated``, ``dueDate`` ...): ISO 8601 in UTC with milliseconds
  and ``Z`` (``2024-05-01T12:30:00.000Z``), sometimes epoch **milliseconds**;
* ``dateOfBirth``: ``YYYY-MM-DD`` or ``1990-09-25T00:00:00.000Z`` from ``GET /contacts/{id}``,
  epoch milliseconds (negative before 1970) from ``POST /contacts/search``; on writes the spec's
  own description lists ``YYYY/MM/DD, MM/DD/YYYY, YYYY-MM-DD, MM-DD-YYYY, YYYY.MM.DD, MM.DD.YYYY,
  YYYY_MM_DD, MM_DD_YYYY``.

Rules, by **type and shape, never by magnitude**:

* a number (``int``/``float``, not ``bool``) is epoch milliseconds, negative ones included;
* a string of an optional ``-`` and digits is epoch milliseconds, except exactly eight unsigned
  digits, which is the ISO basic date ``YYYYMMDD``;
* any other string is ISO 8601 (``Z``, offsets, fractions, ``T`` or space; a naive time is UTC)
  or one of the eight separated date forms above (midnight UTC).

Bad values raise :class:`DateParseError` (a ``ValueError``) whose message names the value and the
accepted forms; callers that must never fail on one record (the sync mapping, API answers) catch it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

__all__ = [
    "DATE_OF_BIRTH_FORMATS",
    "DateParseError",
    "epoch_ms",
    "format_date",
    "format_datetime",
    "from_epoch_ms",
    "parse_date",
    "parse_datetime",
    "utcnow",
]

#: The ``dateOfBirth`` input formats listed in contacts.json (``CreateContactDto.dateOfBirth``).
DATE_OF_BIRTH_FORMATS = (
    "YYYY/MM/DD", "MM/DD/YYYY", "YYYY-MM-DD", "MM-DD-YYYY",
    "YYYY.MM.DD", "MM.DD.YYYY", "YYYY_MM_DD", "MM_DD_YYYY",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SIGNED_DIGITS = re.compile(r"^-?\d+$")
_YEAR_FIRST = re.compile(r"^(\d{4})([/\-._])(\d{1,2})\2(\d{1,2})$")
_MONTH_FIRST = re.compile(r"^(\d{1,2})([/\-._])(\d{1,2})\2(\d{4})$")
_ACCEPTED = (
    "ISO 8601 (e.g. '2024-05-01T09:30:00Z' or '2024-05-01'), epoch milliseconds (e.g. 1714555800000), "
    f"or one of {', '.join(DATE_OF_BIRTH_FORMATS)}"
)


class DateParseError(ValueError):
    """A value that is not a date or date-time in any form HighLevel uses."""


def from_epoch_ms(value: float) -> datetime:
    """Aware UTC datetime of epoch milliseconds (negative values are before 1970)."""
    if not math.isfinite(value):
        raise DateParseError(f"{value!r} is not a finite number of epoch milliseconds")
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        raise DateParseError(f"{value!r} epoch milliseconds is outside the years 1 to 9999") from None


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware (or naive = UTC) datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _separated_date(text: str) -> date | None:
    match = _YEAR_FIRST.match(text)
    if match:
        year, month, day = int(match[1]), int(match[3]), int(match[4])
    else:
        match = _MONTH_FIRST.match(text)
        if not match:
            return None
        month, day, year = int(match[1]), int(match[3]), int(match[4])
    try:
        return date(year, month, day)
    except ValueError:
        raise DateParseError(f"{text!r} is not a calendar date ({year:04d}-{month:02d}-{day:02d} does not exist)") from None


def parse_datetime(value: Any) -> datetime | None:
    """``value`` as an aware UTC :class:`datetime`, or ``None`` for ``None`` / blank strings.

    Accepts datetimes (naive = UTC), dates (midnight UTC), epoch milliseconds (number or digit
    string) and the string forms in the module docstring.

    :raises DateParseError: for anything else (booleans, lists, unparseable strings).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, bool):
        raise DateParseError(f"{value!r} is a boolean, not a date; use {_ACCEPTED}")
    if isinstance(value, (int, float)):
        return from_epoch_ms(value)
    if not isinstance(value, str):
        raise DateParseError(f"{value!r} ({type(value).__name__}) is not a date; use {_ACCEPTED}")
    text = value.strip()
    if not text:
        return None
    if _SIGNED_DIGITS.match(text) and not (len(text) == 8 and text.isdigit()):
        return from_epoch_ms(int(text))
    separated = _separated_date(text)
    if separated is not None:
        return datetime.combine(separated, time(0), tzinfo=timezone.utc)
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:  # Python 3.10's fromisoformat knows neither YYYYMMDD nor 1-6 digit fractions
            parsed = datetime.strptime(iso, "%Y%m%d")
        except ValueError:
            raise DateParseError(f"{value!r} is not a date; use {_ACCEPTED}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def parse_date(value: Any) -> date | None:
    """``value`` as a calendar :class:`date` (e.g. ``dateOfBirth``), or ``None`` when blank.

    Epoch milliseconds give the UTC date (``74736000000`` -> 1972-05-15, ``-89596800000`` ->
    1967-03-01); a date-time string gives its own date part, without a time-zone shift
    (``1990-09-25T00:00:00.000Z`` -> 1990-09-25); the eight ``dateOfBirth`` forms are read as
    the spec lists them (month before day in the US forms).

    :raises DateParseError: as :func:`parse_datetime`.
    """
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        separated = _separated_date(text)
        if separated is not None:
            return separated
        if len(text) > 10 and re.match(r"^\d{4}-\d{2}-\d{2}[T ]", text):
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                raise DateParseError(f"{value!r} is not a calendar date; use {_ACCEPTED}") from None
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def format_datetime(moment: datetime) -> str:
    """HighLevel's form: UTC, milliseconds, ``Z`` (``2024-05-01T12:30:00.000Z``)."""
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_date(day: date) -> str:
    """``YYYY-MM-DD``: the form sent as ``dateOfBirth`` and stored by the sync."""
    return day.isoformat()


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(timezone.utc)
