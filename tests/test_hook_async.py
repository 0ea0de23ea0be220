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
    assert err.value.status in (400, 404) and err.value.trace_id and err.value.operation == "get-contact"


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


def test_async_search_pages_like_the_sync_paginator(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.hooks.async_search import aiter_search_contacts

    hook = ContactsHook(ghl_conn)
    filters = [{"field": "dateAdded", "operator": "range", "value": {"gte": "2000-01-01T00:00:00Z"}}]
    sort = [{"field": "dateUpdated", "direction": "asc"}]
    expected = [c.id for c in hook.iter_search_contacts(filters=filters, sort=sort, page_limit=30)]
    sandbox.admin.reset_counters()

    async def read_all() -> list[str]:
        async with hook.async_transport() as api:
            return [c.id async for c in aiter_search_contacts(api, hook.location_id, filters=filters, sort=sort, page_limit=30)]

    found = asyncio.run(read_all())
    assert found == expected and len(found) == len(set(found)) == 200
    assert sandbox.admin.counters()["by_operation"]["search-contacts-advanced"] == 7  # 6 full pages of 30, 1 short


def test_async_search_refuses_a_repeated_cursor_and_a_bad_body() -> None:
    from airflow_provider_contacts.errors import GHLPaginationError, GHLValidationError
    from airflow_provider_contacts.hooks.async_search import aiter_search_contacts

    class SamePage:
        def __init__(self) -> None:
            self.bodies: list[dict] = []

        async def request(self, method: str, path: str, *, operation: str, json_body: dict, scope: str) -> dict:
            self.bodies.append(json_body)
            return {"contacts": [{"id": f"c{i}", "searchAfter": [1, f"c{i}"]} for i in range(2)], "total": 99}

    async def read(api: SamePage, page_limit: int) -> list[str]:
        return [c.id async for c in aiter_search_contacts(api, "loc1", page_limit=page_limit)]  # type: ignore[arg-type]

    api = SamePage()
    with pytest.raises(GHLPaginationError, match="a second time"):
        asyncio.run(read(api, 2))
    assert api.bodies[0] == {"locationId": "loc1", "pageLimit": 2, "page": 1}
    assert api.bodies[1] == {"locationId": "loc1", "pageLimit": 2, "searchAfter": [1, "c1"]}
    with pytest.raises(GHLValidationError, match="pageLimit"):
        asyncio.run(read(SamePage(), 501))
