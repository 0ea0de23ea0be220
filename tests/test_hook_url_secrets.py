"""Secrets inside URLs never leave the hook (issue #14, hook part of item 8).

A connection host such as ``http://user:pass@proxy.example.com`` carries a password that Airflow
does not mask (it masks the connection's password field and sensitive extras). The hook:

* never sends it: HighLevel authenticates with a Bearer token only, and ``requests`` would turn URL
  credentials into ``Authorization: Basic``, replacing the Bearer header. The base URL is used
  without them, with one warning per connection and process;
* never shows it: log lines, exception messages and ``repr``s show ``http://user:***@host``
  (:func:`~airflow_provider_contacts.hooks.urls.redact_url_secrets`, the one helper for it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import socket

import pytest

from airflow_provider_contacts.errors import GHLConfigError, GHLTransportError, GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.settings import normalise_base_url
from airflow_provider_contacts.hooks.urls import redact_url_secrets, split_url_credentials
from test_client_live_statuses import FAST, _fresh_process_state, stub_api  # noqa: F401 - fixtures

SECRET = "Sup3r-s3cret"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _conn(monkeypatch, conn_id: str, host: str) -> None:
    conn = {"conn_type": "ghl", "host": host, "password": "tok", "extra": {"location_id": "L1"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pass@host", "http://user:***@host"),
        ("no usable answer from https://ghl:p%40ss@api.example.com:8443/v1 (ConnectionError)",
         "no usable answer from https://ghl:***@api.example.com:8443/v1 (ConnectionError)"),
        ("https://tok3n@host/x", "https://***@host/x"),
        ("http://u:p@ss@host/x?y=1", "http://u:***@host/x?y=1"),
        ("a http://a:1@h and 'https://b:2@k/'", "a http://a:***@h and 'https://b:***@k/'"),
        ("mail ada@example.com about http://host/x", "mail ada@example.com about http://host/x"),
        ("", ""),
    ],
)
def test_one_helper_masks_the_password_of_every_url(text, expected) -> None:
    assert redact_url_secrets(text) == expected
    assert redact_url_secrets(None) is None and redact_url_secrets(3) == 3


def test_credentials_are_split_off_a_base_url() -> None:
    assert split_url_credentials("http://user:p%40ss@h:8/x") == ("http://h:8/x", ["p%40ss", "p@ss"])
    assert split_url_credentials("https://tok@h") == ("https://h", ["tok"])
    assert split_url_credentials("https://h/x") == ("https://h/x", [])
    assert normalise_base_url(f"user:{SECRET}@api.example.com") == "https://api.example.com"
    assert normalise_base_url(f"http://user:{SECRET}@127.0.0.1", port=8765) == "http://127.0.0.1:8765"


def test_a_failing_request_to_a_base_url_with_credentials_never_shows_the_password(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    _conn(monkeypatch, "ghl_creds", f"http://ghluser:{SECRET}@127.0.0.1:{port}")
    hook = ContactsHook("ghl_creds", retry=FAST)

    with pytest.raises(GHLTransportError) as err:
        hook.get_contact("c1")
    texts = [str(err.value), repr(err.value), err.value.message, str(pickle.loads(pickle.dumps(err.value)))]
    ok, message = hook.test_connection()
    texts += [message, repr(hook.settings), hook.base_url, str(hook.settings.timeout)]

    assert not ok and f"http://127.0.0.1:{port}" in message
    assert "no usable answer from http://127.0.0.1" in err.value.message
    for text in [*texts, caplog.text, *(str(r.args) for r in caplog.records)]:
        assert SECRET not in text
    warnings = [r.getMessage() for r in caplog.records if "carries credentials" in r.getMessage()]
    assert warnings == [
        f"connection 'ghl_creds': the host http://ghluser:***@127.0.0.1:{port} carries credentials; they are "
        "ignored and never sent - HighLevel authenticates with the Bearer token (the connection's password, "
        "or OAuth). Remove them from the host."
    ]
    assert hook.settings.url_credentials_ignored is True

    ContactsHook("ghl_creds").settings  # noqa: B018 - a second hook on the same connection: no second warning
    assert len([r for r in caplog.records if "carries credentials" in r.getMessage()]) == 1


def test_url_credentials_are_not_sent_the_bearer_token_is(stub_api, monkeypatch) -> None:
    stub, _ = stub_api(lambda *a: (200, {"contact": {"id": "c1"}}))
    host = stub.base_url.replace("http://", f"http://ghluser:{SECRET}@")
    _conn(monkeypatch, "ghl_creds_stub", host)
    hook = ContactsHook("ghl_creds_stub", retry=FAST)
    hook.get_contact("c1")

    async def run() -> None:
        async with hook.async_transport() as api:
            await api.request("GET", "/contacts/c1", operation="get-contact")

    asyncio.run(run())
    assert [auth for _, _, _, auth in stub.calls] == ["Bearer tok", "Bearer tok"]
    assert hook.base_url == stub.base_url


def test_a_bad_host_with_credentials_is_named_without_them(monkeypatch) -> None:
    _conn(monkeypatch, "ghl_badhost", f"ftp://ghluser:{SECRET}@files.example.com")
    with pytest.raises(GHLConfigError) as err:
        ContactsHook("ghl_badhost").settings  # noqa: B018
    assert SECRET not in str(err.value) and "'ftp://files.example.com' is not a URL" in str(err.value)


def test_every_provider_error_masks_urls_in_its_message() -> None:
    err = GHLValidationError(f"bad http://u:{SECRET}@h", operation="op")
    assert SECRET not in str(err) and SECRET not in err.message and "http://u:***@h" in str(err)
    assert SECRET not in str(GHLConfigError(f"see https://x:{SECRET}@h"))
