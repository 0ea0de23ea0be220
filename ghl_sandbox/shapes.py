"""How a stored contact is shown, per endpoint and mode (``ghl-live-notes.md``, "Contact shapes
differ by endpoint").

The store keeps each contact in the shape ``GET /contacts/{id}`` answers (``address1``,
``dateOfBirth`` as a string such as ``1990-09-25`` or ``1990-09-25T00:00:00.000Z``, DATE custom
field values as epoch milliseconds), plus a few fields only search answers show (``extras``).

* Live mode (the default), ``POST /contacts/search``: the street address as ``address`` (no
  ``address1``), ``dateOfBirth`` as epoch milliseconds (negative before 1970; a stored value that
  is not a date is passed through as it is), and the extra fields ``businessName``,
  ``phoneLabel``, ``additionalEmails``, ``additionalPhones``, ``validEmail`` and ``contactName``
  (``followers``, ``dndSettings``, ``firstNameLowerCase`` and ``lastNameLowerCase`` are on every
  contact already).
* Live mode, every other contact answer: the stored shape.
* Strict spec mode: every contact answer in the stored shape, DATE custom field values as
  ISO-8601 strings (``CustomFieldSchema.value`` is a string).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from .dates import DateParseError, parse_date

from .dates import iso_from_ms

SEARCH_EXTRA_FIELDS: tuple[str, ...] = ("businessName", "phoneLabel", "additionalEmails", "additionalPhones",
                                        "validEmail")
"""Fields the live search answer carries that the stored (GET) shape does not (besides ``contactName``)."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def date_ms(day: date) -> int:
    """Epoch milliseconds of midnight UTC of ``day`` (negative before 1970)."""
    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def date_of_birth_ms(value: Any) -> Any:
    """A stored ``dateOfBirth`` as search shows it: epoch ms of the date; ``None`` and values that
    are not dates pass through unchanged (what a CRM user typed stays what it was)."""
    if value is None or isinstance(value, bool):
        return value
    try:
        day = parse_date(value)
    except (DateParseError, ValueError, TypeError, OverflowError):
        return value
    return None if day is None else date_ms(day)


def _strict_custom_values(values: list[dict[str, Any]], date_ids: Collection[str]) -> list[dict[str, Any]]:
    out = []
    for item in values:
        value = item.get("value")
        if item.get("id") in date_ids and isinstance(value, int) and not isinstance(value, bool):
            item = {**item, "value": iso_from_ms(value)}
        out.append(item)
    return out


def get_shape(contact: dict[str, Any], date_ids: Collection[str], strict: bool) -> dict[str, Any]:
    """The contact as ``GET /contacts/{id}`` (and every non-search answer) shows it.

    Live mode returns ``contact`` itself (no copy): callers must not change it.
    """
    if strict and date_ids:
        values = contact.get("customFields") or ()
        if any(v.get("id") in date_ids for v in values):
            return {**contact, "customFields": _strict_custom_values(list(values), date_ids)}
    return contact


def search_shape(contact: dict[str, Any], extras: Mapping[str, Any] | None, date_ids: Collection[str],
                 strict: bool) -> dict[str, Any]:
    """The contact as ``POST /contacts/search`` shows it (without ``searchAfter``); a new dict."""
    if strict:
        return dict(get_shape(contact, date_ids, strict))
    out: dict[str, Any] = {}
    for key, value in contact.items():
        if key == "address1":
            out["address"] = value
        elif key == "dateOfBirth":
            out[key] = date_of_birth_ms(value)
        else:
            out[key] = value
    extras = extras or {}
    out["contactName"] = contact.get("name")
    out["businessName"] = extras.get("businessName")
    out["phoneLabel"] = extras.get("phoneLabel")
    out["additionalEmails"] = list(extras.get("additionalEmails") or [])
    out["additionalPhones"] = list(extras.get("additionalPhones") or [])
    out["validEmail"] = extras.get("validEmail")
    return out
