"""An OAuth app installs, refreshes (each refresh token works once) and trades an agency token
for a location token, as on HighLevel."""

from __future__ import annotations

from typing import Any

import httpx

from airflow_provider_contacts.sandbox.testing import SandboxServer


def _token(sandbox: SandboxServer, **form: Any) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/oauth/token", data=form)


def test_authorization_code_then_refresh_rotation(sandbox: SandboxServer) -> None:
    client_id, secret = sandbox.admin.create_oauth_client(scopes=["contacts.readonly", "contacts.write"])
    code = sandbox.admin.authorize(client_id)
    first = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="authorization_code", code=code,
                   user_type="Location")
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert tokens["token_type"] == "Bearer" and tokens["userType"] == "Location"
    assert tokens["locationId"] == sandbox.location_id and tokens["expires_in"] == 86_400
    assert tokens["scope"] == "contacts.readonly contacts.write"
    with sandbox.client(token=tokens["access_token"]) as api:
        assert api.get(f"/contacts/?locationId={sandbox.location_id}").status_code == 200

    reused_code = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="authorization_code", code=code)
    assert reused_code.status_code == 400

    refreshed = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="refresh_token",
                       refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"] and new["access_token"] != tokens["access_token"]
    again = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="refresh_token",
                   refresh_token=tokens["refresh_token"])
    assert again.status_code == 400 and "refresh token is invalid" in again.json()["message"]
    assert _token(sandbox, client_id=client_id, client_secret=secret, grant_type="refresh_token",
                  refresh_token=new["refresh_token"]).status_code == 200
    assert sandbox.admin.counters()["by_operation"]["get-access-token"] == 5


def test_wrong_client_secret_is_401(sandbox: SandboxServer) -> None:
    client_id, _ = sandbox.admin.create_oauth_client()
    code = sandbox.admin.authorize(client_id)
    r = _token(sandbox, client_id=client_id, client_secret="wrong", grant_type="authorization_code", code=code)
    assert r.status_code == 401 and "client_secret" in r.json()["message"]
    missing = _token(sandbox, client_id=client_id, grant_type="authorization_code", code=code)
    assert missing.status_code == 422 and missing.json()["message"] == ["client_secret should not be empty"]


def test_oauth_access_tokens_expire_after_the_configured_lifetime(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(access_token_lifetime_s=0)
    client_id, secret = sandbox.admin.create_oauth_client()
    tokens = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="authorization_code",
                    code=sandbox.admin.authorize(client_id)).json()
    with sandbox.client(token=tokens["access_token"]) as api:
        assert api.get(f"/contacts/?locationId={sandbox.location_id}").json()["message"] == "Invalid JWT"
    sandbox.admin.configure(access_token_lifetime_s=3600)
    fresh = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="refresh_token",
                   refresh_token=tokens["refresh_token"]).json()
    with sandbox.client(token=fresh["access_token"]) as api:
        assert api.get(f"/contacts/?locationId={sandbox.location_id}").status_code == 200


def test_agency_token_is_exchanged_for_a_location_token(sandbox: SandboxServer) -> None:
    second = sandbox.admin.add_location(contacts=2)
    client_id, secret = sandbox.admin.create_oauth_client()
    code = sandbox.admin.authorize(client_id, user_type="Company")
    agency = _token(sandbox, client_id=client_id, client_secret=secret, grant_type="authorization_code", code=code,
                    user_type="Company").json()
    assert agency["userType"] == "Company" and "locationId" not in agency
    assert set(agency["approvedLocations"]) == {sandbox.location_id, second}
    with sandbox.client(token=agency["access_token"]) as api:
        refused = api.get(f"/contacts/?locationId={second}")  # agency tokens can't read contacts: live 401
        assert refused.status_code == 401 and refused.json()["message"].startswith("This authClass type")
        r = api.post("/oauth/locationToken", data={"companyId": agency["companyId"], "locationId": second})
        assert r.status_code == 201, r.text  # live; 200 in strict spec mode
        foreign = api.post("/oauth/locationToken", data={"companyId": "someone-else", "locationId": second})
        assert foreign.status_code == 400
    loc_token = r.json()
    assert loc_token["locationId"] == second and "oauth.write" not in loc_token["scope"]
    with sandbox.client(token=loc_token["access_token"]) as api:
        assert api.get("/contacts/", params={"locationId": second}).json()["count"] == 2


def test_location_token_route_refuses_location_tokens(sandbox: SandboxServer) -> None:
    with sandbox.client() as api:
        r = api.post("/oauth/locationToken", data={"companyId": sandbox.company_id, "locationId": sandbox.location_id})
    assert r.status_code == 401 and r.json()["message"].startswith("This authClass type is not allowed")
