"""HighLevel webhook event bodies -> :class:`WebhookEvent` (type, ids, timestamp, raw body).

Documented event types (``ghl-webhooks/*.md``) and the ids each carries:

==========================================================================  ============  =============
type                                                                        ``id`` is     ``contactId``
==========================================================================  ============  =============
``ContactCreate``, ``ContactUpdate``, ``ContactDelete``,                    the contact   (absent)
``ContactDndUpdate``, ``ContactTagUpdate``
``TaskCreate``, ``TaskComplete``, ``TaskDelete``                            the task      its contact
``NoteCreate``, ``NoteUpdate``, ``NoteDelete``                              the note      its contact
==========================================================================  ============  =============

Every body also carries ``locationId`` and, since HighLevel signs its deliveries
(``WebhookAuthentication.md``), ``timestamp`` (ISO 8601) and ``webhookId``.

Parsing is liberal: a body of an unknown type (HighLevel sends many more event types than the
contact, task and note ones) or without some field is still a valid event; only a body that is not
a JSON object is refused (:class:`EventParseError`). Unknown types keep their ``type``;
``entity_id`` is their ``id`` and ``contact_id`` their ``contactId`` when present.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_contacts.dates import DateParseError, parse_datetime

__all__ = [
    "CONTACT_EVENT_TYPES",
    "DELETE_EVENT_TYPES",
    "DOCUMENTED_EVENT_TYPES",
    "NOTE_EVENT_TYPES",
    "TASK_EVENT_TYPES",
    "EventParseError",
    "WebhookEvent",
    "derive_webhook_id",
    "parse_event",
]

CONTACT_EVENT_TYPES = frozenset({"ContactCreate", "ContactUpdate", "ContactDelete", "ContactDndUpdate", "ContactTagUpdate"})
TASK_EVENT_TYPES = frozenset({"TaskCreate", "TaskComplete", "TaskDelete"})
NOTE_EVENT_TYPES = frozenset({"NoteCreate", "NoteUpdate", "NoteDelete"})
DOCUMENTED_EVENT_TYPES = CONTACT_EVENT_TYPES | TASK_EVENT_TYPES | NOTE_EVENT_TYPES
#: Types that announce the removal of their entity (``ContactDelete`` also ends the contact's tasks
#: and notes, for which HighLevel sends no events; ``ghl-live-notes.md``).
DELETE_EVENT_TYPES = frozenset({"ContactDelete", "TaskDelete", "NoteDelete"})

#: Prefix of a webhook id derived from the body (a delivery without ``webhookId``).
DERIVED_ID_PREFIX = "sha256:"
#: Longest ``webhookId`` kept as is (the key column holds 255); a longer one is stored as
#: ``sha256:`` + the SHA-256 of it (still stable across retries).
MAX_WEBHOOK_ID_CHARS = 200


class EventParseError(ValueError):
    """The body is not a JSON object (the message says what it is instead)."""


def _text(value: Any) -> str | None:
    """An id-like value as a non-empty string, else ``None`` (numbers are ids too; objects are not)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def derive_webhook_id(payload: Any) -> str:
    """A stable dedupe key for a body without ``webhookId``: ``sha256:`` + the SHA-256 (hex) of the
    payload's canonical JSON (keys sorted, no whitespace). A retried delivery of the same event
    derives the same id, whatever its key order or spacing; two events whose bodies are equal
    collapse to one (applying such an event twice would change nothing)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DERIVED_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WebhookEvent:
    """One delivery, parsed.

    :ivar webhook_id: the dedupe key: the body's ``webhookId``, or when absent a key derived from
        the body (:func:`derive_webhook_id`, ``webhook_id_derived`` is then ``True``).
    :ivar event_type: the body's ``type`` (``ContactUpdate``, ...; any string; ``None`` if absent).
    :ivar location_id: ``locationId``.
    :ivar contact_id: the contact the event concerns: ``id`` of a contact event, ``contactId`` of
        a task or note event (or of an unknown type that carries one).
    :ivar entity_id: the ``id`` of the entity the event is about (contact, task or note id).
    :ivar timestamp: the body's ``timestamp`` (aware UTC), ``None`` when absent or unparseable.
        Kept as sent: a retry carries the original one.
    :ivar payload: the parsed body (dict).
    :ivar body: the body as text (UTF-8), as received except that a raw NUL character, which
        PostgreSQL text cannot hold, is written as the JSON escape ``\\u0000`` (same JSON value).
    """

    webhook_id: str
    event_type: str | None
    location_id: str | None
    contact_id: str | None
    entity_id: str | None
    timestamp: datetime | None
    payload: dict[str, Any]
    body: str
    webhook_id_derived: bool = False

    @property
    def entity(self) -> str | None:
        """``contact``, ``task`` or ``note`` for the documented types, else ``None``."""
        if self.event_type in CONTACT_EVENT_TYPES:
            return "contact"
        if self.event_type in TASK_EVENT_TYPES:
            return "task"
        if self.event_type in NOTE_EVENT_TYPES:
            return "note"
        return None

    @property
    def is_delete(self) -> bool:
        """Whether the event announces a removal (``ContactDelete``, ``TaskDelete``, ``NoteDelete``)."""
        return self.event_type in DELETE_EVENT_TYPES


def parse_event(body: bytes | str) -> WebhookEvent:
    """Parse one delivery body (the exact bytes received, UTF-8 JSON).

    :raises EventParseError: when the body is not UTF-8 JSON or not a JSON object.
    """
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EventParseError(f"body is not UTF-8 text (byte {exc.start}); HighLevel sends UTF-8 JSON") from exc
    else:
        text = body
    try:
        payload = json.loads(text, strict=False)  # strict=False: control characters inside strings
    except json.JSONDecodeError as exc:
        raise EventParseError(f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(payload, dict):
        raise EventParseError(f"body is JSON {type(payload).__name__}, not an object; an event is one JSON object")
    event_type = _text(payload.get("type"))
    entity_id = _text(payload.get("id"))
    contact_id = _text(payload.get("contactId"))
    if event_type in CONTACT_EVENT_TYPES or (contact_id is None and event_type and event_type.startswith("Contact")):
        contact_id = entity_id
    try:
        timestamp = parse_datetime(payload.get("timestamp")) if not isinstance(payload.get("timestamp"), (dict, list)) else None
    except DateParseError:
        timestamp = None
    webhook_id = _text(payload.get("webhookId"))
    derived = webhook_id is None
    if webhook_id is not None and len(webhook_id) > MAX_WEBHOOK_ID_CHARS:  # keeps the key column bounded
        webhook_id = DERIVED_ID_PREFIX + hashlib.sha256(webhook_id.encode("utf-8")).hexdigest()
    return WebhookEvent(
        webhook_id=webhook_id if webhook_id is not None else derive_webhook_id(payload),
        event_type=event_type,
        location_id=_text(payload.get("locationId")) or _text(payload.get("location_id")),
        contact_id=contact_id,
        entity_id=entity_id,
        timestamp=timestamp,
        payload=payload,
        body=text.replace("\x00", "\\u0000"),
        webhook_id_derived=derived,
    )
