"""asyncio code (triggers) talks to HighLevel with the hook's rules: same auth, limiter and retries."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.retry import RetryPolicy
from test_auth_oauth import _fresh_process_state, install_app, oauth_conn, token_calls  # noqa: F401 - autouse fixture


def test_async_calls_share_the_limiter_and_absorb_faults_and_429s(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=80, rate_limit="30/1", fault_kinds=("500", "503", "drop"))
    monkeypatch.setenv("AIRFLOW_CONN_GHL_ASYNC", sb.conn_json())
    hook = ContactsHook("ghl_async", retry=RetryPolicy(max_retries=8, base_s=0.01, cap_s=0.05))
    ids = [c["id"] for c in sb.admin.dump()["contacts"]]
    with sb.client() as other:  # another integration spent the window: the first calls meet 429s
        for _ in range(30):
            other.get("/contacts/", params={"locationId": sb.location_id, "limit": 1})
    sb.admin.configure(fault_rate=0.1)

    async def fetch_all() -> list[str]:
        async with hook.async_transport() as api:
            async def one(cid: str) -> str:
                data = await api.request("GET", f"/contacts/{cid}", operation="get-contact")
                return data["contact"]["id"]

            return await asyncio.gather(*(one(cid) for cid in ids))

    assert asyncio.run(fetch_all()) == ids
    counters = sb.admin.counters()
    assert counters["faults"] > 0 and counters["status_429"] >= 1
    assert hook.stats.throttled == counters["status_429"]
    assert hook.stats.requests == counters["total"] - 30


def test_async_errors_carry_status_trace_id_and_operation(sandbox, ghl_conn) -> None:
    async def missing() -> None:
        async with ContactsHook(ghl_conn).async_transport() as api:
            await api.request("GET", "/contacts/noSuchContact0000000", operation="get-contact")

    with pytest.raises(GHLNotFoundError) as err:
        asyncio.run(missing())
    assert err.value.status == 404 and err.value.trace_id and err.value.operation == "get-contact"


def test_async_401_refreshes_the_oauth_token_once(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, access_token="stale-token", token_store=f"file:{tmp_path}/t.json")
    hook = ContactsHook(conn_id)

    async def search() -> int:
        async with hook.async_transport() as api:
            body = {"locationId": sandbox.location_id, "pageLimit": 1, "page": 1}
            data = await api.request("POST", "/contacts/search", operation="search-contacts-advanced", json_body=body)
            return data["total"]

    assert asyncio.run(search()) == 200
    assert sandbox.admin.counters()["status_401"] == 1 and hook.stats.refreshes == 1 and token_calls(sandbox) == 2
    assert json.loads((tmp_path / "t.json").read_text())["refresh_token"] != app["refresh_token"]
