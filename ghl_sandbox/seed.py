"""Deterministic seed data: the same ``(seed, contacts)`` always yields the same ids, names and dates.

What a sync has to survive on a real location is all in here (``ghl-live-notes.md``):

* non-ASCII names, and a few text fields with unusual unicode (emoji with joiners, combining marks,
  right-to-left and bidi controls, zero-width and no-break spaces, full-width and astral letters,
  line breaks); emails in odd case; ~15% contacts without email, ~20% without phone, a few with
  neither;
* phones stored exactly as given, as HighLevel does (no numbering-plan validation): E.164
  (``+14155550134``), exchanges starting with 0 (``+12010710892``), national formats with
  punctuation (``(201) 555-0143``), extensions, international (``+44``, ``+49``, ``+91`` ...) and
  numbers outside any numbering plan (``+99912345678``, ``+1555012``);
* ``dateOfBirth`` on about half the contacts (1940-2006, so search shows negative epoch ms for
  many), stored as ``YYYY-MM-DD`` or ``YYYY-MM-DDT00:00:00.000Z`` as GET answers show both;
* per-location custom fields drawn from ``CUSTOM_FIELD_POOL`` (ids, sets and sometimes
  ``fieldKey`` suffixes differ from one location to the next; nothing a shipped mapping names is
  guaranteed to exist), with values of every data type (DATE values as epoch ms);
* the search-only fields (``businessName``, ``phoneLabel``, ``additionalEmails``,
  ``additionalPhones``, ``validEmail``), followers and DND settings;
* lower-cased tags, and tasks and notes with a long tail (about one contact in a hundred has 50+
  tasks and 50+ notes); some note bodies hold a NUL character (``\\u0000``), at least one per
  location that has notes.

Seed dates lie between 2022-01-01 and 2025-06-30 UTC.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
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
NUL_NOTE_BODY = "Imported from the old CRM:\u0000 original record kept as is"
"""A note body with a NUL character (HighLevel text can hold it; PostgreSQL text cannot)."""
UNUSUAL_COMPANIES = (
    "Zoë 👩\u200d💻 Studio", "Cafe\u0301 Noir", "\u202eevil\u202c Corp", "Ｆｕｌｌ Ｗｉｄｔｈ ＧｍｂＨ",
    "O\u2019Brien & Söhne", "Zero\u200bWidth Ltd", "𝔉𝔯𝔞𝔨𝔱𝔲𝔯 AG", "שלום בע״מ", "مرحبا للتجارة",
    "Line\nBreak Inc", "Flags 🇩🇪🇺🇸 GmbH", "No\u00a0Break\u00a0Co",
)
UNUSUAL_LAST_NAMES = ("D\u2019Arcy-Ørsted", "O\u0308zdemir", "Ἀλεξάνδρου", "Smith\u00a0Jr.", "🦄", "Nguyễn\u200d")
UNUSUAL_ADDRESSES = ("Straße 5\u00ad7", "1 Rue de l\u2019Église", "Flat 2\n10 Downing St", "東京都千代田区1-1")
PHONE_LABELS = ("mobile", "mobile", "home", "work", None)
FIXED_PHONES = {1: "+12010710892", 2: "+99912345678", 3: "+1555012", 4: "(201) 555-0143"}
"""Contact index -> phone: values a real location holds that a numbering-plan check would refuse."""

CUSTOM_FIELD_POOL: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Lead Score", "NUMERICAL", ()),
    ("Renewal Date", "DATE", ()),
    ("Interests", "MULTIPLE_OPTIONS", ("Yoga", "Running", "Cooking", "Travel", "Photography", "Gaming")),
    ("Preferred Contact Time", "SINGLE_OPTIONS", ("Morning", "Afternoon", "Evening")),
    ("Notes (internal)", "LARGE_TEXT", ()),
    ("Budget $", "MONETORY", ()),
    ("Has Pets?", "CHECKBOX", ("Dog", "Cat", "Other")),
    ("Referral Code", "TEXT", ()),
    ("Anniversary", "DATE", ()),
    ("Favourite Colour", "RADIO", ("Red", "Green", "Blue", "Türkis")),
    ("Team Size", "NUMERICAL", ()),
    ("Contract Value", "MONETORY", ()),
    ("T-Shirt Size", "SINGLE_OPTIONS", ("XS", "S", "M", "L", "XL")),
    ("Newsletter Topics", "CHECKBOX", ("Product news", "Events", "Offers")),
    ("Account Manager", "TEXT", ()),
    ("Last Purchase Date", "DATE", ()),
    ("Loyalty Tier", "SINGLE_OPTIONS", ("Bronze", "Silver", "Gold", "Platinum")),
    ("Website Visits", "NUMERICAL", ()),
    ("Emergency Contact Phone", "PHONE", ()),
    ("Código Postal", "TEXT", ()),
    ("Allergies / Dietary", "LARGE_TEXT", ()),
)
"""Custom fields a location may have: (name, dataType, options). Each location draws its own set."""
CUSTOM_FIELDS_PER_LOCATION = (6, 10)
LARGE_TEXTS = ("Called twice, no answer.\nTry again in March.", "VIP – handle with care ✨", "Kein Interesse an SMS.",
               "Línea 1\nLínea 2\nLínea 3", "")
TEXT_VALUES = ("Alpha", "ß-Test", "Ünïcödé", "  padded  ", "42", "N/A")
USER_IDS_COUNT = 5
DOB_START = date(1940, 1, 1).toordinal()
DOB_END = date(2006, 12, 31).toordinal()
DATE_FIELD_START_MS = 1_420_070_400_000  # 2015-01-01
DAY_MS = 86_400_000


@dataclass
class SeedLocation:
    """The seeded content of one location, API-shaped (see ``store.LocationState``).

    ``contact_extras`` holds, per contact, the fields only search answers show (live mode).
    """

    location_id: str
    users: list[str]
    custom_fields: list[dict[str, Any]]
    contacts: list[dict[str, Any]] = field(default_factory=list)
    contact_times: list[tuple[int, int]] = field(default_factory=list)
    contact_extras: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    appointments: list[dict[str, Any]] = field(default_factory=list)


_NOT_DECOMPOSABLE = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE", "æ": "ae",
                                   "Đ": "D", "đ": "d"})


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSABLE)).encode("ascii", "ignore").decode()


def _ascii_local_part(name: str) -> str:
    """``"Zoë.Ångström"`` -> ``"zoe.angstrom"``; names without Latin letters become ``"contact"``."""
    folded = _ascii_fold(name).lower()
    folded = "".join(ch for ch in folded if ch.isalnum() or ch == ".").strip(".")
    return folded if any(ch.isalpha() for ch in folded) else "contact"


def field_key(name: str) -> str:
    """HighLevel-style ``fieldKey`` of a custom field name: ``"Budget $"`` -> ``"contact.budget"``."""
    return "contact." + re.sub(r"[^a-z0-9]+", "_", _ascii_fold(name).lower()).strip("_")


def _phone(rng: random.Random) -> str:
    """A phone number as people type them: mostly ``+<country><number>``, some national, some odd."""
    area, mid, last = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    r = rng.random()
    if r < 0.30:
        return f"+1{area}{mid}{last:04d}"
    if r < 0.36:
        return f"+1{area}{rng.randint(0, 1)}{rng.randint(10, 99)}{last:04d}"  # exchange starting with 0 or 1
    if r < 0.46:
        return f"({area}) {mid}-{last:04d}"
    if r < 0.53:
        return f"+1 {area}-{mid}-{last:04d}"
    if r < 0.57:
        return f"{area}.{mid}.{last:04d}"
    if r < 0.62:
        return f"{area}{mid}{last:04d}"
    if r < 0.67:
        if rng.random() < 0.5:
            return f"({area}) {mid}-{last:04d} ext. {rng.randint(1, 9999)}"
        return f"+1{area}{mid}{last:04d} x{rng.randint(10, 999)}"
    if r < 0.74:
        return f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}" if rng.random() < 0.5 \
            else f"+447{rng.randint(100000000, 999999999)}"
    if r < 0.81:
        return f"+49 30 {rng.randint(1000000, 99999999)}" if rng.random() < 0.5 \
            else f"+4915{rng.randint(100000000, 999999999)}"
    if r < 0.88:
        return f"+91 {rng.randint(70000, 99999)} {rng.randint(10000, 99999)}" if rng.random() < 0.5 \
            else f"+91{rng.randint(7000000000, 9999999999)}"
    if r < 0.94:
        return rng.choice((f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} "
                           f"{rng.randint(10, 99)}", f"+5511{rng.randint(900000000, 999999999)}",
                           f"+81 90-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                           f"+61 4{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"))
    return rng.choice((f"+999{rng.randint(10000000, 99999999)}", f"+1555{rng.randint(100, 999)}",
                       f"+0{rng.randint(1000000, 9999999)}", f"{rng.randint(10000, 99999)}",
                       f"+1{area}{mid}{last:04d}{rng.randint(0, 99)}"))


def _long_tail_count(rng: random.Random, index: int, mean: float) -> int:
    """Mostly 0-3, with every ~100th contact getting 50-80 (the long tail)."""
    if mean <= 0:
        return 0
    if index % 97 == 13:
        return rng.randint(50, 80)
    return min(int(rng.expovariate(1.0 / mean)), 12)


def draw_custom_fields(rng: random.Random, location_id: str,
                       avoid: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """This location's custom field definitions: 6-10 drawn from ``CUSTOM_FIELD_POOL`` (another set
    than ``avoid``, the names of the previous location's), with their own ids, positions and
    occasionally a ``fieldKey`` suffix (a field deleted and made again)."""
    count = rng.randint(*CUSTOM_FIELDS_PER_LOCATION)
    picked = rng.sample(CUSTOM_FIELD_POOL, count)
    for _ in range(5):
        if frozenset(name for name, _, _ in picked) != avoid:
            break
        picked = rng.sample(CUSTOM_FIELD_POOL, count)
    fields = []
    for pos, (name, data_type, options) in enumerate(picked):
        key = field_key(name)
        if rng.random() < 0.15:
            key = f"{key}_{rng.randint(1, 9)}"
        fields.append({
            "id": seeded_id(rng),
            "name": name,
            "fieldKey": key,
            "placeholder": name,
            "dataType": data_type,
            "position": pos * 50,
            "picklistOptions": list(options),
            "picklistImageOptions": [],
            "isAllowedCustomOption": False,
            "isMultiFileAllowed": False,
            "maxFileLimit": 0,
            "locationId": location_id,
            "model": "contact",
        })
    return fields


def _custom_value(rng: random.Random, cf: dict[str, Any], users_first: str) -> Any:
    """A value of the field's data type, as the API stores it (DATE: epoch ms at midnight UTC)."""
    data_type, options = cf["dataType"], cf["picklistOptions"]
    if data_type == "NUMERICAL":
        return str(rng.randint(0, 100) if rng.random() < 0.9 else rng.randint(1000, 99999))
    if data_type == "MONETORY":
        return f"{rng.randint(0, 25000)}.{rng.choice(('00', '50', '99', '05'))}"
    if data_type == "DATE":
        start = DATE_FIELD_START_MS if cf["name"] != "Anniversary" else -315_619_200_000  # 1960-01-01
        return start + rng.randrange(0, 12 * 365) * DAY_MS
    if data_type in ("SINGLE_OPTIONS", "RADIO"):
        return rng.choice(options)
    if data_type in ("MULTIPLE_OPTIONS", "CHECKBOX"):
        return sorted(rng.sample(options, rng.randint(1, min(3, len(options)))))
    if data_type == "LARGE_TEXT":
        return rng.choice(LARGE_TEXTS)
    if data_type == "PHONE":
        return _phone(rng)
    if cf["name"] == "Referral Code":
        return f"REF-{rng.randint(1000, 9999)}"
    if cf["name"] == "Account Manager":
        return users_first
    return rng.choice(TEXT_VALUES)


