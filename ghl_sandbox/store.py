"""In-memory CRM state of the sandbox: locations with their contacts, tasks, notes, custom fields.

Contacts are kept in the shape ``GET /contacts/{id}`` answers (``shapes.py`` turns them into the
live search shape), plus per contact the fields only search answers show (``LocationState.extras``).
Tasks and notes are kept API-shaped. The store is only touched from the server's event loop (every
route is ``async``), so it needs no locks.

Timestamps: ``dateUpdated`` is set to the wall clock on every change of a contact. With the
default quirks (``tasks_without_updated_at``, ``activity_touches_contact=False``) tasks show no
update timestamp and task/note changes do not move the contact's ``dateUpdated``, as on HighLevel.

Search lag (``search_lag_s`` > 0): ``POST /contacts/search`` reads a ``SearchView``, a copy of the
contacts that each change reaches only ``search_lag_s`` seconds after it was made, as HighLevel's
search index lags behind its database. Every other endpoint reads the data itself.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .dates import DateParseError, parse_date

from .activities import ActivityTable
from .config import SandboxConfig
from .dates import iso_from_ms, now_ms, parse_datetime_ms
from .errors import APIError, not_found, unprocessable
from .ids import new_id, seeded_id
from .search import SearchIndex, SortSpec, cursor_key, cursor_of, page_after
from .seed import SeedLocation, seed_location
from .shapes import date_ms, get_shape, search_shape
from .webhooks import contact_event_fields, note_event_fields, task_event_fields

CONTACT_INPUT_FIELDS = (
    "firstName", "lastName", "name", "email", "gender", "phone", "address1", "city", "state", "postalCode",
    "website", "timezone", "dnd", "dndSettings", "inboundDndSettings", "tags", "source", "dateOfBirth",
    "country", "companyName", "assignedTo",
)
CUSTOM_VALUE_KEYS = ("field_value", "fieldValue", "value")
"""Where a written custom field value may be, in order: the spec's ``field_value``, the live API's
preferred ``fieldValue``, and the older ``value``."""


DND_FIELDS = ("dnd", "dndSettings", "inboundDndSettings")
"""Contact fields whose change HighLevel announces as ``ContactDndUpdate`` (tags: ``ContactTagUpdate``)."""
_NOT_ANNOUNCED = frozenset({"tags", *DND_FIELDS, "dateUpdated", "firstNameLowerCase", "lastNameLowerCase",
                            "fullNameLowerCase", "emailLowerCase"})

TASK_FIELDS = ("title", "body", "assignedTo", "dueDate", "completed")
NOTE_FIELDS = ("body", "userId", "title", "color", "pinned")


def phone_digits(phone: str | None) -> str:
    """Digits of a phone number, for duplicate matching (``+1 (415) 555-0134`` -> ``14155550134``)."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-10:] if len(digits) >= 10 else digits


def _record_json(holder: Any, contact_id: str, strict: bool, date_ids: frozenset[str]) -> bytes:
    """The contact's search-shaped compact JSON from ``holder`` (a location or its ``SearchView``),
    cached per contact until it changes (the cache is dropped when the mode changes)."""
    if holder.json_strict is not strict:
        holder.json_cache.clear()
        holder.json_strict = strict
    cached = holder.json_cache.get(contact_id)
    if cached is None:
        record = search_shape(holder.contacts[contact_id], holder.extras.get(contact_id), date_ids, strict)
        cached = holder.json_cache[contact_id] = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    return cached


@dataclass
class SearchView:
    """What ``POST /contacts/search`` sees while ``search_lag_s`` > 0: a copy of the location's
    contacts that each change reaches ``lag`` seconds after it was made (``pending``)."""

    contacts: dict[str, dict[str, Any]]
    times: dict[str, tuple[int, int]]
    extras: dict[str, dict[str, Any]]
    version: int = 0
    index: SearchIndex = field(default_factory=SearchIndex)
    json_cache: dict[str, bytes] = field(default_factory=dict)
    json_strict: bool | None = None
    pending: deque[tuple[float, str, dict[str, Any] | None, tuple[int, int] | None, dict[str, Any]]] = field(
        default_factory=deque)

    def catch_up(self, now: float) -> None:
        """Apply every change whose lag is over."""
        while self.pending and self.pending[0][0] <= now:
            _, cid, contact, times, extras = self.pending.popleft()
            if contact is None or times is None:
                self.contacts.pop(cid, None)
                self.times.pop(cid, None)
                self.extras.pop(cid, None)
            else:
                self.contacts[cid], self.times[cid], self.extras[cid] = contact, times, extras
            self.json_cache.pop(cid, None)
            self.version += 1


