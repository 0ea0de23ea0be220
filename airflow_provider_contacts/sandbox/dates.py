"""Date helpers: HighLevel writes ISO-8601 UTC with milliseconds and ``Z`` (``2024-03-05T10:12:33.123Z``)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


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