def _date_of_birth(rng: random.Random) -> str:
    day = date.fromordinal(rng.randint(DOB_START, DOB_END)).isoformat()
    return day if rng.random() < 0.5 else f"{day}T00:00:00.000Z"


def _email(rng: random.Random, first: str, last: str, i: int) -> str:
    local = _ascii_local_part(f"{first}.{last}")
    r = rng.random()
    if r < 0.75:
        return f"{local}.{i}@example.com"
    if r < 0.87:
        return f"{local}{i}@Example.ORG"
    if r < 0.95:
        return f"{local.title()}.{i}@EXAMPLE.COM"
    return f"{local}+crm{i}@Mail.Example.net"


def _extras(rng: random.Random, email: str | None, phone: str | None, company: str | None,
            i: int) -> dict[str, Any]:
    """The fields only search answers show (``store.SEARCH_EXTRA_FIELDS``)."""
    extras: dict[str, Any] = {}
    r = rng.random()
    if r < 0.12:
        extras["businessName"] = company or rng.choice(COMPANIES[:6])
    if phone:
        extras["phoneLabel"] = rng.choice(PHONE_LABELS)
    if email:
        v = rng.random()
        extras["validEmail"] = True if v < 0.85 else (False if v < 0.95 else None)
        if rng.random() < 0.07:
            extras["additionalEmails"] = [{"email": f"{email.split('@')[0]}.alt{i}@example.net"}]
    if rng.random() < 0.05:
        extras["additionalPhones"] = [{"phone": _phone(rng), "phoneLabel": rng.choice(("work", "home"))}]
    return extras


