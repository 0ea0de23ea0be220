"""Airflow's *Test* button runs ``test_connection`` under a throwaway connection id (a copy of the
saved connection, merged with the form). For OAuth the hook then uses the token store of the saved
connection it stands for: keyed by the throwaway id, a test refresh would spend the single-use
refresh token into a store nobody reads (and a later test would fail on the spent seed).

The end-to-end check (UI, api-server, sandbox) is in tests/test_ui_browser.py; this one pins the
look-up against the metadata DB."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_provider_contacts.hooks.contacts import GHLContactsHook
from airflow_provider_contacts.hooks.settings import ConnectionSettings

BASE = "http://127.0.0.1:9"
OAUTH = {"auth_type": "oauth", "client_id": "app-1", "client_secret": "s3cr3t-value", "location_id": "Loc1"}


@pytest.fixture
def saved(airflow_db):
    """Save ``ghl`` connections in the metadata DB (removed afterwards); returns the adder."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    added: list[str] = []

    def add(extra: dict[str, str], host: str = BASE) -> str:
        conn_id = f"ghl_saved_{uuid.uuid4().hex[:8]}"
        with create_session() as session:
            session.add(Connection(conn_id=conn_id, conn_type="ghl", host=host, extra=json.dumps(extra)))
        added.append(conn_id)
        return conn_id

    yield add
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(added)).delete(synchronize_session=False)


def _twin(monkeypatch, conn_id: str, extra: dict[str, str], host: str = BASE) -> str | None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "ghl", "host": host, "extra": extra}))
    hook = GHLContactsHook(conn_id)
    return hook._saved_oauth_twin(hook.settings)


def test_a_throwaway_copy_finds_the_saved_oauth_connection(saved, monkeypatch) -> None:
    seed = f"rt-{uuid.uuid4().hex}"
    mine = saved({**OAUTH, "refresh_token": seed})
    saved({**OAUTH, "refresh_token": f"rt-{uuid.uuid4().hex}"})  # another app install: not a twin
    assert _twin(monkeypatch, "aB3dE5gH", {**OAUTH, "refresh_token": seed}) == mine


@pytest.mark.parametrize(
    "change",
    [
        {"refresh_token": "rt-other"},  # re-authorised in the form: a new lineage
        {"client_id": "app-2"},
        {"auth_type": "private_token"},
    ],
    ids=["other-refresh-token", "other-client", "private-token"],
)
def test_no_twin_when_the_connection_differs(saved, monkeypatch, change) -> None:
    seed = f"rt-{uuid.uuid4().hex}"
    saved({**OAUTH, "refresh_token": seed})
    assert _twin(monkeypatch, "Zz9Yy8Xx", {**OAUTH, "refresh_token": seed, **change}) is None


def test_no_twin_on_another_host(saved, monkeypatch) -> None:
    seed = f"rt-{uuid.uuid4().hex}"
    saved({**OAUTH, "refresh_token": seed})
    assert _twin(monkeypatch, "Hh7Gg6Ff", {**OAUTH, "refresh_token": seed}, host="http://127.0.0.1:10") is None


def test_a_saved_connection_tested_under_its_own_id_uses_its_own_store(saved, monkeypatch) -> None:
    seed = f"rt-{uuid.uuid4().hex}"
    mine = saved({**OAUTH, "refresh_token": seed})
    saved({**OAUTH, "refresh_token": seed})  # a second copy under another id
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        settings = ConnectionSettings.from_connection(session.query(Connection).filter_by(conn_id=mine).one(), mine)
    assert GHLContactsHook(mine)._saved_oauth_twin(settings) is None


def _as_the_api_test_route(call):
    """Run ``call`` the way Airflow's api-server runs a connection test: under a handler of its
    ``airflow.api_fastapi`` package (``POST /api/v2/connections/test``)."""
    namespace = {"__name__": "airflow.api_fastapi.core_api.routes.public.connections", "call": call}
    exec("def test_connection():\n    return call()\n", namespace)  # noqa: S102 - a frame in that package
    return namespace["test_connection"]()


def _unsaved_form(monkeypatch, sandbox, app: dict[str, str], **change: str) -> str:
    """The form of a new OAuth connection as the api-server tests it: a throwaway id in an
    environment variable, nothing in the metadata DB."""
    conn_id = uuid.uuid4().hex[:8]
    extra = {"auth_type": "oauth", "client_id": app["client_id"], "client_secret": app["client_secret"],
             "refresh_token": app["refresh_token"], "location_id": sandbox.location_id, "user_type": "Location",
             **change}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                       json.dumps({"conn_type": "ghl", "host": sandbox.base_url, "extra": extra}))
    return conn_id


def test_testing_an_unsaved_oauth_form_checks_the_client_and_keeps_the_refresh_token(sandbox, airflow_db,
                                                                                    monkeypatch) -> None:
    """Test before Save: the api-server runs the hook under a throwaway id. A refresh there would
    spend the single-use refresh token the user is about to save (the app locked out at the first
    task). Only the client is checked; the refresh token still works afterwards."""
    app = sandbox.admin.install_oauth_app()
    before = sandbox.admin.oauth_stats()
    ok, message = _as_the_api_test_route(GHLContactsHook(_unsaved_form(monkeypatch, sandbox, app)).test_connection)
    assert ok, message
    assert "client id and secret are accepted" in message and "Save the connection" in message
    assert sandbox.admin.oauth_stats()["refresh_grants"] == before["refresh_grants"]  # nothing spent
    assert app["refresh_token"] not in message and app["client_secret"] not in message

    wrong = _unsaved_form(monkeypatch, sandbox, app, client_secret="not-the-secret")
    ok, message = _as_the_api_test_route(GHLContactsHook(wrong).test_connection)
    assert not ok and "client_id and client_secret" in message, message
    assert sandbox.admin.oauth_stats()["refresh_grants"] == before["refresh_grants"]

    # Saved (here: the connection under its own id, outside the api-server), the same values
    # authenticate with the refresh token the tests left unspent.
    saved_id = _unsaved_form(monkeypatch, sandbox, app)
    ok, message = GHLContactsHook(saved_id).test_connection()
    assert ok, message
    after = sandbox.admin.oauth_stats()
    assert after["refresh_grants"] == before["refresh_grants"] + 1 and after["invalid_grants"] == before["invalid_grants"] + 1  # the probe's
