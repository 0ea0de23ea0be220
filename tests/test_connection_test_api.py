"""Airflow's connection *Test* pressed on a new OAuth connection's form before *Save*, through a
real api-server (``POST /api/v2/connections/test``, what the UI sends).

The api-server runs the hook under a throwaway connection id. HighLevel refresh tokens are
single-use, so a refresh there would spend the token the user saves a moment later: the saved
connection would fail with ``invalid_grant`` at its first task and the app would have to be
re-authorised. The test of an unsaved form checks the client id and secret only; once saved, the
full test authenticates with the refresh token the first test left unspent.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from support.browser import api_request


def _api(cluster: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, answer = api_request(cluster.api_url, method, f"/api/v2{path}", body)
    if method == "POST" and path == "/connections" and status == 409:
        status = 201  # a resent create (api_request resends on a 500 "Database error") that had committed
    return status, answer


def test_test_before_save_keeps_the_refresh_token_the_connection_is_saved_with(airflow_cluster) -> None:
    cluster, sandbox = airflow_cluster, airflow_cluster.sandbox
    app = sandbox.admin.install_oauth_app()
    conn_id = f"ghl_unsaved_{uuid.uuid4().hex[:6]}"
    extra = {"auth_type": "oauth", "client_id": app["client_id"], "client_secret": app["client_secret"],
             "refresh_token": app["refresh_token"], "location_id": sandbox.location_id, "user_type": "Location",
             "rotation_store": "variable"}
    form = {"connection_id": conn_id, "conn_type": "ghl", "host": sandbox.base_url, "extra": json.dumps(extra)}
    before = sandbox.admin.oauth_stats()

    status, answer = _api(cluster, "POST", "/connections/test", form)
    assert status == 200, answer
    assert answer["status"] is True and "Save the connection" in answer["message"], answer
    assert sandbox.admin.oauth_stats()["refresh_grants"] == before["refresh_grants"]

    bad = {**form, "extra": json.dumps({**extra, "client_secret": "a-wrong-secret"})}
    status, answer = _api(cluster, "POST", "/connections/test", bad)
    assert status == 200 and answer["status"] is False and "client_secret" in answer["message"], answer

    status, created = _api(cluster, "POST", "/connections", form)
    assert status == 201, created
    try:
        status, answer = _api(cluster, "POST", "/connections/test", form)
        assert status == 200 and answer["status"] is True and "Connected to" in answer["message"], answer
        after = sandbox.admin.oauth_stats()
        assert after["refresh_grants"] == before["refresh_grants"] + 1, (before, after)
        assert after["refresh_token_reuses"] == before["refresh_token_reuses"], (before, after)
        leaked = [s for s in (app["client_secret"], app["refresh_token"]) if s in json.dumps(answer)]
        assert not leaked
    finally:
        _api(cluster, "DELETE", f"/connections/{conn_id}")