@dataclass
class LocationState:
    """One location (sub-account): its data and indexes."""

    location_id: str
    company_id: str
    name: str
    users: list[str]
    allow_duplicates: bool | None = None  # None: SandboxConfig.allow_duplicates
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    times: dict[str, tuple[int, int]] = field(default_factory=dict)  # (dateAdded ms, dateUpdated ms)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)  # contact id -> search-only fields
    tasks: ActivityTable = field(default_factory=lambda: ActivityTable("Task", TASK_FIELDS))
    notes: ActivityTable = field(default_factory=lambda: ActivityTable("Note", NOTE_FIELDS))
    appointments_by_contact: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    campaigns_by_contact: dict[str, set[str]] = field(default_factory=dict)
    workflows_by_contact: dict[str, dict[str, str | None]] = field(default_factory=dict)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    by_email: dict[str, set[str]] = field(default_factory=dict)
    by_phone: dict[str, set[str]] = field(default_factory=dict)
    version: int = 0
    index: SearchIndex = field(default_factory=SearchIndex)
    json_cache: dict[str, bytes] = field(default_factory=dict)  # contact id -> its search JSON, dropped on change
    json_strict: bool | None = None  # the mode json_cache was built for
    search_lag_s: float = 0.0
    lag_view: SearchView | None = None

    @property
    def date_field_ids(self) -> frozenset[str]:
        """Ids of the location's DATE custom fields (their values are epoch ms)."""
        key = tuple(cf["id"] for cf in self.custom_fields)
        cached = self.__dict__.get("_date_ids")
        if cached is None or cached[0] != key:
            ids = frozenset(cf["id"] for cf in self.custom_fields if cf.get("dataType") == "DATE")
            cached = self.__dict__["_date_ids"] = (key, ids)
        return cached[1]

    def contact_json(self, contact_id: str, strict: bool = False) -> bytes:
        """The contact's compact search-shaped JSON (cached until the contact changes)."""
        return _record_json(self, contact_id, strict, self.date_field_ids)

    # -- search view (lag) -------------------------------------------------------------------------
    def set_search_lag(self, lag_s: float) -> None:
        """Start (copying the data as it is now), change or stop the search lag."""
        self.search_lag_s = lag_s
        if lag_s <= 0:
            self.lag_view = None
        elif self.lag_view is None:
            self.lag_view = SearchView({cid: dict(c) for cid, c in self.contacts.items()}, dict(self.times),
                                       {cid: dict(e) for cid, e in self.extras.items()})

    def search_source(self) -> LocationState | SearchView:
        """What search reads: the data itself, or the lagging view brought up to date."""
        view = self.lag_view
        if view is None:
            return self
        view.catch_up(time.monotonic())
        return view

    def changed(self, contact_id: str) -> None:
        """A contact was added, changed or removed: drop its cached JSON, queue it for the lagging view."""
        self.json_cache.pop(contact_id, None)
        self.version += 1
        if self.lag_view is not None:
            contact = self.contacts.get(contact_id)
            self.lag_view.pending.append((
                time.monotonic() + self.search_lag_s, contact_id,
                dict(contact) if contact is not None else None, self.times.get(contact_id),
                dict(self.extras.get(contact_id) or {}),
            ))

    # -- indexes -------------------------------------------------------------------------------
    def _index(self, contact: dict[str, Any], add: bool) -> None:
        for table, key in ((self.by_email, (contact.get("email") or "").lower()),
                           (self.by_phone, phone_digits(contact.get("phone")))):
            if not key:
                continue
            if add:
                table.setdefault(key, set()).add(contact["id"])
            else:
                ids = table.get(key)
                if ids:
                    ids.discard(contact["id"])
                    if not ids:
                        del table[key]

    def add_contact(self, contact: dict[str, Any], times: tuple[int, int],
                    extras: dict[str, Any] | None = None) -> None:
        """Insert a GET-shaped contact with its ``(added_ms, updated_ms)`` and search-only fields."""
        self.contacts[contact["id"]] = contact
        self.times[contact["id"]] = times
        self.extras[contact["id"]] = extras or {}
        self._index(contact, True)
        self.changed(contact["id"])

    def find_custom_field(self, ref: str) -> dict[str, Any] | None:
        """A custom field by id, ``fieldKey`` (``contact.x``) or bare key (``x``)."""
        for cf in self.custom_fields:
            if ref in (cf["id"], cf["fieldKey"], cf["fieldKey"].split(".", 1)[-1]):
                return cf
        return None


