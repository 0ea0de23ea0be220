"""An OAuth app installs, refreshes (each refresh token works once) and trades an agency token
for a location token, as on HighLevel."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ghl_sandbox.testing import SandboxServer


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


def test_reused_and_unknown_refresh_tokens_are_counted(sandbox: SandboxServer) -> None:
    app = sandbox.admin.install_oauth_app()
    form = {"client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "refresh_token"}
    assert _token(sandbox, **form, refresh_token=app["refresh_token"]).status_code == 200
    for _ in range(2):  # a spent refresh token, presented twice more
        assert _token(sandbox, **form, refresh_token=app["refresh_token"]).json()["error"] == "invalid_grant"
    assert _token(sandbox, **form, refresh_token="sbx-rt-never-issued-by-this-sandbox").status_code == 400
    oauth = sandbox.admin.oauth_stats()
    assert oauth == {"access_tokens_issued": 2, "authorization_code_grants": 1, "refresh_grants": 1,
                     "refresh_token_reuses": 2, "unknown_refresh_tokens": 1, "expired_access_token_calls": 0,
                     "invalid_grants": 3}
    sandbox.admin.reset_counters()
    assert sandbox.admin.oauth_stats()["refresh_token_reuses"] == 0
    # Spent tokens stay spent (and known as such) after the counters are reset.
    _token(sandbox, **form, refresh_token=app["refresh_token"])
    assert sandbox.admin.oauth_stats()["refresh_token_reuses"] == 1


def test_access_tokens_can_expire_every_few_seconds_and_late_calls_are_counted(sandbox: SandboxServer) -> None:
    import time

    sandbox.admin.configure(access_token_lifetime_s=2)
    app = sandbox.admin.install_oauth_app()
    assert app["expires_in"] == 2 and app["access_token"].startswith("sbx-at-")
    refreshed = _token(sandbox, client_id=app["client_id"], client_secret=app["client_secret"],
                       grant_type="refresh_token", refresh_token=app["refresh_token"]).json()
    assert refreshed["expires_in"] == 2
    sandbox.admin.configure(access_token_lifetime_s=0.4)  # below a second: expires_in still says 1
    short = sandbox.admin.install_oauth_app()
    assert short["expires_in"] == 1
    time.sleep(0.5)
    with sandbox.client(token=short["access_token"]) as api:
        assert api.get(f"/contacts/?locationId={sandbox.location_id}").status_code == 401
    assert sandbox.admin.oauth_stats()["expired_access_token_calls"] == 1
    assert sandbox.admin.counters()["status_401"] == 1


def test_an_install_in_one_step_is_never_faulted(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["503"])
    app = sandbox.admin.install_oauth_app(scopes=["contacts.readonly"])
    assert app["scope"] == "contacts.readonly" and app["locationId"] == sandbox.location_id
    assert app["refresh_token"].startswith("sbx-rt-") and app["client_secret"]
    agency = sandbox.admin.install_oauth_app(user_type="Company")
    assert agency["userType"] == "Company" and "locationId" not in agency
    assert sandbox.admin.counters()["total"] == 0
    conn = json.loads(sandbox.oauth_conn_json(app, token_store="file:/tmp/x.json"))
    assert conn["extra"]["auth_type"] == "oauth" and conn["extra"]["refresh_token"] == app["refresh_token"]
    assert conn["extra"]["token_store"] == "file:/tmp/x.json" and conn["host"] == sandbox.base_url


def test_token_leaks_finds_every_kind_of_sandbox_token_without_quoting_it(sandbox: SandboxServer) -> None:
    from ghl_sandbox.testing import token_leaks

    app = sandbox.admin.install_oauth_app()
    text = (f"Bearer {sandbox.token} then access={app['access_token']} refresh={app['refresh_token']} "
            f"secret={app['client_secret']}")
    found = token_leaks(text, secrets=[app["client_secret"]])
    assert [f.split(" at ")[0] for f in found] == ["private integration token", "access token", "refresh token",
                                                    "secret #0"]
    assert not any(secret in " ".join(found) for secret in (sandbox.token, app["access_token"], app["refresh_token"]))
    assert token_leaks("pit-*** sbx-at-*** Bearer *** nothing here") == []
