"""Contact shapes differ by endpoint as on the live API: search has ``address`` and ``dateOfBirth`` in
epoch ms plus extra fields; ``GET /contacts/{id}`` keeps ``address1`` and a string ``dateOfBirth``;
strict spec mode shows the stored (spec) shape everywhere. The admin dump, the truth a sync target
is compared with, gives contacts in the search shape by default."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from airflow_provider_contacts.dates import parse_date
from ghl_sandbox.testing import SandboxServer

SEARCH_EXTRAS = ("businessName", "phoneLabel", "additionalEmails", "additionalPhones", "validEmail", "followers",
                 "dndSettings", "firstNameLowerCase", "lastNameLowerCase")


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def _search_all(api: httpx.Client, location_id: str) -> dict[str, dict[str, Any]]:
    r = api.post("/contacts/search", json={"locationId": location_id, "pageLimit": 500})
    assert r.status_code == 200, r.text
    return {c["id"]: c for c in r.json()["contacts"]}


def _ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400_000


def test_search_answers_in_the_live_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    found = _search_all(api, sandbox.location_id)
    stored = {c["id"]: c for c in sandbox.admin.dump(shape="get")["contacts"]}
    assert set(found) == set(stored)
    for cid, c in found.items():
        assert "address1" not in c and "address" in c
        assert c["address"] == stored[cid]["address1"]
        assert all(field in c for field in SEARCH_EXTRAS), sorted(set(SEARCH_EXTRAS) - set(c))
        assert isinstance(c["additionalEmails"], list) and isinstance(c["additionalPhones"], list)
        dob = stored[cid]["dateOfBirth"]
        if dob is None:
            assert c["dateOfBirth"] is None
        else:
            assert isinstance(dob, str) and type(c["dateOfBirth"]) is int
            assert c["dateOfBirth"] == _ms(parse_date(dob))
    births = [c["dateOfBirth"] for c in found.values() if c["dateOfBirth"] is not None]
    assert any(ms < 0 for ms in births) and any(ms > 0 for ms in births)  # before and after 1970
    assert any(c["businessName"] for c in found.values()) and any(c["phoneLabel"] for c in found.values())
    assert any(c["additionalEmails"] for c in found.values()) and any(c["followers"] for c in found.values())
    assert any(c["validEmail"] is False for c in found.values()) and any(c["dndSettings"] for c in found.values())
    assert all(c["validEmail"] is None for c in found.values() if not c["email"])


def test_get_contact_keeps_address1_and_a_string_date_of_birth(sandbox: SandboxServer, api: httpx.Client) -> None:
    stored = sandbox.admin.dump(shape="get")["contacts"]
    both_forms = {len(c["dateOfBirth"]) for c in stored if c["dateOfBirth"]}
    assert both_forms == {10, 24}  # "1990-09-25" and "1990-09-25T00:00:00.000Z"
    with_all = next(c for c in stored if c["address1"] and c["dateOfBirth"])
    got = api.get(f"/contacts/{with_all['id']}").json()["contact"]
    assert got["address1"] == with_all["address1"] and "address" not in got
    assert got["dateOfBirth"] == with_all["dateOfBirth"]
    assert not set(got) & {"businessName", "phoneLabel", "additionalEmails", "validEmail"}
    legacy = api.get("/contacts/", params={"locationId": sandbox.location_id, "limit": 100}).json()["contacts"]
    assert all("address1" in c and "address" not in c for c in legacy)  # documented with ContactsSearchSchema
    assert all(isinstance(c["dateOfBirth"], (str, type(None))) for c in legacy)


def test_written_contact_shows_each_endpoints_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    r = api.post("/contacts/", json={"locationId": sandbox.location_id, "firstName": "Ada", "lastName": "Byron",
                                     "address1": "12 St James's Sq", "dateOfBirth": "12/10/1815"})
    assert r.status_code == 201, r.text
    created = r.json()["contact"]
    assert created["address1"] == "12 St James's Sq" and created["dateOfBirth"] == "1815-12-10T00:00:00.000Z"
    found = api.post("/contacts/search", json={"locationId": sandbox.location_id, "query": "ada byron"}).json()
    (hit,) = found["contacts"]
    assert hit["address"] == "12 St James's Sq" and hit["dateOfBirth"] == _ms(date(1815, 12, 10)) < 0
    assert hit["firstNameLowerCase"] == "ada" and hit["lastNameLowerCase"] == "byron"
    assert hit["additionalEmails"] == [] and hit["validEmail"] is None and hit["searchAfter"][-1] == created["id"]


def test_search_filters_take_the_live_field_names(sandbox: SandboxServer, api: httpx.Client) -> None:
    stored = sandbox.admin.dump(shape="get")["contacts"]
    someone = next(c for c in stored if c["address1"] and c["dateOfBirth"])

    def ids(filters: list[dict[str, Any]]) -> set[str]:
        body = {"locationId": sandbox.location_id, "pageLimit": 500, "filters": filters}
        return {c["id"] for c in api.post("/contacts/search", json=body).json()["contacts"]}

    assert someone["id"] in ids([{"field": "address", "operator": "eq", "value": someone["address1"]}])
    day = parse_date(someone["dateOfBirth"])
    born = ids([{"field": "dateOfBirth", "operator": "eq", "value": day.isoformat()}])
    assert someone["id"] in born
    assert born == {c["id"] for c in stored if c["dateOfBirth"] and parse_date(c["dateOfBirth"]) == day}
    before_1970 = ids([{"field": "dateOfBirth", "operator": "range", "value": {"lt": "1970-01-01"}}])
    assert before_1970 == {c["id"] for c in stored if c["dateOfBirth"] and parse_date(c["dateOfBirth"]).year < 1970}


def test_strict_spec_mode_shows_the_stored_shape_in_search(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.admin.configure(strict_spec=True)
    found = _search_all(api, sandbox.location_id)
    stored = {c["id"]: c for c in sandbox.admin.dump(shape="get")["contacts"]}
    assert all("address1" in c and "address" not in c and "businessName" not in c for c in found.values())
    assert all(found[cid]["dateOfBirth"] == stored[cid]["dateOfBirth"] for cid in found)
    assert {k: v for k, v in next(iter(found.values())).items() if k != "searchAfter"} == stored[next(iter(found))]
    sandbox.admin.configure(strict_spec=False)  # and back: the cached JSON follows the mode
    assert all("address" in c for c in _search_all(api, sandbox.location_id).values())


def test_dump_and_truth_give_the_search_shape_by_default(sandbox: SandboxServer, api: httpx.Client) -> None:
    truth = sandbox.truth()
    found = _search_all(api, sandbox.location_id)
    assert [c["id"] for c in truth["contacts"]] and len(truth["contacts"]) == len(found)
    for c in truth["contacts"]:
        assert c == {k: v for k, v in found[c["id"]].items() if k != "searchAfter"}
    assert sandbox.admin.dump() == truth
    get_shaped = sandbox.truth(shape="get")["contacts"]
    assert all("address1" in c and "address" not in c for c in get_shaped)
    assert truth["tasks"] == sandbox.truth(shape="get")["tasks"]
    assert all({"id", "name", "fieldKey", "dataType"} <= set(f) for f in truth["customFields"])
    with pytest.raises(Exception, match="shape"):
        sandbox.admin.dump(shape="xml")
