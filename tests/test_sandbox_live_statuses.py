"""By default the sandbox answers with the LIVE API's statuses and messages (ghl-live-notes.md,
"Statuses and error bodies"); ``strict_spec=True`` keeps the spec's own (404, 403 naming the scope)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ghl_sandbox.testing import SandboxServer

MISSING = "AAAAAAAAAAAAAAAAAAAA"
SCOPE_401 = "The token is not authorized for this scope."
AUTH_CLASS_401 = ("This authClass type is not allowed to access this scope. "
                  "Please verify your IAM configuration if this is not the case.")
LOCATION_403 = "The token does not have access to this location."


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def _bare(r: httpx.Response) -> dict[str, Any]:
    """The error body without its traceId (checked to match the header)."""
    body = r.json()
    assert body.pop("traceId") == r.headers["X-Trace-Id"]
    return body


def _contact_with_task_and_note(sandbox: SandboxServer) -> tuple[str, str, str]:
    dump = sandbox.admin.dump()
    noted = {n["contactId"]: n["id"] for n in dump["notes"]}
    task = next(t for t in dump["tasks"] if t["contactId"] in noted)
    return task["contactId"], task["id"], noted[task["contactId"]]


def test_unknown_contact_is_400_contact_not_found_on_every_contact_route(sandbox: SandboxServer,
                                                                         api: httpx.Client) -> None:
    calls = [
        api.get(f"/contacts/{MISSING}"),
        api.put(f"/contacts/{MISSING}", json={"city": "x"}),
        api.delete(f"/contacts/{MISSING}"),
        api.get(f"/contacts/{MISSING}/tasks"),
        api.post(f"/contacts/{MISSING}/notes", json={"body": "x"}),
        api.post(f"/contacts/{MISSING}/tags", json={"tags": ["x"]}),
        api.get(f"/contacts/{MISSING}/appointments"),
    ]
    for r in calls:
        assert r.status_code == 400, (r.request.method, r.request.url, r.text)
        assert _bare(r) == {"statusCode": 400, "message": "Contact not found"}


def test_unknown_task_and_note_are_400_not_found(sandbox: SandboxServer, api: httpx.Client) -> None:
    cid, tid, nid = _contact_with_task_and_note(sandbox)
    for r in (api.get(f"/contacts/{cid}/tasks/{MISSING}"), api.put(f"/contacts/{cid}/tasks/{MISSING}",
                                                                   json={"title": "x"}),
              api.put(f"/contacts/{cid}/tasks/{MISSING}/completed", json={"completed": True}),
              api.delete(f"/contacts/{cid}/tasks/{MISSING}")):
        assert r.status_code == 400 and _bare(r) == {"statusCode": 400, "message": "Task not found"}
    for r in (api.get(f"/contacts/{cid}/notes/{MISSING}"), api.put(f"/contacts/{cid}/notes/{MISSING}",
                                                                   json={"body": "x"}),
              api.delete(f"/contacts/{cid}/notes/{MISSING}")):
        assert r.status_code == 400 and _bare(r) == {"statusCode": 400, "message": "Note not found"}
    # a real task or note under another contact is not found either
    other = next(c["id"] for c in sandbox.admin.dump()["contacts"] if c["id"] != cid)
    assert api.get(f"/contacts/{other}/tasks/{tid}").json()["message"] == "Task not found"
    assert api.get(f"/contacts/{other}/notes/{nid}").json()["message"] == "Note not found"


def test_deleted_contact_task_and_note_are_400_not_found(sandbox: SandboxServer, api: httpx.Client) -> None:
    cid, tid, nid = _contact_with_task_and_note(sandbox)
    assert api.delete(f"/contacts/{cid}/tasks/{tid}").status_code == 200
    assert api.delete(f"/contacts/{cid}/notes/{nid}").status_code == 200
    assert _bare(api.get(f"/contacts/{cid}/tasks/{tid}")) == {"statusCode": 400, "message": "Task not found"}
    assert _bare(api.get(f"/contacts/{cid}/notes/{nid}")) == {"statusCode": 400, "message": "Note not found"}
    assert api.delete(f"/contacts/{cid}").status_code == 200
    gone = api.get(f"/contacts/{cid}")
    assert gone.status_code == 400 and _bare(gone) == {"statusCode": 400, "message": "Contact not found"}
    assert api.get(f"/contacts/{cid}/notes").json()["message"] == "Contact not found"
    assert api.get("/no/such/route").status_code == 404  # an unknown route is still 404


def test_token_without_the_scope_is_401_with_highlevels_message(sandbox: SandboxServer) -> None:
    no_tasks = sandbox.admin.issue_token(missing_scopes=["locations/tasks.readonly"])
    with sandbox.client(token=no_tasks) as api:
        refused = api.post(f"/locations/{sandbox.location_id}/tasks/search", json={})
        allowed = api.post("/contacts/search", json={"locationId": sandbox.location_id, "pageLimit": 1})
    assert refused.status_code == 401 and _bare(refused) == {"statusCode": 401, "message": SCOPE_401}
    assert allowed.status_code == 200
    readonly = sandbox.admin.issue_token(scopes=["contacts.readonly"])
    with sandbox.client(token=readonly) as api:
        write = api.post("/contacts/", json={"locationId": sandbox.location_id, "firstName": "No"})
        fields = api.get(f"/locations/{sandbox.location_id}/customFields")
    assert write.status_code == 401 and _bare(write) == {"statusCode": 401, "message": SCOPE_401}
    assert fields.status_code == 401 and fields.json()["message"] == SCOPE_401
    assert sandbox.admin.counters()["status_401"] == 3  # counted like every 401


def _agency_token(sandbox: SandboxServer) -> str:
    client_id, secret = sandbox.admin.create_oauth_client()
    code = sandbox.admin.authorize(client_id, user_type="Company")
    tokens = httpx.post(f"{sandbox.base_url}/oauth/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "authorization_code", "code": code,
        "user_type": "Company"})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()["access_token"]


def test_agency_token_on_a_location_endpoint_is_401_auth_class(sandbox: SandboxServer) -> None:
    agency = _agency_token(sandbox)
    cid = sandbox.admin.dump()["contacts"][0]["id"]
    with sandbox.client(token=agency) as api:
        answers = [
            api.post("/contacts/search", json={"locationId": sandbox.location_id}),
            api.get(f"/contacts/{cid}"),
            api.post(f"/locations/{sandbox.location_id}/tasks/search", json={}),
            api.get(f"/locations/{sandbox.location_id}/customFields"),
        ]
        exchanged = api.post("/oauth/locationToken", data={"companyId": sandbox.company_id,
                                                           "locationId": sandbox.location_id})
    for r in answers:
        assert r.status_code == 401 and _bare(r) == {"statusCode": 401, "message": AUTH_CLASS_401}
    assert exchanged.status_code == 201  # the live API has been seen answering 201 here
    with sandbox.client(token=sandbox.token) as api:  # a location token on the agency route
        wrong_class = api.post("/oauth/locationToken", data={"companyId": sandbox.company_id,
                                                             "locationId": sandbox.location_id})
    assert wrong_class.status_code == 401 and wrong_class.json()["message"] == AUTH_CLASS_401


def test_valid_token_on_another_locations_data_is_403(sandbox: SandboxServer, api: httpx.Client) -> None:
    other = sandbox.admin.add_location(contacts=3)
    theirs = sandbox.admin.dump(other)
    contact = theirs["contacts"][0]["id"]
    answers = [
        api.post("/contacts/search", json={"locationId": other}),
        api.get("/contacts/", params={"locationId": other}),
        api.post("/contacts/", json={"locationId": other, "firstName": "x"}),
        api.post(f"/locations/{other}/tasks/search", json={}),
        api.get(f"/locations/{other}/customFields"),
        api.get(f"/contacts/{contact}"),
        api.get(f"/contacts/{contact}/notes"),
        api.put(f"/contacts/{contact}", json={"city": "x"}),
        api.post("/contacts/search", json={"locationId": "NoSuchLocation000000"}),
    ]
    for r in answers:
        assert r.status_code == 403, (r.request.url, r.text)
        assert _bare(r) == {"statusCode": 403, "message": LOCATION_403}
    assert sandbox.admin.dump(other)["contacts"] == theirs["contacts"]  # nothing changed there


def test_strict_spec_mode_keeps_the_specs_statuses(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.admin.configure(strict_spec=True)
    cid, _, _ = _contact_with_task_and_note(sandbox)
    assert api.get(f"/contacts/{MISSING}").status_code == 404
    assert api.get(f"/contacts/{cid}/tasks/{MISSING}").status_code == 404
    readonly = sandbox.admin.issue_token(scopes=["contacts.readonly"])
    with sandbox.client(token=readonly) as ro:
        r = ro.post("/contacts/", json={"locationId": sandbox.location_id})
    assert r.status_code == 403 and r.json()["message"] == f"{SCOPE_401} Missing scope: contacts.write"
    other = sandbox.admin.add_location(contacts=1)
    assert api.get(f"/contacts/{sandbox.admin.dump(other)['contacts'][0]['id']}").status_code == 404
    assert api.post("/contacts/search", json={"locationId": "NoSuchLocation000000"}).status_code == 400
    with sandbox.client(token=_agency_token(sandbox)) as agency:
        assert agency.get(f"/contacts/?locationId={sandbox.location_id}").status_code == 403
        ok = agency.post("/oauth/locationToken", data={"companyId": sandbox.company_id,
                                                       "locationId": sandbox.location_id})
    assert ok.status_code == 200


def test_admin_surface_still_answers_404_for_missing_objects(sandbox: SandboxServer) -> None:
    from ghl_sandbox.client import SandboxAdminError

    with pytest.raises(SandboxAdminError) as err:
        sandbox.admin.delete_contact(MISSING)
    assert err.value.status == 404
