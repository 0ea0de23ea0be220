"""The seed looks like a real location: phones stored as typed (no numbering-plan check), odd-case
emails, contacts without email or phone, unusual unicode, a NUL in a note body, and custom fields
that differ per location and name nothing a shipped mapping could rely on."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from ghl_sandbox.config import SandboxConfig
from ghl_sandbox.seed import CUSTOM_FIELD_POOL, FIXED_PHONES
from ghl_sandbox.state import SandboxState
from ghl_sandbox.testing import SandboxServer

SHIPPED_MAPPING_NAMES = {"Pincode", "Plan", "pincode", "plan"}


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def test_phones_are_a_realistic_mix_stored_as_given(sandbox: SandboxServer) -> None:
    phones = [c["phone"] for c in sandbox.admin.dump(shape="get")["contacts"] if c["phone"]]
    assert set(FIXED_PHONES.values()) <= set(phones)
    assert {"+12010710892", "+99912345678", "+1555012", "(201) 555-0143"} <= set(phones)
    assert any(re.fullmatch(r"\+1\d{3}[01]\d{6}", p) for p in phones)  # exchanges starting with 0 or 1
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in phones)  # national, with punctuation
    assert any("ext." in p or re.search(r" x\d+$", p) for p in phones)  # extensions
    for prefix in ("+44", "+49", "+91"):
        assert any(p.startswith(prefix) for p in phones), prefix
    assert any(re.fullmatch(r"\+1\d{10}", p) for p in phones)  # plain E.164, the most common form


def test_api_stores_any_phone_exactly_as_given(sandbox: SandboxServer, api: httpx.Client) -> None:
    for phone in ("+12010710892", "+99912345678", "+1555012", "(201) 555-0143 ext. 7", "+49 (0)30 1234-567"):
        r = api.post("/contacts/", json={"locationId": sandbox.location_id, "phone": phone, "firstName": "P"})
        if r.status_code == 400:  # a seeded contact has the same number: it names that one
            cid = r.json()["meta"]["contactId"]
            assert api.get(f"/contacts/{cid}").json()["contact"]["phone"] == phone
            continue
        assert r.status_code == 201, r.text
        cid = r.json()["contact"]["id"]
        assert api.get(f"/contacts/{cid}").json()["contact"]["phone"] == phone
        found = api.post("/contacts/search", json={"locationId": sandbox.location_id, "pageLimit": 500,
                                                   "filters": [{"field": "id", "operator": "eq", "value": cid}]})
        assert found.json()["contacts"][0]["phone"] == phone


def test_emails_in_odd_case_and_contacts_without_email_or_phone(sandbox: SandboxServer) -> None:
    contacts = sandbox.admin.dump(shape="get")["contacts"]
    emails = [c["email"] for c in contacts if c["email"]]
    assert any(e != e.lower() for e in emails) and any(e.split("@")[1].isupper() for e in emails)
    assert all(c["emailLowerCase"] == c["email"].lower() for c in contacts if c["email"])
    assert any(c["email"] is None and c["phone"] is None for c in contacts)
    assert sum(c["email"] is None for c in contacts) >= 15 and sum(c["phone"] is None for c in contacts) >= 20


def test_unusual_unicode_and_a_nul_in_a_note_body(sandbox: SandboxServer, api: httpx.Client) -> None:
    dump = sandbox.admin.dump(shape="get")
    texts = [c[k] or "" for c in dump["contacts"] for k in ("companyName", "lastName", "address1")]
    odd = re.compile("[\u200b-\u200f\u202a-\u202e\u00a0\u0300-\u036f\n]|[\U00010000-\U0010ffff]")
    unusual = [t for t in texts if odd.search(t)]
    assert len(unusual) >= 3
    nul_notes = [n for n in dump["notes"] if "\u0000" in n["body"]]
    assert nul_notes
    note = nul_notes[0]
    r = api.get(f"/contacts/{note['contactId']}/notes/{note['id']}")
    assert r.status_code == 200 and "\\u0000" in r.text and r.json()["note"]["body"] == note["body"]


def test_custom_fields_differ_per_location_and_avoid_shipped_names(sandbox_factory) -> None:
    sb = sandbox_factory(locations=3, contacts=40)
    locations = sb.admin.info()["locations"]
    pool_names = {name for name, _, _ in CUSTOM_FIELD_POOL}
    sets = []
    for loc in locations:
        with sb.client(token=sb.admin.location_token(loc)) as api:
            fields = api.get(f"/locations/{loc}/customFields").json()["customFields"]
        names = {f["name"] for f in fields}
        assert names <= pool_names and not names & SHIPPED_MAPPING_NAMES
        assert 6 <= len(fields) <= 10
        for f in fields:
            assert f["dataType"] and f["locationId"] == loc and re.fullmatch(r"contact\.[a-z0-9_]+", f["fieldKey"])
        sets.append((names, {f["id"] for f in fields}))
    assert len({frozenset(n) for n, _ in sets}) > 1, "locations draw different custom fields"
    all_ids = [i for _, ids in sets for i in ids]
    assert len(all_ids) == len(set(all_ids)), "custom field ids are per location"


def test_custom_field_values_of_every_type(sandbox: SandboxServer) -> None:
    dump = sandbox.admin.dump(shape="get")
    types = {f["id"]: f["dataType"] for f in dump["customFields"]}
    values = [(types[v["id"]], v["value"]) for c in dump["contacts"] for v in c["customFields"]]
    assert values
    for data_type, value in values:
        if data_type == "DATE":
            assert type(value) is int  # epoch ms, as the live API answers DATE fields
        elif data_type in ("CHECKBOX", "MULTIPLE_OPTIONS"):
            assert isinstance(value, list) and value
        else:
            assert isinstance(value, str)


def test_seed_is_deterministic_per_seed_and_differs_between_seeds() -> None:
    one, two, other = (SandboxState(SandboxConfig(seed=s, contacts=60)) for s in (5, 5, 6))
    assert one.store.dump() == two.store.dump()
    assert one.store.dump()["customFields"] != other.store.dump()["customFields"]
    assert [c["phone"] for c in one.store.dump()["contacts"]] != [c["phone"] for c in other.store.dump()["contacts"]]


@pytest.mark.slow
def test_seeding_20000_contacts_stays_fast() -> None:
    started = time.process_time()
    state = SandboxState(SandboxConfig(contacts=20_000))
    spent = time.process_time() - started
    assert len(state.store.dump()["contacts"]) == 20_000
    assert spent < 10, f"seeding 20,000 contacts took {spent:.1f} s of CPU"
