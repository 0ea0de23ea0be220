"""Location tokens of an agency connection (issue 13): minted through ``POST /oauth/locationToken``
once per location, kept until shortly before they expire and shared by every worker through the
connection's token store; re-minted after an expired-token 401, never after a scope 401; an agency
Private Integration token says it cannot mint and how to fix that. The agency's own refresh token
rotates through the store exactly once.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.auth import (
    FileTokenStore,
    OAuthSettings,
    OAuthTokenSource,
    TokenSet,
    VariableTokenStore,
    build_location_token_store,
)
from airflow_provider_contacts.errors import GHLAuthError, GHLConfigError, GHLScopeError
from airflow_provider_contacts.hooks.contacts import GHLContactsHook, forget_process_state


def _agency(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **install: Any) -> tuple[str, dict[str, Any]]:
    forget_process_state()
    app = sandbox.admin.install_oauth_app(user_type="Company", **install)
    conn_id = f"ghl_agency_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                       sandbox.agency_conn_json(app, rotation_store=f"file:{tmp_path / 'tokens.json'}"))
    return conn_id, app


def _mints(sandbox: Any) -> int:
    return sandbox.admin.counters()["by_operation"].get("get-location-access-token", 0)


def _fp(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def test_location_token_stores_follow_the_connection_store(tmp_path: Path) -> None:
    variable = build_location_token_store(None, "ghl_agency", "LocA1")
    assert isinstance(variable, VariableTokenStore) and variable.key == "ghl_oauth_tokens__ghl_agency__location__LocA1"
    assert build_location_token_store("variable:agency_tokens", "c", "LocA1").key == "agency_tokens__location__LocA1"
    file = build_location_token_store(f"file:{tmp_path}/ghl.json", "c", "LocA1")
    assert isinstance(file, FileTokenStore) and file.path == tmp_path / "ghl__location__LocA1.json"
    assert build_location_token_store("sql:pg", "c", "LocA1").key == "c__location__LocA1"
    assert build_location_token_store("redis:r", "c", "LocA1").key == "ghl_oauth_tokens:{c__location__LocA1}"
    with pytest.raises(GHLConfigError, match="not a HighLevel id"):
        build_location_token_store(None, "c", "../x")


def _worker(base_url: str, settings: dict[str, Any], store_path: str, location: str, go: Any, out: Any) -> None:
    """A separate worker process: its own token source, the shared file store."""
    spec = f"file:{store_path}"
    source = OAuthTokenSource(
        OAuthSettings(**settings, location_id=location), FileTokenStore(store_path),
        location_store=lambda loc: build_location_token_store(spec, settings["conn_id"], loc),
    )
    go.wait(30)
    try:
        out.put(("ok", _fp(source.get_access_token())))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))


def test_a_location_token_is_minted_once_and_shared_by_threads_and_processes(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox.admin.reset(contacts=3)
    second = sandbox.admin.add_location(contacts=2)
    conn_id, app = _agency(sandbox, monkeypatch, tmp_path)
    sandbox.admin.reset_counters()

    # Two worker processes at once, each its own token source on the shared store.
    extra = json.loads(sandbox.agency_conn_json(app))["extra"]
    settings = {"conn_id": conn_id, "base_url": sandbox.base_url, "client_id": extra["client_id"],
                "client_secret": extra["client_secret"], "user_type": "Company", "company_id": extra["company_id"],
                "seed_refresh_token": extra["refresh_token"]}
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(sandbox.base_url, settings, str(tmp_path / "tokens.json"), second, go, out))
               for _ in range(2)]
    for w in workers:
        w.start()
    go.set()
    got = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    assert [status for status, _ in got] == ["ok", "ok"], got
    assert got[0][1] == got[1][1]  # the same location token
    assert _mints(sandbox) == 1

    # Threads of this process (mapped tasks on one worker) and later tasks read it from the store.
    hooks = [GHLContactsHook(conn_id, location_id=second) for _ in range(4)]
    threads = [threading.Thread(target=h.search_contacts, kwargs={"page_limit": 1}) for h in hooks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(h.stats.requests == 1 for h in hooks)
    forget_process_state()  # a fresh worker process
    assert GHLContactsHook(conn_id, location_id=second).search_contacts(page_limit=5).contacts
    stored = FileTokenStore(tmp_path / f"tokens__location__{second}.json").load()
    assert stored is not None and stored.location_id == second and stored.refresh_token is None
    assert _fp(stored.access_token or "") == got[0][1]

    counters = sandbox.admin.counters()
    assert counters["by_operation"]["get-location-access-token"] == 1  # one per location, not per task
    assert counters["by_operation"]["get-access-token"] == 1  # the agency's refresh token rotated once
    assert counters["oauth"]["refresh_token_reuses"] == 0 and counters["status_401"] == 0

    # Another location gets its own token.
    GHLContactsHook(conn_id, location_id=sandbox.location_id).search_contacts(page_limit=1)
    assert _mints(sandbox) == 2


def test_an_expired_location_token_is_reminted_a_scope_401_is_not(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox.admin.reset(contacts=3)
    location = sandbox.location_id
    conn_id, _ = _agency(sandbox, monkeypatch, tmp_path, missing_scopes=["locations/customFields.readonly"])
    hook = GHLContactsHook(conn_id, location_id=location)
    hook.search_contacts(page_limit=1)
    sandbox.admin.reset_counters()

    # The store (and this process) hold a token HighLevel no longer takes: 401 Invalid JWT.
    expired = sandbox.admin.issue_token(location_id=location, lifetime_s=0.001)
    store = FileTokenStore(tmp_path / f"tokens__location__{location}.json")
    store.save(TokenSet(access_token=expired, refresh_token=None, location_id=location))
    forget_process_state()
    hook = GHLContactsHook(conn_id, location_id=location)
    assert hook.search_contacts(page_limit=1).contacts
    counters = sandbox.admin.counters()
    assert counters["oauth"]["expired_access_token_calls"] == 1
    assert counters["by_operation"]["get-location-access-token"] == 1  # re-minted once
    assert counters["by_operation"].get("get-access-token", 0) == 0  # the agency token was still good
    assert store.load().access_token not in (None, expired)  # shared with the other workers

    # A scope 401 (the app lacks locations/customFields.readonly): raised, nothing re-minted or refreshed.
    with pytest.raises(GHLScopeError):
        hook.get_custom_fields()
    after = sandbox.admin.counters()["by_operation"]
    assert after["get-location-access-token"] == 1 and after.get("get-access-token", 0) == 0


def test_a_location_where_the_app_is_not_installed_says_so(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox.admin.reset(contacts=1)
    other = sandbox.admin.add_location()
    conn_id, app = _agency(sandbox, monkeypatch, tmp_path, location_ids=[sandbox.location_id],
                           install_to_future_locations=False)
    with pytest.raises(GHLAuthError, match=f"location {other} .*not installed on that location") as err:
        GHLContactsHook(conn_id, location_id=other).search_contacts(page_limit=1)
    assert "Fix: install the app on the location" in str(err.value)
    assert app["refresh_token"] not in str(err.value) and app["access_token"] not in str(err.value)


def test_an_agency_private_token_cannot_mint_and_says_how_to_fix_it(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_contacts.sync.locations import plan_locations

    pit = sandbox.admin.issue_token(user_type="Company")
    monkeypatch.setenv("AIRFLOW_CONN_GHL_AGENCY_PIT", json.dumps({
        "conn_type": "ghl", "host": sandbox.base_url, "password": pit,
        "extra": {"user_type": "Company", "company_id": sandbox.company_id}}))
    sandbox.admin.reset_counters()
    with pytest.raises(GHLAuthError) as err:
        GHLContactsHook("ghl_agency_pit", location_id=sandbox.location_id).search_contacts(page_limit=1)
    text = str(err.value)
    assert "agency Private Integration token" in text and "POST /oauth/locationToken" in text
    assert "auth_type='oauth', user_type='Company', company_id, app_id, client_id, client_secret" in text
    assert pit not in text
    assert sandbox.admin.counters()["total"] == 0  # said before any request

    with pytest.raises(GHLAuthError, match="discovering the agency's installed locations"):
        plan_locations({"source_conn_id": "ghl_agency_pit", "target_conn_id": "none", "location_ids": None},
                       mapping_path="unused.yaml")
