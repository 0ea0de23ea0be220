"""In-memory CRM state of the sandbox: locations with their contacts, tasks, notes, custom fields.

All objects are kept API-shaped (the dicts the API answers with), so reads are cheap. The store is
only touched from the server's event loop (every route is ``async``), so it needs no locks.

Timestamps: ``dateUpdated`` is set to the wall clock on every change of a contact. With the
default quirks (``tasks_without_updated_at``, ``activity_touches_contact=False``) tasks show no
update timestamp and task/note changes do not move the contact's ``dateUpdated``, as on HighLevel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

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
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_times: dict[str, tuple[int, int]] = field(default_factory=dict)
    tasks_by_contact: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    note_updated: dict[str, int] = field(default_factory=dict)
    notes_by_contact: dict[str, list[str]] = field(default_factory=dict)
    appointments_by_contact: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    campaigns_by_contact: dict[str, set[str]] = field(default_factory=dict)
    workflows_by_contact: dict[str, dict[str, str | None]] = field(default_factory=dict)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    by_email: dict[str, set[str]] = field(default_factory=dict)
    by_phone: dict[str, set[str]] = field(default_factory=dict)
    version: int = 0
    index: SearchIndex = field(default_factory=SearchIndex)

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
        self.tasks_by_contact.setdefault(contact["id"], [])
        self.notes_by_contact.setdefault(contact["id"], [])
        self._index(contact, True)
        self.version += 1

    def add_task(self, task: dict[str, Any], added_ms: int, updated_ms: int | None = None) -> None:
        """Insert a task (``task["contactId"]`` must exist)."""
        self.tasks[task["id"]] = task
        self.task_times[task["id"]] = (added_ms, updated_ms or added_ms)
        self.tasks_by_contact.setdefault(task["contactId"], []).append(task["id"])

    def add_note(self, note: dict[str, Any], updated_ms: int) -> None:
        """Insert a note (``note["contactId"]`` must exist)."""
        self.notes[note["id"]] = note
        self.note_updated[note["id"]] = updated_ms
        self.notes_by_contact.setdefault(note["contactId"], []).append(note["id"])

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
        loc.add_task(task, added)
    for note in seed.notes:
        loc.add_note(note, parse_datetime_ms(note["dateAdded"], "dateAdded"))
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

    def create_contact(self, loc: LocationState, data: dict[str, Any], *, check_duplicates: bool = True) -> dict[str, Any]:
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
        loc.version += 1

    def update_contact(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply an UpdateContactDto dict; duplicates are refused like on create."""
        loc = self.contact_location(contact_id)
        contact = loc.contacts[contact_id]
        if not self.allow_duplicates(loc) and ("email" in data or "phone" in data):
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
        loc._index(contact, False)
        del loc.times[contact_id]
        for tid in loc.tasks_by_contact.pop(contact_id, []):
            loc.tasks.pop(tid, None)
            loc.task_times.pop(tid, None)
        for nid in loc.notes_by_contact.pop(contact_id, []):
            loc.notes.pop(nid, None)
            loc.note_updated.pop(nid, None)
        loc.appointments_by_contact.pop(contact_id, None)
        loc.campaigns_by_contact.pop(contact_id, None)
        loc.workflows_by_contact.pop(contact_id, None)
        loc.version += 1

    def search(self, loc: LocationState, *, filters: list[Any] | None, sort: SortSpec, query: str | None,
               page: int, page_limit: int, search_after: list[Any] | None) -> tuple[list[dict[str, Any]], int]:
        """One page of ``POST /contacts/search``: contacts (with ``searchAfter``) and the total."""
        keys = loc.index.matching(loc.version, loc.contacts, loc.times, filters, sort, query)
        if search_after is not None:
            ids = page_after(keys, cursor_key(search_after, sort), page_limit)
        else:
            start = (page - 1) * page_limit
            ids = [k[-1] for k in keys[start:start + page_limit]]
        out = []
        for cid in ids:
            c = loc.contacts[cid]
            out.append({**c, "searchAfter": cursor_of(c, loc.times[cid], sort)})
        return out, len(keys)

    # -- tasks ---------------------------------------------------------------------------------
    def render_task(self, loc: LocationState, task: dict[str, Any]) -> dict[str, Any]:
        """A task as the API shows it (timestamps only when the quirk is switched off)."""
        if self.config.tasks_without_updated_at:
            return dict(task)
        added, updated = loc.task_times[task["id"]]
        return {**task, "dateAdded": iso_from_ms(added), "dateUpdated": iso_from_ms(updated)}

    def _activity_changed(self, loc: LocationState, contact_id: str) -> None:
        if self.config.activity_touches_contact:
            self.touch(loc, contact_id)

    def get_task(self, contact_id: str, task_id: str) -> tuple[LocationState, dict[str, Any]]:
        """The task of that contact (404 naming what is missing)."""
        loc = self.contact_location(contact_id)
        task = loc.tasks.get(task_id)
        if task is None or task["contactId"] != contact_id:
            raise not_found("Task", task_id)
        return loc, task

    def create_task(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create a task from CreateTaskParams."""
        loc = self.contact_location(contact_id)
        task = {"id": new_id(), "title": data["title"], "body": data.get("body"), "assignedTo": data.get("assignedTo"),
                "dueDate": data["dueDate"], "completed": bool(data["completed"]), "contactId": contact_id}
        loc.add_task(task, now_ms())
        self._activity_changed(loc, contact_id)
        return self.render_task(loc, task)

    def update_task(self, contact_id: str, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateTaskBody / UpdateTaskStatusParams fields."""
        loc, task = self.get_task(contact_id, task_id)
        for key in ("title", "body", "assignedTo", "dueDate", "completed"):
            if key in data:
                task[key] = data[key]
        loc.task_times[task_id] = (loc.task_times[task_id][0], now_ms())
        self._activity_changed(loc, contact_id)
        return self.render_task(loc, task)

    def delete_task(self, contact_id: str, task_id: str) -> None:
        """Delete a task."""
        loc, _ = self.get_task(contact_id, task_id)
        del loc.tasks[task_id]
        loc.task_times.pop(task_id, None)
        loc.tasks_by_contact[contact_id].remove(task_id)
        self._activity_changed(loc, contact_id)

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        """Tasks of a contact in creation order."""
        loc = self.contact_location(contact_id)
        return [self.render_task(loc, loc.tasks[t]) for t in loc.tasks_by_contact.get(contact_id, [])]

    # -- notes ---------------------------------------------------------------------------------
    def get_note(self, contact_id: str, note_id: str) -> tuple[LocationState, dict[str, Any]]:
        """The note of that contact (404 naming what is missing)."""
        loc = self.contact_location(contact_id)
        note = loc.notes.get(note_id)
        if note is None or note["contactId"] != contact_id:
            raise not_found("Note", note_id)
        return loc, note

    def create_note(self, contact_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create a note from NotesDTO."""
        loc = self.contact_location(contact_id)
        ms = now_ms()
        note = {"id": new_id(), "body": data["body"], "userId": data.get("userId"), "dateAdded": iso_from_ms(ms),
                "contactId": contact_id, "title": data.get("title"), "color": data.get("color"),
                "pinned": bool(data.get("pinned", False))}
        loc.add_note(note, ms)
        self._activity_changed(loc, contact_id)
        return dict(note)

    def update_note(self, contact_id: str, note_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply UpdateNoteDTO fields."""
        loc, note = self.get_note(contact_id, note_id)
        for key in ("body", "userId", "title", "color", "pinned"):
            if key in data:
                note[key] = data[key]
        loc.note_updated[note_id] = now_ms()
        self._activity_changed(loc, contact_id)
        return dict(note)

    def delete_note(self, contact_id: str, note_id: str) -> None:
        """Delete a note."""
        loc, _ = self.get_note(contact_id, note_id)
        del loc.notes[note_id]
        loc.note_updated.pop(note_id, None)
        loc.notes_by_contact[contact_id].remove(note_id)
        self._activity_changed(loc, contact_id)

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        """Notes of a contact in creation order."""
        loc = self.contact_location(contact_id)
        return [dict(loc.notes[n]) for n in loc.notes_by_contact.get(contact_id, [])]

    # -- dump ----------------------------------------------------------------------------------
    def dump(self, location_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Every contact, task, note and custom field of a location (default: the primary one)."""
        loc = self.location(location_id or self.primary_location_id)
        return {
            "locationId": loc.location_id,  # type: ignore[dict-item]
            "contacts": [dict(c) for c in loc.contacts.values()],
            "tasks": [self.render_task(loc, t) for t in loc.tasks.values()],
            "notes": [dict(n) for n in loc.notes.values()],
            "customFields": [dict(cf) for cf in loc.custom_fields],
        }