def seed_location(rng: random.Random, count: int, tasks_mean: float, notes_mean: float,
                  avoid_fields: frozenset[str] = frozenset()) -> SeedLocation:
    """Generate one location's data from ``rng`` (deterministic for a given rng state)."""
    location_id = seeded_id(rng)
    users = [seeded_id(rng) for _ in range(USER_IDS_COUNT)]
    custom_fields = draw_custom_fields(rng, location_id, avoid_fields)
    loc = SeedLocation(location_id, users, custom_fields)
    step = SEED_SPAN_MS // max(count, 1)
    nul_note_done = False
    for i in range(count):
        cid = seeded_id(rng)
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES) if rng.random() > 0.02 else rng.choice(UNUSUAL_LAST_NAMES)
        added = SEED_START_MS + i * step + rng.randrange(max(step, 1))
        if i % 50 == 7 and i > 0:
            added = loc.contact_times[-1][0]  # same dateAdded as the previous contact: the id breaks the tie
        updated = added + rng.randrange(0, 400 * 86_400_000) if rng.random() < 0.6 else added
        updated = min(updated, SEED_START_MS + SEED_SPAN_MS)
        no_reach = i % 37 == 11  # a few contacts with neither email nor phone
        email = _email(rng, first, last, i) if rng.random() > 0.15 and not no_reach else None
        phone = _phone(rng) if rng.random() > 0.2 and not no_reach else None
        if i in FIXED_PHONES:
            phone = FIXED_PHONES[i]
        city, state, country, postal, tz = rng.choice(CITIES)
        tags = sorted(set(rng.sample(TAGS, rng.randrange(0, 4))))
        company = rng.choice(COMPANIES) if rng.random() > 0.04 else rng.choice(UNUSUAL_COMPANIES)
        address = None
        if rng.random() < 0.6:
            address = f"{rng.randint(1, 999)} Main St" if rng.random() > 0.03 else rng.choice(UNUSUAL_ADDRESSES)
        custom_values: list[dict[str, Any]] = [
            {"id": cf["id"], "value": _custom_value(rng, cf, rng.choice(FIRST_NAMES))}
            for cf in custom_fields if rng.random() < 0.45
        ]
        dnd = rng.random() < 0.05
        dnd_settings: dict[str, Any] = {}
        if dnd or rng.random() < 0.04:
            dnd_settings = {"SMS": {"status": "active" if dnd else "inactive", "message": "", "code": ""},
                            "Email": {"status": "inactive", "message": "", "code": ""}}
        followers = sorted(rng.sample(users, rng.randint(1, 2))) if rng.random() < 0.1 else []
        contact: dict[str, Any] = {
            "id": cid,
            "name": f"{first} {last}",
            "locationId": location_id,
            "firstName": first,
            "lastName": last,
            "email": email,
            "emailLowerCase": email.lower() if email else None,
            "timezone": tz,
            "companyName": company,
            "phone": phone,
            "dnd": dnd,
            "dndSettings": dnd_settings,
            "type": rng.choice(("lead", "customer")),
            "source": rng.choice(SOURCES),
            "assignedTo": rng.choice(users) if rng.random() < 0.5 else None,
            "address1": address,
            "city": city,
            "state": state,
            "country": country,
            "postalCode": postal,
            "website": None,
            "tags": tags,
            "dateOfBirth": _date_of_birth(rng) if rng.random() < 0.55 else None,
            "dateAdded": iso_from_ms(added),
            "dateUpdated": iso_from_ms(updated),
            "firstNameLowerCase": first.lower(),
            "lastNameLowerCase": last.lower(),
            "fullNameLowerCase": f"{first} {last}".lower(),
            "customFields": custom_values,
            "businessId": None,
            "followers": followers,
            "attributionSource": {"url": "https://example.com/landing", "medium": "form"} if i % 3 == 0 else None,
        }
        loc.contacts.append(contact)
        loc.contact_times.append((added, updated))
        loc.contact_extras.append(_extras(rng, email, phone, company, i))
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
            body = rng.choice(NOTE_BODIES) if rng.random() > 0.02 else NUL_NOTE_BODY
            if not nul_note_done:
                body, nul_note_done = NUL_NOTE_BODY, True
            loc.notes.append(
                {
                    "id": seeded_id(rng),
                    "body": body,
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
                    "calendarId": users[0],
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
