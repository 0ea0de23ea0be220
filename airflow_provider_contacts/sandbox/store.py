"""In-memory CRM state of the sandbox: locations with their contacts, tasks, notes, custom fields.

All objects are kept API-shaped (the dicts the API answers with), so reads are cheap. The store is
only touched from the server's event loop (every route is ``async``), so it needs no locks.

Timestamps: ``dateUpdated`` is set to the wall clock on every change of a contact. With the
default quirks (``tasks_without_updated_at``, ``activity_touches_contact=False``) tasks show no
update timestamp and task/note changes do not move the contact's ``dateUpdated``, as on HighLevel.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from .activities import ActivityTable
from .config import SandboxConfig
from .dates import iso_from_ms, now_ms, parse_datetime_ms
from .errors import APIError, not_found, unprocessable
from .ids import new_id, seeded_id
from .search import SearchIndex, SortSpec, cursor_key, cursor_of, page_after
from .seed import SeedLocation, seed_location

CONTACT_INPUT_FIELDS = (
    "firstName", "lastName", "name", "email", "gender", "phone", "address1", "city", "state", "postalCode",
    "website", "timezone", "dnd", "dndSettings", "inboundDndSettings", "tags", "source", "dateOfBirth",
    "country", "companyName", "assignedTo",
)


TASK_FIELDS = ("title", "body", "assignedTo", "dueDate", "completed")
NOTE_FIELDS = ("body", "userId", "title", "color", "pinned")


def phone_digits(phone: str | None) -> str:
    """Digits of a phone number, for duplicate matching (``+1 (415) 555-0134`` -> ``14155550134``)."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-10:] if len(digits) >= 10 else digits


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
    json_cache: dict[str, bytes] = field(default_factory=dict)  # contact id -> its JSON, dropped on change

    def contact_json(self, contact_id: str) -> bytes:
        """The contact's compact JSON (cached until the contact changes)."""
        cached = self.json_cache.get(contact_id)
        if cached is None:
            cached = self.json_cache[contact_id] = json.dumps(
                self.contacts[contact_id], ensure_ascii=False, separators=(",", ":")).encode()
        return cached

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

    def add_contact(self, contact: dict[str, Any], times: tuple[int, int]) -> None:
        """Insert an API-shaped contact with its ``(added_ms, updated_ms)``."""
        self.contacts[contact["id"]] = contact
        self.times[contact["id"]] = times
        self._index(contact, True)
        self.version += 1

    def find_custom_field(self, ref: str) -> dict[str, Any] | None:
        """A custom field by id, ``fieldKey`` (``contact.x``) or bare key (``x``)."""
        for cf in self.custom_fields:
            if ref in (cf["id"], cf["fieldKey"], cf["fieldKey"].split(".", 1)[-1]):
                return cf
        return None


def location_from_seed(seed: SeedLocation, company_id: str, name: str) -> LocationState:
    """Build a ``LocationState`` from generated seed data."""
    loc = LocationState(seed.location_id, company_id, name, seed.users, custom_fields=seed.custom_fields)
    for contact, times in zip(seed.contacts, seed.contact_times):
        loc.add_contact(contact, times)
    for task, added in seed.tasks:
        loc.tasks.add(task, added)
    for note in seed.notes:
        loc.notes.add(note, parse_datetime_ms(note["dateAdded"], "dateAdded"))
    for appt in seed.appointments:
        loc.appointments_by_contact.setdefault(appt["contactId"], []).append(appt)
    return loc


