"""Date helpers: HighLevel writes ISO-8601 UTC with milliseconds and ``Z`` (``2024-03-05T10:12:33.123Z``)."""

from __future__ import annotations

import time
import re
from datetime import date, datetime, timedelta, timezone


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso_from_ms(epoch_ms: int) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC; negative ms are before 1970)."""
    return (_EPOCH + timedelta(milliseconds=int(epoch_ms))).isoformat(timespec="milliseconds")[:-6] + "Z"


def now_ms() -> int:
    """Current wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def now_iso() -> str:
    """Current time in HighLevel's ISO format."""
    return iso_from_ms(now_ms())


def parse_datetime_ms(value: object, field: str) -> int:
    """Epoch milliseconds from an ISO-8601 string (``Z`` or offset; date-only allowed) or a number of ms.

    Raises ``ValueError`` naming ``field`` when the value is neither.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an ISO-8601 date string or epoch milliseconds")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{field} must be an ISO-8601 date (e.g. 2024-03-05T10:12:33.123Z), got {value!r}"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    raise ValueError(f"{field} must be an ISO-8601 date string or epoch milliseconds, got {type(value).__name__}")


class DateParseError(ValueError):
    """A value that is not a date in any form the live API accepts for ``dateOfBirth``."""


_YEAR_FIRST = re.compile(r"^(\d{4})([/\-._])(\d{1,2})\2(\d{1,2})$")
_MONTH_FIRST = re.compile(r"^(\d{1,2})([/\-._])(\d{1,2})\2(\d{4})$")
_DOB_FORMATS = "YYYY/MM/DD, MM/DD/YYYY, YYYY-MM-DD, MM-DD-YYYY, YYYY.MM.DD, MM.DD.YYYY, YYYY_MM_DD, MM_DD_YYYY"


def parse_date(value: object) -> date | None:
    """A calendar date from what the live API accepts as ``dateOfBirth`` (contacts.json's list of
    formats, ISO date-times, epoch milliseconds); ``None`` for blanks.

    The sandbox keeps its own parser on purpose: a stand-in server that shared the client's code
    could not catch a client/server disagreement.

    :raises DateParseError: for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise DateParseError(f"{value!r} is not a date")
    if isinstance(value, (int, float)):
        return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=value)).date()
    if not isinstance(value, str):
        raise DateParseError(f"{value!r} is not a date")
    text = value.strip()
    if re.fullmatch(r"-?\d+", text) and not (len(text) == 8 and text.isdigit()):
        return parse_date(int(text))
    for pattern, order in ((_YEAR_FIRST, (1, 3, 4)), (_MONTH_FIRST, (4, 1, 3))):
        match = pattern.match(text)
        if match:
            year, month, day = (int(match[i]) for i in order)
            try:
                return date(year, month, day)
            except ValueError:
                raise DateParseError(f"{value!r} is not a calendar date") from None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text).date()
    except ValueError:
        try:
            return datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            raise DateParseError(f"{value!r} is not a date; use one of {_DOB_FORMATS}, ISO 8601 or epoch ms") from None
