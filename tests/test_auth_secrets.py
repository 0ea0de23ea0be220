"""Tokens and secrets never reach logs, printed output, exception messages or reprs - also on errors.
And ``test_connection`` tells the user what is wrong in words they can act on."""

from __future__ import annotations

import json
import logging
import socket

import pytest
import requests

from airflow_provider_contacts.errors import GHLAuthError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.retry import RetryPolicy
from test_auth_oauth import _fresh_process_state, install_app  # noqa: F401 - autouse fixture, marketplace install


def test_no_secret_in_logs_output_errors_or_reprs(sandbox, monkeypatch, tmp_path, caplog, capsys) -> None:
    app = install_app(sandbox)
    conn = {
        "conn_type": "ghl",
        "host": sandbox.base_url,
        "password": app["access_token"],
        "extra": {
            "location_id": sandbox.location_id, "auth_type": "oauth", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "refresh_token": app["refresh_token"],
            "rotation_store": f"file:{tmp_path}/tokens.json",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_GHL_SECRETS", json.dumps(conn))
    sandbox.admin.configure(access_token_lifetime_s=1)
    secrets = {app["access_token"], app["refresh_token"], app["client_secret"], sandbox.token}
    texts: list[str] = []

    with caplog.at_level(logging.DEBUG):
        hook = ContactsHook("ghl_secrets")
        hook.search_contacts(page_limit=1)  # seeds, uses the connection's token
        hook.token_source.on_unauthorized(hook.token_source.get_access_token())  # forced refresh
        hook.search_contacts(page_limit=1)
        stored = hook.token_source.current_tokens()
        secrets |= {stored.access_token, stored.refresh_token}
        texts += [repr(hook.token_source), repr(stored), str(stored), repr(hook.settings)]

        # A failing refresh (the stored refresh token was revoked) must not leak either.
        requests.post(
            f"{sandbox.base_url}/oauth/token",
            data={"client_id": app["client_id"], "client_secret": app["client_secret"],
                  "grant_type": "refresh_token", "refresh_token": stored.refresh_token},
            timeout=10,
        )
        with pytest.raises(GHLAuthError) as refresh_error:
            hook.token_source.on_unauthorized(hook.token_source.get_access_token())
        texts += [str(refresh_error.value), repr(refresh_error.value)]

        # A private token that the API rejects.
        monkeypatch.setenv("AIRFLOW_CONN_GHL_BADTOKEN", sandbox.conn_json())
        bad = ContactsHook("ghl_badtoken")
        bad.token_source._token = "pit-wrong-" + sandbox.token  # noqa: SLF001 - a rejected token
        secrets.add(bad.token_source._token)  # noqa: SLF001
        with pytest.raises(GHLAuthError) as api_error:
            bad.get_contacts(limit=1)
        texts += [str(api_error.value), repr(bad.token_source)]

    out, err = capsys.readouterr()
    texts += [caplog.text, out, err] + [r.getMessage() for r in caplog.records]
    assert any("Refreshed the OAuth access token" in t for t in texts)  # the logs did say something
    for secret in secrets:
        assert secret
        for text in texts:
            assert secret not in text


def test_tokens_are_registered_with_airflows_secrets_masker(sandbox, ghl_conn) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    ContactsHook(ghl_conn).get_contacts(limit=1)
    assert sandbox.token not in redact(f"Authorization: Bearer {sandbox.token}")


def test_test_connection_explains_a_bad_token(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.conn_json())
    conn["password"] = "pit-not-a-real-token"
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", json.dumps(conn))
    ok, message = ContactsHook().test_connection()
    assert not ok and "401" in message and "invalid or expired" in message and "pit-not-a-real-token" not in message


def test_test_connection_names_the_missing_scope(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.conn_json())
    conn["password"] = sandbox.admin.issue_token(scopes=["locations/customFields.readonly"])
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", json.dumps(conn))
    ok, message = ContactsHook().test_connection()
    # HighLevel answers a missing scope with 401 "not authorized for this scope" (older: 403).
    assert not ok and ("401" in message or "403" in message) and "'contacts.readonly'" in message


def test_test_connection_explains_a_network_error(monkeypatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{port}", "password": "t", "extra": {"location_id": "L"}}
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", json.dumps(conn))
    hook = ContactsHook(retry=RetryPolicy(max_retries=1, base_s=0.01, cap_s=0.01))
    ok, message = hook.test_connection()
    assert not ok and "Could not reach" in message and "ConnectionError" in message


def test_test_connection_succeeds_on_a_good_connection(sandbox, ghl_conn) -> None:
    ok, message = ContactsHook(ghl_conn).test_connection()
    assert ok and sandbox.location_id in message


def test_test_connection_explains_a_spent_oauth_refresh_token(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    requests.post(
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "refresh_token",
              "refresh_token": app["refresh_token"]},
        timeout=10,
    ).raise_for_status()
    conn = {
        "conn_type": "ghl", "host": sandbox.base_url, "password": "",
        "extra": {"location_id": sandbox.location_id, "auth_type": "oauth", "client_id": app["client_id"],
                  "client_secret": app["client_secret"], "refresh_token": app["refresh_token"],
                  "rotation_store": f"file:{tmp_path}/t.json"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", json.dumps(conn))
    ok, message = ContactsHook().test_connection()
    assert not ok and "Re-authorise the app" in message and app["refresh_token"] not in message
