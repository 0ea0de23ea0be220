"""Deterministic seed data: the same ``(seed, contacts)`` always yields the same ids, names and dates.

What a sync has to survive is all in here: non-ASCII names, contacts without email, phones in
mixed formats (``+1 415-555-0134``, ``(415) 555-0134``, ``4155550134``, ``+44 7911 123456``),
lower-cased tags, custom field values, and tasks and notes with a long tail (about one contact
in a hundred has 50+ tasks and 50+ notes). Seed dates lie between 2022-01-01 and 2025-06-30 UTC.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from .dates import iso_from_ms
from .ids import seeded_id

SEED_START_MS = 1_640_995_200_000  # 2022-01-01T00:00:00Z
SEED_SPAN_MS = 1_277 * 86_400_000  # to 2025-06-30

FIRST_NAMES = (
    "James", "María", "José", "Zoë", "Łukasz", "Søren", "François", "Nguyễn", "Ольга", "李",
    "Aiko", "Chloé", "Björn", "Mohammed", "Priya", "Siobhán", "Ana", "Dmitrij", "Renée", "Kwame",
    "Emily", "Noah", "Olivia", "Liam", "Ava", "Lucas", "Mia", "Ethan", "Sofía", "Jürgen",
)
LAST_NAMES = (
    "Smith", "García", "Müller", "O'Connor", "Kowalski", "Jørgensen", "Dubois", "Trần", "Иванова", "王",
    "Tanaka", "Núñez", "Åkesson", "Al-Farsi", "Patel", "Ní Bhriain", "Silva", "Petrov", "Lefèvre", "Mensah",
    "Johnson", "Brown", "Williams", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas",
)
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella GmbH", "Société Générale du Café", "北京科技", None, None)
CITIES = (
    ("San Francisco", "CA", "US", "94107", "America/Los_Angeles"),
    ("New York", "NY", "US", "10011", "America/New_York"),
    ("London", None, "GB", "SW1A 1AA", "Europe/London"),
    ("München", "BY", "DE", "80331", "Europe/Berlin"),
    ("São Paulo", "SP", "BR", "01310-100", "America/Sao_Paulo"),
    ("Kraków", None, "PL", "30-001", "Europe/Warsaw"),
    ("Tokyo", None, "JP", "100-0001", "Asia/Tokyo"),
    ("Austin", "TX", "US", "73301", "America/Chicago"),
)
TAGS = ("vip", "lead", "customer", "newsletter", "webinar-2024", "churn-risk", "partner", "trial", "ünïcode-tag")
SOURCES = ("website", "facebook", "google ads", "referral", "import", "api", None)
TASK_TITLES = ("Call back", "Send proposal", "Follow up on invoice", "Book demo", "Check in", "Rückruf vereinbaren")
NOTE_BODIES = (
    "Spoke on the phone, interested in the premium plan.",
    "Asked for a callback next week.",
    "Prefers email. Ne pas appeler avant 10h.",
    "Meeting notes: budget approved ✅",
    "Left voicemail.",
)
CUSTOM_FIELD_DEFS = (
    ("Pincode", "contact.pincode", "TEXT", []),
    ("Lead Score", "contact.lead_score", "NUMERICAL", []),
    ("Plan", "contact.plan", "SINGLE_OPTIONS", ["free", "pro", "enterprise"]),
    ("Renewal Date", "contact.renewal_date", "DATE", []),
    ("Interests", "contact.interests", "CHECKBOX", ["crm", "email", "sms", "ads"]),
    ("Notes (long)", "contact.notes_long", "LARGE_TEXT", []),
)
USER_IDS_COUNT = 5


@dataclass
class SeedLocation:
    """The seeded content of one location, API-shaped (see ``store.LocationState``)."""

    location_id: str
    users: list[str]
    custom_fields: list[dict[str, Any]]
    contacts: list[dict[str, Any]] = field(default_factory=list)
    contact_times: list[tuple[int, int]] = field(default_factory=list)
    tasks: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    appointments: list[dict[str, Any]] = field(default_factory=list)


_NOT_DECOMPOSABLE = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE", "æ": "ae",
                                   "Đ": "D", "đ": "d"})


def _ascii_local_part(name: str) -> str:
    """``"Zoë.Ångström"`` -> ``"zoe.angstrom"``; names without Latin letters become ``"contact"``."""
    folded = unicodedata.normalize("NFKD", name.translate(_NOT_DECOMPOSABLE)).encode("ascii", "ignore").decode().lower()
    folded = "".join(ch for ch in folded if ch.isalnum() or ch == ".").strip(".")
    return folded if any(ch.isalpha() for ch in folded) else "contact"


def _phone(rng: random.Random) -> str:
    area, mid, last = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    style = rng.randrange(5)
    if style == 0:
        return f"+1{area}{mid}{last:04d}"
    if style == 1:
        return f"+1 {area}-{mid}-{last:04d}"
    if style == 2:
        return f"({area}) {mid}-{last:04d}"
    if style == 3:
        return f"{area}{mid}{last:04d}"
    return f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"


def _long_tail_count(rng: random.Random, index: int, mean: float) -> int:
    """Mostly 0-3, with every ~100th contact getting 50-80 (the long tail)."""
    if mean <= 0:
        return 0
    if index % 97 == 13:
        return rng.randint(50, 80)
    return min(int(rng.expovariate(1.0 / mean)), 12)


def seed_location(rng: random.Random, count: int, tasks_mean: float, notes_mean: float) -> SeedLocation:
    """Generate one location's data from ``rng`` (deterministic for a given rng state)."""
    location_id = seeded_id(rng)
    users = [seeded_id(rng) for _ in range(USER_IDS_COUNT)]
    custom_fields = [
        {
            "id": seeded_id(rng),
            "name": name,
            "fieldKey": key,
            "placeholder": name,
            "dataType": data_type,
            "position": pos,
            "picklistOptions": list(options),
            "picklistImageOptions": [],
            "isAllowedCustomOption": False,
            "isMultiFileAllowed": False,
            "maxFileLimit": 0,
            "locationId": location_id,
            "model": "contact",
        }
        for pos, (name, key, data_type, options) in enumerate(CUSTOM_FIELD_DEFS)
    ]
    loc = SeedLocation(location_id, users, custom_fields)
    step = SEED_SPAN_MS // max(count, 1)
    for i in range(count):
        cid = seeded_id(rng)
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        added = SEED_START_MS + i * step + rng.randrange(max(step, 1))
        if i % 50 == 7 and i > 0:
            added = loc.contact_times[-1][0]  # same dateAdded as the previous contact: the id breaks the tie
        updated = added + rng.randrange(0, 400 * 86_400_000) if rng.random() < 0.6 else added
        updated = min(updated, SEED_START_MS + SEED_SPAN_MS)
        email = None
        if rng.random() > 0.15:
            local = _ascii_local_part(f"{first}.{last}")
            email = f"{local}.{i}@example.com" if rng.random() < 0.8 else f"{local}{i}@Example.ORG"
        phone = _phone(rng) if rng.random() > 0.2 else None
        city, state, country, postal, tz = rng.choice(CITIES)
        tags = sorted(set(rng.sample(TAGS, rng.randrange(0, 4))))
        custom_values: list[dict[str, Any]] = []
        if rng.random() < 0.7:
            custom_values.append({"id": custom_fields[0]["id"], "value": f"{rng.randint(10000, 99999)}"})
        if rng.random() < 0.5:
            custom_values.append({"id": custom_fields[1]["id"], "value": str(rng.randint(0, 100))})
        if rng.random() < 0.5:
            custom_values.append({"id": custom_fields[2]["id"], "value": rng.choice(["free", "pro", "enterprise"])})
        contact: dict[str, Any] = {
            "id": cid,
            "name": f"{first} {last}",
            "locationId": location_id,
            "firstName": first,
            "lastName": last,
            "email": email,
            "emailLowerCase": email.lower() if email else None,
            "timezone": tz,
            "companyName": rng.choice(COMPANIES),
            "phone": phone,
            "dnd": rng.random() < 0.05,
            "dndSettings": {},
            "type": rng.choice(("lead", "customer")),
            "source": rng.choice(SOURCES),
            "assignedTo": rng.choice(users) if rng.random() < 0.5 else None,
            "address1": f"{rng.randint(1, 999)} Main St" if rng.random() < 0.6 else None,
            "city": city,
            "state": state,
            "country": country,
            "postalCode": postal,
            "website": None,
            "tags": tags,
            "dateOfBirth": None,
            "dateAdded": iso_from_ms(added),
            "dateUpdated": iso_from_ms(updated),
            "firstNameLowerCase": first.lower(),
            "lastNameLowerCase": last.lower(),
            "fullNameLowerCase": f"{first} {last}".lower(),
            "customFields": custom_values,
            "businessId": None,
            "followers": [],
            "attributionSource": {"url": "https://example.com/landing", "medium": "form"} if i % 3 == 0 else None,
        }
        loc.contacts.append(contact)
        loc.contact_times.append((added, updated))
        for _ in range(_long_tail_count(rng, i, tasks_mean)):
            t_added = added + rng.randrange(0, 30 * 86_400_000)
            task = {
                "id": seeded_id(rng),
                "title": rng.choice(TASK_TITLES),
                "body": "Seeded task",
                "assignedTo": rng.choice(users),
                "dueDate": iso_from_ms(t_added + rng.randrange(1, 20) * 86_400_000),
                "completed": rng.random() < 0.4,
                "contactId": cid,
            }
            loc.tasks.append((task, t_added))
        for _ in range(_long_tail_count(rng, i + 1, notes_mean)):
            loc.notes.append(
                {
                    "id": seeded_id(rng),
                    "body": rng.choice(NOTE_BODIES),
                    "userId": rng.choice(users),
                    "dateAdded": iso_from_ms(added + rng.randrange(0, 60 * 86_400_000)),
                    "contactId": cid,
                    "title": None,
                    "color": None,
                    "pinned": False,
                }
            )
        if i % 5 == 0:
            start = added + 86_400_000 * rng.randint(1, 30)
            loc.appointments.append(
                {
                    "id": seeded_id(rng),
                    "calendarId": custom_fields[0]["id"],
                    "status": "booked",
                    "title": f"Demo with {first}",
                    "assignedUserId": rng.choice(users),
                    "notes": "",
                    "startTime": iso_from_ms(start),
                    "endTime": iso_from_ms(start + 1_800_000),
                    "address": "https://meet.example.com/demo",
                    "locationId": location_id,
                    "contactId": cid,
                    "groupId": None,
                    "appointmentStatus": "confirmed",
                    "users": [],
                    "dateAdded": iso_from_ms(added),
                    "dateUpdated": iso_from_ms(added),
                    "assignedResources": [],
                }
            )
    return loc
