"""Every operation of contacts.json answers with the documented shape; duplicates, upsert and
validation behave like HighLevel."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ghl_sandbox.testing import SandboxServer

CONTACTS_JSON_OPERATIONS = {
    "search-contacts-advanced", "get-duplicate-contact", "get-all-tasks", "create-task", "get-task", "update-task",
    "delete-task", "update-task-completed", "get-appointments-for-contact", "add-tags", "remove-tags",
    "get-all-notes", "create-note", "get-note", "update-note", "delete-note", "create-association",
    "add-remove-contact-from-business", "get-contact", "update-contact", "delete-contact", "upsert-contact",
    "get-contacts-by-businessId", "add-followers-contact", "remove-followers-contact", "add-contact-to-campaign",
    "remove-contact-from-campaign", "remove-contact-from-every-campaign", "add-contact-to-workflow",
    "delete-contact-from-workflow", "create-contact", "get-contacts",
}


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def test_every_contacts_operation_answers_with_its_documented_shape(sandbox: SandboxServer, api: httpx.Client) -> None:
    loc = sandbox.location_id
    created = _ok(api.post("/contacts/", json={"locationId": loc, "firstName": "Zoë", "lastName": "Ångström",
                                                "email": "zoe@example.net", "phone": "+1 415-555-0134",
                                                "tags": ["VIP", " New "]}), 201)["contact"]
    cid = created["id"]
    assert created["tags"] == ["new", "vip"] and created["fullNameLowerCase"] == "zoë ångström"
    assert _ok(api.get(f"/contacts/{cid}"))["contact"]["email"] == "zoe@example.net"
    updated = _ok(api.put(f"/contacts/{cid}", json={"city": "Kraków"}))
    assert updated["succeded"] is True and updated["contact"]["city"] == "Kraków"
    dup = _ok(api.get("/contacts/search/duplicate", params={"locationId": loc, "number": "(415) 555-0134"}))
    assert dup["contact"]["id"] == cid
    up = _ok(api.post("/contacts/upsert", json={"locationId": loc, "email": "ZOE@example.net", "firstName": "Zoe"}))
    assert up["new"] is False and up["contact"]["id"] == cid and up["traceId"]
    assert _ok(api.post(f"/contacts/{cid}/tags", json={"tags": ["x1"]}), 201)["tags"] == ["new", "vip", "x1"]
    assert _ok(api.request("DELETE", f"/contacts/{cid}/tags", json={"tags": ["new"]}))["tags"] == ["vip", "x1"]
    task = _ok(api.post(f"/contacts/{cid}/tasks", json={"title": "Call", "dueDate": "2030-01-01T10:00:00.000Z",
                                                         "completed": False}), 201)["task"]
    assert set(task) == {"id", "title", "body", "assignedTo", "dueDate", "completed", "contactId"}
    assert _ok(api.get(f"/contacts/{cid}/tasks"))["tasks"] == [task]
    assert _ok(api.get(f"/contacts/{cid}/tasks/{task['id']}"))["task"] == task
    renamed = _ok(api.put(f"/contacts/{cid}/tasks/{task['id']}", json={"title": "Call back"}))["task"]
    assert renamed["title"] == "Call back"
    assert _ok(api.put(f"/contacts/{cid}/tasks/{task['id']}/completed", json={"completed": True}))["task"]["completed"]
    assert _ok(api.delete(f"/contacts/{cid}/tasks/{task['id']}"))["succeded"] is True
    note = _ok(api.post(f"/contacts/{cid}/notes", json={"body": "Café ☕ meeting"}), 201)["note"]
    assert note["contactId"] == cid and note["dateAdded"].endswith("Z")
    assert _ok(api.get(f"/contacts/{cid}/notes"))["notes"] == [note]
    assert _ok(api.get(f"/contacts/{cid}/notes/{note['id']}"))["note"]["body"] == "Café ☕ meeting"
    assert _ok(api.put(f"/contacts/{cid}/notes/{note['id']}", json={"pinned": True}))["note"]["pinned"] is True
    assert _ok(api.delete(f"/contacts/{cid}/notes/{note['id']}"))["succeded"] is True
    assert _ok(api.get(f"/contacts/{cid}/appointments"))["events"] == []
    fol = _ok(api.post(f"/contacts/{cid}/followers", json={"followers": ["u1", "u2"]}), 201)
    assert fol == {"followers": ["u1", "u2"], "followersAdded": ["u1", "u2"]}
    assert _ok(api.request("DELETE", f"/contacts/{cid}/followers", json={"followers": ["u1"]})) == {
        "followers": ["u2"], "followersRemoved": ["u1"]}
    assert _ok(api.post(f"/contacts/{cid}/campaigns/camp1", json={}), 201) == {"succeded": True}
    assert _ok(api.delete(f"/contacts/{cid}/campaigns/camp1")) == {"succeded": True}
    assert _ok(api.delete(f"/contacts/{cid}/campaigns/removeAll")) == {"succeded": True}
    assert _ok(api.post(f"/contacts/{cid}/workflow/wf1", json={"eventStartTime": "2030-01-01T00:00:00Z"})) == {
        "succeded": True}
    assert _ok(api.request("DELETE", f"/contacts/{cid}/workflow/wf1", json={})) == {"succeded": True}
    bulk = _ok(api.post("/contacts/bulk/tags/update/add", json={"locationId": loc, "contacts": [cid, "missing"],
                                                                 "tags": ["bulk"]}), 201)
    assert bulk["errorCount"] == 1 and bulk["succeded"] is False and "missing" in bulk["responses"][0]
    biz = _ok(api.post("/contacts/bulk/business", json={"locationId": loc, "ids": [cid], "businessId": "biz1"}))
    assert biz == {"success": True, "ids": [cid]}
    by_biz = _ok(api.get("/contacts/business/biz1", params={"locationId": loc}))
    assert [c["id"] for c in by_biz["contacts"]] == [cid] and by_biz["count"] == 1
    assert _ok(api.post("/contacts/search", json={"locationId": loc, "pageLimit": 1}))["total"] == 201
    legacy = _ok(api.get("/contacts/", params={"locationId": loc, "limit": 1}))
    assert set(legacy) == {"contacts", "count", "meta"}
    assert _ok(api.delete(f"/contacts/{cid}"))["succeded"] is True
    gone = api.get(f"/contacts/{cid}")  # as on the live API: 400 "Contact not found", not 404
    assert gone.status_code == 400 and gone.json()["message"] == "Contact not found"
    assert set(sandbox.admin.counters()["by_operation"]) == CONTACTS_JSON_OPERATIONS


def test_contacts_path_works_with_and_without_trailing_slash(sandbox: SandboxServer, api: httpx.Client) -> None:
    bare = _ok(api.get("/contacts", params={"locationId": sandbox.location_id, "limit": 5}))
    slash = _ok(api.get("/contacts/", params={"locationId": sandbox.location_id, "limit": 5}))
    assert bare["contacts"] == slash["contacts"]
    assert sandbox.admin.counters()["by_operation"] == {"get-contacts": 2}


def test_seeded_appointments_are_listed(sandbox: SandboxServer, api: httpx.Client) -> None:
    first = sandbox.admin.dump()["contacts"][0]["id"]  # every 5th seeded contact has one, starting with the first
    events = _ok(api.get(f"/contacts/{first}/appointments"))["events"]
    assert events and events[0]["contactId"] == first and events[0]["startTime"].endswith("Z")


def test_duplicate_email_is_refused_with_the_matching_contact(sandbox: SandboxServer, api: httpx.Client) -> None:
    existing = next(c for c in sandbox.admin.dump()["contacts"] if c["email"])
    r = api.post("/contacts/", json={"locationId": sandbox.location_id, "email": existing["email"].upper()})
    assert r.status_code == 400
    assert r.json()["message"] == "This location does not allow duplicated contacts."
    assert r.json()["meta"] == {"contactId": existing["id"], "matchingField": "email"}


def test_duplicates_allowed_per_location_setting(sandbox: SandboxServer, api: httpx.Client) -> None:
    existing = next(c for c in sandbox.admin.dump()["contacts"] if c["email"])
    sandbox.admin.set_location_settings(sandbox.location_id, allow_duplicates=True)
    r = api.post("/contacts/", json={"locationId": sandbox.location_id, "email": existing["email"]})
    assert r.status_code == 201 and r.json()["contact"]["id"] != existing["id"]
    up = _ok(api.post("/contacts/upsert", json={"locationId": sandbox.location_id, "email": existing["email"],
                                                 "createNewIfDuplicateAllowed": True}))
    assert up["new"] is True


def test_upsert_creates_when_nothing_matches_then_updates(sandbox: SandboxServer, api: httpx.Client) -> None:
    body = {"locationId": sandbox.location_id, "email": "new.person@example.org", "firstName": "Søren"}
    first = _ok(api.post("/contacts/upsert", json=body))
    second = _ok(api.post("/contacts/upsert", json={**body, "lastName": "Kierkegaard"}))
    assert first["new"] is True and second["new"] is False
    assert second["contact"]["id"] == first["contact"]["id"] and second["contact"]["lastName"] == "Kierkegaard"


def test_update_moves_date_updated_to_now(sandbox: SandboxServer, api: httpx.Client) -> None:
    contact = sandbox.admin.dump()["contacts"][0]
    after = _ok(api.put(f"/contacts/{contact['id']}", json={"firstName": "Renamed"}))["contact"]
    assert after["dateUpdated"] > contact["dateUpdated"] and after["dateAdded"] == contact["dateAdded"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"firstName": "No location"}, "locationId should not be empty"),
        ({"locationId": "LOC", "email": 42}, "email must be a string"),
        ({"locationId": "LOC", "nickname": "x"}, "property nickname should not exist"),
        ({"locationId": "LOC", "email": "not-an-email"}, "email must be an email"),
        ({"locationId": "LOC", "tags": "vip"}, "tags must be an array"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(sandbox: SandboxServer, api: httpx.Client, body: dict[str, Any],
                                              expected: str) -> None:
    body = {k: (sandbox.location_id if v == "LOC" else v) for k, v in body.items()}
    r = api.post("/contacts/", json=body)
    assert r.status_code == 422
    assert expected in r.json()["message"] and r.json()["error"] == "Unprocessable Entity"


def test_task_without_required_fields_is_422(sandbox: SandboxServer, api: httpx.Client) -> None:
    cid = sandbox.admin.dump()["contacts"][0]["id"]
    r = api.post(f"/contacts/{cid}/tasks", json={"title": "x"})
    assert r.status_code == 422
    assert set(r.json()["message"]) == {"dueDate should not be empty", "completed should not be empty"}
    bad_date = api.post(f"/contacts/{cid}/tasks", json={"title": "x", "dueDate": "tomorrow", "completed": False})
    assert bad_date.status_code == 422 and "dueDate must be an ISO-8601 date" in bad_date.json()["message"][0]


def test_unknown_contact_task_note_are_404_in_strict_spec_mode(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.admin.configure(strict_spec=True)  # the live default (400 "Contact not found"): test_sandbox_live_*
    cid = sandbox.admin.dump()["contacts"][0]["id"]
    assert api.get("/contacts/AAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert api.get(f"/contacts/{cid}/tasks/AAAAAAAAAAAAAAAAAAAA").json()["statusCode"] == 404
    assert api.delete(f"/contacts/{cid}/notes/AAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert api.get("/no/such/route").json()["message"] == "Cannot GET /no/such/route"