def location_from_seed(seed: SeedLocation, company_id: str, name: str) -> LocationState:
    """Build a ``LocationState`` from generated seed data."""
    loc = LocationState(seed.location_id, company_id, name, seed.users, custom_fields=seed.custom_fields)
    for contact, times, extras in zip(seed.contacts, seed.contact_times, seed.contact_extras):
        loc.add_contact(contact, times, extras)
    for task, added in seed.tasks:
        loc.tasks.add(task, added)
    for note in seed.notes:
        loc.notes.add(note, parse_datetime_ms(note["dateAdded"], "dateAdded"))
    for appt in seed.appointments:
        loc.appointments_by_contact.setdefault(appt["contactId"], []).append(appt)
    return loc


class Store:
    """All locations of one agency (company), seeded from ``SandboxConfig``.

    ``webhooks`` (a ``webhooks.WebhookOutbox``, set by ``SandboxState``; ``None``: no events) hears of
    every change made through the store; see ``webhooks.py`` for which change sends which event.
    """

    webhooks: Any = None

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.company_id = seeded_id(rng)
        self.locations: dict[str, LocationState] = {}
        self._rng = rng
        self._last_field_names: frozenset[str] = frozenset()
        for n in range(config.locations):
            self.add_location(config.contacts)
        self.primary_location_id = next(iter(self.locations))
        self.quirk_rng = random.Random(config.seed * 7919 + 1)

    def configure(self, config: SandboxConfig) -> None:
        """Take a changed configuration (search lag; the mode is read per request)."""
        self.config = config
        for loc in self.locations.values():
            if loc.search_lag_s != config.search_lag_s:
                loc.set_search_lag(config.search_lag_s)

    @property
    def strict(self) -> bool:
        """Strict spec mode (``SandboxConfig.strict_spec``)."""
        return self.config.strict_spec

    # -- locations -----------------------------------------------------------------------------
    def add_location(self, contacts: int = 0) -> LocationState:
        """Seed a new location under the company (deterministic for the store's seed and order); its
        custom fields are another set than the previous location's."""
        seed = seed_location(self._rng, contacts, self.config.tasks_per_contact, self.config.notes_per_contact,
                             self._last_field_names)
        self._last_field_names = frozenset(cf["name"] for cf in seed.custom_fields)
        loc = location_from_seed(seed, self.company_id, f"Sandbox Location {len(self.locations) + 1}")
        loc.set_search_lag(self.config.search_lag_s)
        self.locations[loc.location_id] = loc
        return loc

    def location(self, location_id: str | None) -> LocationState:
        """The location, or 400 naming ``locationId`` (HighLevel answers 400 for unknown locations)."""
        if not location_id:
            raise unprocessable("locationId should not be empty")
        loc = self.locations.get(location_id)
        if loc is None:
            raise APIError(400, f"Location with id {location_id} not found; check locationId")
        return loc

    def contact_location(self, contact_id: str) -> LocationState:
        """The location holding ``contact_id`` (``NotFound`` if no location has it)."""
        for loc in self.locations.values():
            if contact_id in loc.contacts:
                return loc
        raise not_found("Contact", contact_id)

    def allow_duplicates(self, loc: LocationState) -> bool:
        """The location's "Allow Duplicate Contact" setting."""
        return self.config.allow_duplicates if loc.allow_duplicates is None else loc.allow_duplicates

    # -- contacts ------------------------------------------------------------------------------
    def find_duplicate(self, loc: LocationState, email: str | None, phone: str | None,
                       exclude: str | None = None) -> tuple[str, str] | None:
        """``(contact_id, matching_field)`` of an existing contact sharing email/phone, in match order."""
        for fld in self.config.duplicate_match_order:
            key = (email or "").lower() if fld == "email" else phone_digits(phone)
            if not key:
                continue
            table = loc.by_email if fld == "email" else loc.by_phone
            ids = sorted(i for i in table.get(key, ()) if i != exclude)
            if ids:
                ids.sort(key=lambda i: loc.times[i][0])
                return ids[0], fld
        return None

    # -- webhook events ---------------------------------------------------------------------------
    def _announcing(self) -> bool:
        hooks = self.webhooks
        return hooks is not None and hooks.active

    def _announce_contact(self, event_type: str, loc: LocationState, contact: dict[str, Any]) -> None:
        """Send a contact event (``ContactCreate``, ``ContactUpdate``, ...) if anyone is subscribed."""
        if self._announcing():
            fields = contact_event_fields(self.render(loc, contact), dnd_settings=event_type == "ContactDndUpdate")
            self.webhooks.emit(event_type, loc.location_id, contact["id"], fields)

    def _announce_update(self, loc: LocationState, contact: dict[str, Any], before: dict[str, Any]) -> None:
        """The events of a contact update: ``ContactTagUpdate`` if the tags changed, ``ContactDndUpdate``
        if a DND field changed, ``ContactUpdate`` if any other field changed or nothing did (the
        contact was saved: its ``dateUpdated`` moved)."""
        tags = contact.get("tags") != before.get("tags")
        dnd = any(contact.get(k) != before.get(k) for k in DND_FIELDS)
        other = any(contact.get(k) != before.get(k) for k in set(contact) | set(before) if k not in _NOT_ANNOUNCED)
        if tags:
            self._announce_contact("ContactTagUpdate", loc, contact)
        if dnd:
            self._announce_contact("ContactDndUpdate", loc, contact)
        if other or not (tags or dnd):
            self._announce_contact("ContactUpdate", loc, contact)

    def _announce_task(self, event_type: str, loc: LocationState, task: dict[str, Any]) -> None:
        if self._announcing():
            added = loc.tasks.times.get(task["id"], (None,))[0]
            self.webhooks.emit(event_type, loc.location_id, task["id"], task_event_fields(task, added))

    def _announce_note(self, event_type: str, loc: LocationState, note: dict[str, Any]) -> None:
        if self._announcing():
            self.webhooks.emit(event_type, loc.location_id, note["id"], note_event_fields(note))

    # -- rendering --------------------------------------------------------------------------------
    def render(self, loc: LocationState, contact: dict[str, Any]) -> dict[str, Any]:
        """A contact as every answer but search shows it (see ``shapes.get_shape``)."""
        return get_shape(contact, loc.date_field_ids, self.strict)

    def render_search(self, loc: LocationState, contact_id: str) -> dict[str, Any]:
        """A contact as ``POST /contacts/search`` shows it, without ``searchAfter`` (current data, no lag)."""
        return search_shape(loc.contacts[contact_id], loc.extras.get(contact_id), loc.date_field_ids, self.strict)

    # -- writes ------------------------------------------------------------------------------------
    def _custom_value(self, cf: dict[str, Any], value: Any, where: str) -> Any:
        """A written value as stored: DATE fields as epoch ms of the date (any date form the API
        reads), numbers as text (``CustomFieldSchema.value`` is a string), anything else as given."""
        if cf.get("dataType") == "DATE" and value not in (None, ""):
            try:
                day = parse_date(value)
            except (DateParseError, ValueError, TypeError, OverflowError):
                raise unprocessable(f"{where} must be a date (ISO 8601, epoch milliseconds, or one of YYYY-MM-DD, "
                                    f"MM/DD/YYYY ...) for DATE field {cf['fieldKey']}, got {value!r}") from None
            return None if day is None else date_ms(day)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    def _custom_values(self, loc: LocationState, items: list[dict[str, Any]] | None,
                       current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Merge written custom field values into ``current``. An item names its field by ``id`` or
        ``key`` (``contact.x`` or ``x``) and gives its value as ``field_value``, ``fieldValue`` (live
        mode only) or ``value``; values are stored as ``{"id", "value"}``."""
        merged = {cf["id"]: cf for cf in current}
        for i, item in enumerate(items or []):
            if self.strict and "fieldValue" in item:
                raise unprocessable(f"customFields.{i}.property fieldValue should not exist")
            ref = item.get("id") or item.get("key")
            if not ref:
                raise unprocessable(f"customFields.{i}.id should not be empty (or give key)")
            cf = loc.find_custom_field(str(ref))
            if cf is None:
                raise unprocessable(
                    f"customFields.{i}: custom field {ref!r} does not exist in this location; "
                    "see GET /locations/{locationId}/customFields for ids and keys"
                )
            value = next((item[k] for k in CUSTOM_VALUE_KEYS if item.get(k) is not None), None)
            merged[cf["id"]] = {"id": cf["id"], "value": self._custom_value(cf, value, f"customFields.{i}.value")}
        return list(merged.values())

    def _date_of_birth(self, value: Any, lenient: bool) -> Any:
        """A written ``dateOfBirth`` as stored: any of the spec's formats (``YYYY/MM/DD``,
        ``MM/DD/YYYY``, ``YYYY-MM-DD``, ``MM-DD-YYYY``, ``YYYY.MM.DD``, ``MM.DD.YYYY``,
        ``YYYY_MM_DD``, ``MM_DD_YYYY``), ISO 8601 or epoch ms; stored as ``YYYY-MM-DDT00:00:00.000Z``
        (live) or ``YYYY-MM-DD`` (strict spec). Anything else is 422, or, when ``lenient`` (the
        admin surface playing a CRM user), stored as typed."""
        if value is None or value == "":
            return None
        try:
            day = parse_date(value)
        except (DateParseError, ValueError, TypeError, OverflowError):
            if lenient:
                return value
            raise unprocessable("dateOfBirth must be a date in one of the formats YYYY/MM/DD, MM/DD/YYYY, "
                                "YYYY-MM-DD, MM-DD-YYYY, YYYY.MM.DD, MM.DD.YYYY, YYYY_MM_DD, MM_DD_YYYY "
                                f"(got {value!r})") from None
        if day is None:
            return None
        return day.isoformat() if self.strict else f"{day.isoformat()}T00:00:00.000Z"

    def _apply_fields(self, loc: LocationState, contact: dict[str, Any], data: dict[str, Any],
                      lenient: bool = False) -> None:
        data = dict(data)  # everything is checked before anything changes: a 422 leaves the contact as it was
        if "dateOfBirth" in data:
            data["dateOfBirth"] = self._date_of_birth(data["dateOfBirth"], lenient)
        if "customFields" in data:
            data["customFields"] = self._custom_values(loc, data["customFields"], contact.get("customFields") or [])
        for key in CONTACT_INPUT_FIELDS:
            if key in data:
                contact[key] = data[key]
        if "tags" in data:
            contact["tags"] = sorted({t.strip().lower() for t in data["tags"] or [] if t and t.strip()})
        if "customFields" in data:
            contact["customFields"] = data["customFields"]
        if "name" in data and data["name"] and not ("firstName" in data or "lastName" in data):
            first, _, last = str(data["name"]).partition(" ")
            contact["firstName"], contact["lastName"] = first, last or None
        first, last = contact.get("firstName") or "", contact.get("lastName") or ""
        full = f"{first} {last}".strip()
        contact["name"] = full or contact.get("name")
        contact["firstNameLowerCase"] = first.lower() or None
        contact["lastNameLowerCase"] = last.lower() or None
        contact["fullNameLowerCase"] = full.lower() or None
        email = contact.get("email")
        contact["emailLowerCase"] = email.lower() if email else None

    def create_contact(self, loc: LocationState, data: dict[str, Any], *,
                       check_duplicates: bool = True, lenient: bool = False) -> dict[str, Any]:
        """Create a contact from a CreateContactDto dict; 400 with ``meta`` on a forbidden duplicate.

        ``lenient``: a ``dateOfBirth`` that is not a date is stored as typed instead of refused.
        """
        if check_duplicates and not self.allow_duplicates(loc):
            dup = self.find_duplicate(loc, data.get("email"), data.get("phone"))
            if dup:
                raise APIError(400, "This location does not allow duplicated contacts.",
                               meta={"contactId": dup[0], "matchingField": dup[1]})
        ms = now_ms()
        contact: dict[str, Any] = {
            "id": new_id(), "name": None, "locationId": loc.location_id, "firstName": None, "lastName": None,
            "email": None, "emailLowerCase": None, "timezone": None, "companyName": None, "phone": None,
            "dnd": False, "dndSettings": {}, "type": "lead", "source": None, "assignedTo": None, "address1": None,
            "city": None, "state": None, "country": None, "postalCode": None, "website": None, "tags": [],
            "dateOfBirth": None, "dateAdded": iso_from_ms(ms), "dateUpdated": iso_from_ms(ms),
            "firstNameLowerCase": None, "lastNameLowerCase": None, "fullNameLowerCase": None,
            "customFields": [], "businessId": None, "followers": [], "attributionSource": None,
        }
        self._apply_fields(loc, contact, data, lenient)
        loc.add_contact(contact, (ms, ms), {})
        self._announce_contact("ContactCreate", loc, contact)
        return contact

    def touch(self, loc: LocationState, contact_id: str) -> None:
        """Set the contact's ``dateUpdated`` to now and invalidate search caches (a ``ContactUpdate`` event)."""
        self._touch(loc, contact_id)
        self._announce_contact("ContactUpdate", loc, loc.contacts[contact_id])

    def _touch(self, loc: LocationState, contact_id: str) -> None:
        ms = max(now_ms(), loc.times[contact_id][0])
        loc.times[contact_id] = (loc.times[contact_id][0], ms)
        loc.contacts[contact_id]["dateUpdated"] = iso_from_ms(ms)
        loc.changed(contact_id)

    def update_contact(self, contact_id: str, data: dict[str, Any], *, check_duplicates: bool = True,
                       lenient: bool = False) -> dict[str, Any]:
        """Apply an UpdateContactDto dict; duplicates are refused like on create (unless told not to check)."""
        loc = self.contact_location(contact_id)
        contact = loc.contacts[contact_id]
        if check_duplicates and not self.allow_duplicates(loc) and ("email" in data or "phone" in data):
            dup = self.find_duplicate(loc, data.get("email"), data.get("phone"), exclude=contact_id)
            if dup:
                raise APIError(400, "This location does not allow duplicated contacts.",
                               meta={"contactId": dup[0], "matchingField": dup[1]})
        before = copy.deepcopy(contact) if self._announcing() else None
        loc._index(contact, False)
        try:
            self._apply_fields(loc, contact, data, lenient)
        finally:  # a refused write leaves the contact, and so its index entries, as they were
            loc._index(contact, True)
        self._touch(loc, contact_id)
        if before is not None:
            self._announce_update(loc, contact, before)
        return contact

    def upsert_contact(self, loc: LocationState, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Update the contact matching email/phone (in the location's match order) or create one."""
        allow_new = bool(data.pop("createNewIfDuplicateAllowed", False)) and self.allow_duplicates(loc)
        dup = None if allow_new else self.find_duplicate(loc, data.get("email"), data.get("phone"))
        if dup is None:
            return self.create_contact(loc, data, check_duplicates=False), True
        contact_id, matched = dup
        other = "phone" if matched == "email" else "email"
        clash = self.find_duplicate(loc, data.get("email") if other == "email" else None,
                                    data.get("phone") if other == "phone" else None, exclude=contact_id)
        if clash is not None:
            data = {k: v for k, v in data.items() if k != other}  # ignore the second field, as HighLevel does
        return self.update_contact(contact_id, data), False

    def delete_contact(self, contact_id: str) -> None:
        """Delete a contact with its tasks, notes and appointments."""
        loc = self.contact_location(contact_id)
        self._announce_contact("ContactDelete", loc, loc.contacts[contact_id])  # no events for its tasks/notes
        contact = loc.contacts.pop(contact_id)
        loc._index(contact, False)
        del loc.times[contact_id]
        loc.extras.pop(contact_id, None)
        loc.tasks.drop_contact(contact_id)
        loc.notes.drop_contact(contact_id)
        loc.appointments_by_contact.pop(contact_id, None)
        loc.campaigns_by_contact.pop(contact_id, None)
        loc.workflows_by_contact.pop(contact_id, None)
        loc.changed(contact_id)

    def search(self, loc: LocationState, *, filters: list[Any] | None, sort: SortSpec, query: str | None,
               page: int, page_limit: int, search_after: list[Any] | None) -> tuple[list[dict[str, Any]], int]:
        """One page of ``POST /contacts/search``: search-shaped contacts (with ``searchAfter``) and the total."""
        src = loc.search_source()
        ids, total = self._search_ids(src, filters, sort, query, page, page_limit, search_after)
        out = []
        for cid in ids:
            c = src.contacts[cid]
            record = search_shape(c, src.extras.get(cid), loc.date_field_ids, self.strict)
            record["searchAfter"] = cursor_of(c, src.times[cid], sort)
            out.append(record)
        return out, total

    def search_json(self, loc: LocationState, *, filters: list[Any] | None, sort: SortSpec, query: str | None,
                    page: int, page_limit: int, search_after: list[Any] | None) -> bytes:
        """``search`` answered as the JSON body ``{"contacts": [...], "total": n}``, from cached contact JSON."""
        src = loc.search_source()
        ids, total = self._search_ids(src, filters, sort, query, page, page_limit, search_after)
        strict, date_ids = self.strict, loc.date_field_ids
        parts = []
        for cid in ids:
            cursor = ",".join(str(v) if type(v) is int else json.dumps(v, ensure_ascii=False)
                              for v in cursor_of(src.contacts[cid], src.times[cid], sort))
            record = _record_json(src, cid, strict, date_ids)
            parts.append(b"".join((record[:-1], b',"searchAfter":[', cursor.encode(), b"]}")))
        return b'{"contacts":[' + b",".join(parts) + b'],"total":' + str(total).encode() + b"}"

    def _search_ids(self, src: LocationState | SearchView, filters: list[Any] | None, sort: SortSpec,
                    query: str | None, page: int, page_limit: int,
                    search_after: list[Any] | None) -> tuple[list[str], int]:
        keys = src.index.matching(src.version, src.contacts, src.times, filters, sort, query)
        if search_after is not None:
            return page_after(keys, cursor_key(search_after, sort), page_limit), len(keys)
        start = (page - 1) * page_limit
        return [k[-1] for k in keys[start:start + page_limit]], len(keys)

    # -- tasks and notes --------------------------------------------------------------------------
    def render_task(self, loc: LocationState, task: dict[str, Any]) -> dict[str, Any]:
        """A task as the API shows it (timestamps only when the quirk is switched off)."""
        if self.config.tasks_without_updated_at:
            return dict(task)
        added, updated = loc.tasks.times[task["id"]]
        return {**task, "dateAdded": iso_from_ms(added), "dateUpdated": iso_from_ms(updated)}

    def _activity_changed(self, loc: LocationState, contact_id: str) -> None:
        if self.config.activity_touches_contact:
            self.touch(loc, contact_id)

    def get_task(self, contact_id: str, task_id: str) -> dict[str, Any]:
        """The task of that contact as the API shows it (404 naming what is missing)."""
        loc = self.contact_location(contact_id)
        return self.render_task(loc, loc.tasks.get(contact_id, task_id))

    def create_task(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create a task from CreateTaskParams."""
        loc = self.contact_location(contact_id)
        task = loc.tasks.add({"id": new_id(), "title": data["title"], "body": data.get("body"),
                              "assignedTo": data.get("assignedTo"), "dueDate": data["dueDate"],
                              "completed": bool(data["completed"]), "contactId": contact_id}, now_ms())
        self._activity_changed(loc, contact_id)
        self._announce_task("TaskCreate", loc, task)
        return self.render_task(loc, task)

    def update_task(self, contact_id: str, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateTaskBody / UpdateTaskStatusParams fields."""
        loc = self.contact_location(contact_id)
        was_completed = bool(loc.tasks.get(contact_id, task_id).get("completed"))
        task = loc.tasks.update(contact_id, task_id, data)
        self._activity_changed(loc, contact_id)
        if task.get("completed") and not was_completed:  # HighLevel has no event for other task edits
            self._announce_task("TaskComplete", loc, task)
        return self.render_task(loc, task)

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        """Tasks of a contact in creation order."""
        loc = self.contact_location(contact_id)
        return [self.render_task(loc, t) for t in loc.tasks.of_contact(contact_id)]

    def get_note(self, contact_id: str, note_id: str) -> dict[str, Any]:
        """The note of that contact (404 naming what is missing)."""
        return dict(self.contact_location(contact_id).notes.get(contact_id, note_id))

    def create_note(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create a note from NotesDTO."""
        loc = self.contact_location(contact_id)
        ms = now_ms()
        note = loc.notes.add({"id": new_id(), "body": data["body"], "userId": data.get("userId"),
                              "dateAdded": iso_from_ms(ms), "contactId": contact_id, "title": data.get("title"),
                              "color": data.get("color"), "pinned": bool(data.get("pinned", False))}, ms)
        self._activity_changed(loc, contact_id)
        self._announce_note("NoteCreate", loc, note)
        return dict(note)

    def update_note(self, contact_id: str, note_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateNoteDTO fields."""
        loc = self.contact_location(contact_id)
        note = loc.notes.update(contact_id, note_id, data)
        self._activity_changed(loc, contact_id)
        self._announce_note("NoteUpdate", loc, note)
        return dict(note)

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        """Notes of a contact in creation order."""
        return [dict(n) for n in self.contact_location(contact_id).notes.of_contact(contact_id)]

    def delete_activity(self, table: str, contact_id: str, item_id: str) -> None:
        """Delete a task (``table="tasks"``) or a note (``"notes"``) of a contact."""
        loc = self.contact_location(contact_id)
        activities = getattr(loc, table)
        item = activities.get(contact_id, item_id)
        added = activities.times[item_id][0]
        activities.delete(contact_id, item_id)
        self._activity_changed(loc, contact_id)
        if table == "tasks" and self._announcing():
            self.webhooks.emit("TaskDelete", loc.location_id, item_id, task_event_fields(item, added))
        elif table == "notes":
            self._announce_note("NoteDelete", loc, item)

    # -- dump ----------------------------------------------------------------------------------
    def dump(self, location_id: str | None = None, shape: str = "search") -> dict[str, list[dict[str, Any]]]:
        """Every contact, task, note and custom field of a location (default: the primary one): the
        source of truth to compare a sync target with.

        ``shape="search"`` (default): contacts as ``POST /contacts/search`` shows them (live mode:
        ``address``, ``dateOfBirth`` in epoch ms, the search-only fields; no ``searchAfter``, no
        lag), which is what a sync that reads through search holds. ``shape="get"``: as
        ``GET /contacts/{id}`` shows them. In strict spec mode both are the spec's shape.
        """
        if shape not in ("search", "get"):
            raise unprocessable(f"shape must be one of the following values: search, get (got {shape!r})")
        loc = self.location(location_id or self.primary_location_id)
        if shape == "search":
            contacts = [self.render_search(loc, cid) for cid in loc.contacts]
        else:
            contacts = [dict(self.render(loc, c)) for c in loc.contacts.values()]
        return {
            "locationId": loc.location_id,  # type: ignore[dict-item]
            "contacts": contacts,
            "tasks": [self.render_task(loc, t) for t in loc.tasks.items.values()],
            "notes": [dict(n) for n in loc.notes.items.values()],
            "customFields": [dict(cf) for cf in loc.custom_fields],
        }