class Store:
    """All locations of one agency (company), seeded from ``SandboxConfig``."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.company_id = seeded_id(rng)
        self.locations: dict[str, LocationState] = {}
        self._rng = rng
        for n in range(config.locations):
            self.add_location(config.contacts)
        self.primary_location_id = next(iter(self.locations))
        self.quirk_rng = random.Random(config.seed * 7919 + 1)

    # -- locations -----------------------------------------------------------------------------
    def add_location(self, contacts: int = 0) -> LocationState:
        """Seed a new location under the company (deterministic for the store's seed and order)."""
        seed = seed_location(self._rng, contacts, self.config.tasks_per_contact, self.config.notes_per_contact)
        loc = location_from_seed(seed, self.company_id, f"Sandbox Location {len(self.locations) + 1}")
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
        """The location holding ``contact_id`` (404 if no location has it)."""
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

    def _custom_values(self, loc: LocationState, items: list[dict[str, Any]] | None,
                       current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        merged = {cf["id"]: cf for cf in current}
        for i, item in enumerate(items or []):
            ref = item.get("id") or item.get("key")
            if not ref:
                raise unprocessable(f"customFields.{i}.id should not be empty (or give key)")
            cf = loc.find_custom_field(str(ref))
            if cf is None:
                raise unprocessable(
                    f"customFields.{i}: custom field {ref!r} does not exist in this location; "
                    "see GET /locations/{locationId}/customFields for ids and keys"
                )
            value = item.get("field_value", item.get("value"))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)  # CustomFieldSchema.value is a string (numbers come back as text)
            merged[cf["id"]] = {"id": cf["id"], "value": value}
        return list(merged.values())

    def _apply_fields(self, loc: LocationState, contact: dict[str, Any], data: dict[str, Any]) -> None:
        for key in CONTACT_INPUT_FIELDS:
            if key in data:
                contact[key] = data[key]
        if "tags" in data:
            contact["tags"] = sorted({t.strip().lower() for t in data["tags"] or [] if t and t.strip()})
        if "customFields" in data:
            contact["customFields"] = self._custom_values(loc, data["customFields"], contact.get("customFields") or [])
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
                       check_duplicates: bool = True) -> dict[str, Any]:
        """Create a contact from a CreateContactDto dict; 400 with ``meta`` on a forbidden duplicate."""
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
        self._apply_fields(loc, contact, data)
        loc.add_contact(contact, (ms, ms))
        return contact

    def touch(self, loc: LocationState, contact_id: str) -> None:
        """Set the contact's ``dateUpdated`` to now and invalidate search caches."""
        ms = max(now_ms(), loc.times[contact_id][0])
        loc.times[contact_id] = (loc.times[contact_id][0], ms)
        loc.contacts[contact_id]["dateUpdated"] = iso_from_ms(ms)
        loc.json_cache.pop(contact_id, None)
        loc.version += 1

    def update_contact(self, contact_id: str, data: dict[str, Any], *, check_duplicates: bool = True) -> dict[str, Any]:
        """Apply an UpdateContactDto dict; duplicates are refused like on create (unless told not to check)."""
        loc = self.contact_location(contact_id)
        contact = loc.contacts[contact_id]
        if check_duplicates and not self.allow_duplicates(loc) and ("email" in data or "phone" in data):
            dup = self.find_duplicate(loc, data.get("email"), data.get("phone"), exclude=contact_id)
            if dup:
                raise APIError(400, "This location does not allow duplicated contacts.",
                               meta={"contactId": dup[0], "matchingField": dup[1]})
        loc._index(contact, False)
        self._apply_fields(loc, contact, data)
        loc._index(contact, True)
        self.touch(loc, contact_id)
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
        contact = loc.contacts.pop(contact_id)
        loc.json_cache.pop(contact_id, None)
        loc._index(contact, False)
        del loc.times[contact_id]
        loc.tasks.drop_contact(contact_id)
        loc.notes.drop_contact(contact_id)
        loc.appointments_by_contact.pop(contact_id, None)
        loc.campaigns_by_contact.pop(contact_id, None)
        loc.workflows_by_contact.pop(contact_id, None)
        loc.version += 1

    def search(self, loc: LocationState, *, filters: list[Any] | None, sort: SortSpec, query: str | None,
               page: int, page_limit: int, search_after: list[Any] | None) -> tuple[list[dict[str, Any]], int]:
        """One page of ``POST /contacts/search``: contacts (with ``searchAfter``) and the total."""
        ids, total = self._search_ids(loc, filters, sort, query, page, page_limit, search_after)
        out = []
        for cid in ids:
            c = loc.contacts[cid]
            out.append({**c, "searchAfter": cursor_of(c, loc.times[cid], sort)})
        return out, total

    def search_json(self, loc: LocationState, *, filters: list[Any] | None, sort: SortSpec, query: str | None,
                    page: int, page_limit: int, search_after: list[Any] | None) -> bytes:
        """``search`` answered as the JSON body ``{"contacts": [...], "total": n}``, from cached contact JSON."""
        ids, total = self._search_ids(loc, filters, sort, query, page, page_limit, search_after)
        parts = []
        for cid in ids:
            cursor = ",".join(str(v) if type(v) is int else json.dumps(v, ensure_ascii=False)
                              for v in cursor_of(loc.contacts[cid], loc.times[cid], sort))
            parts.append(b"".join((loc.contact_json(cid)[:-1], b',"searchAfter":[', cursor.encode(), b"]}")))
        return b'{"contacts":[' + b",".join(parts) + b'],"total":' + str(total).encode() + b"}"

    def _search_ids(self, loc: LocationState, filters: list[Any] | None, sort: SortSpec, query: str | None,
                    page: int, page_limit: int, search_after: list[Any] | None) -> tuple[list[str], int]:
        keys = loc.index.matching(loc.version, loc.contacts, loc.times, filters, sort, query)
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
        return self.render_task(loc, task)

    def update_task(self, contact_id: str, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateTaskBody / UpdateTaskStatusParams fields."""
        loc = self.contact_location(contact_id)
        task = loc.tasks.update(contact_id, task_id, data)
        self._activity_changed(loc, contact_id)
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
        return dict(note)

    def update_note(self, contact_id: str, note_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateNoteDTO fields."""
        loc = self.contact_location(contact_id)
        note = loc.notes.update(contact_id, note_id, data)
        self._activity_changed(loc, contact_id)
        return dict(note)

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        """Notes of a contact in creation order."""
        return [dict(n) for n in self.contact_location(contact_id).notes.of_contact(contact_id)]

    def delete_activity(self, table: str, contact_id: str, item_id: str) -> None:
        """Delete a task (``table="tasks"``) or a note (``"notes"``) of a contact."""
        loc = self.contact_location(contact_id)
        getattr(loc, table).delete(contact_id, item_id)
        self._activity_changed(loc, contact_id)

    # -- dump ----------------------------------------------------------------------------------
    def dump(self, location_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every contact, task, note and custom field of a location (default: the primary one)."""
        loc = self.location(location_id or self.primary_location_id)
        return {
            "locationId": loc.location_id,  # type: ignore[dict-item]
            "contacts": [dict(c) for c in loc.contacts.values()],
            "tasks": [self.render_task(loc, t) for t in loc.tasks.items.values()],
            "notes": [dict(n) for n in loc.notes.items.values()],
            "customFields": [dict(cf) for cf in loc.custom_fields],
        }
