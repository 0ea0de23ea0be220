"""asyncio code (triggers) talks to HighLevel through the hook's async methods, with the hook's rules.

The async twins (``aget_contact``, ``aiter_location_tasks`` ...) send the requests their sync twins
send - built by the same code, paced, retried and mapped to errors by the same rules - and return
the same models with the same values. The comparisons run against the live-like sandbox (the
package's pytest plugin), including a token without ``locations/tasks.readonly``, whose task
search falls back to per-contact task lists sync and async alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from airflow_provider_contacts.errors import GHLNotFoundError, GHLPaginationError, GHLScopeError, GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook, GHLContactsHook
from airflow_provider_contacts.hooks.retry import RetryPolicy
from test_auth_oauth import _fresh_process_state, install_app, oauth_conn, token_calls  # noqa: F401 - autouse fixture
from test_client_live_statuses import stub_api  # noqa: F401 - fixture


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
    conn_id = oauth_conn(sandbox, app, monkeypatch, access_token="stale-token", rotation_store=f"file:{tmp_path}/t.json")
    hook = ContactsHook(conn_id)

    async def search() -> int:
        async with hook.async_transport() as api:
            body = {"locationId": sandbox.location_id, "pageLimit": 1, "page": 1}
            data = await api.request("POST", "/contacts/search", operation="search-contacts-advanced", json_body=body)
            return data["total"]

    assert asyncio.run(search()) == 200
    assert sandbox.admin.counters()["status_401"] == 1 and hook.stats.refreshes == 1 and token_calls(sandbox) == 2
    assert json.loads((tmp_path / "t.json").read_text())["refresh_token"] != app["refresh_token"]



# -- every async read against its sync twin ---------------------------------------------------------

FILTERS = [{"field": "dateAdded", "operator": "range", "value": {"gte": "2000-01-01T00:00:00Z"}}]
SORT = [{"field": "dateUpdated", "direction": "asc"}]


def _collect(found: AsyncIterator[Any]) -> Any:
    async def drain() -> list[Any]:
        async with contextlib.aclosing(found):
            return [item async for item in found]

    return drain()


def _twins(dump: dict[str, Any]) -> dict[str, tuple[Callable[[GHLContactsHook], Any], Callable[[GHLContactsHook], Any]]]:
    """name -> (sync call, async call) of each async read, on records of the sandbox's ``dump``."""
    task = next(t for t in dump["tasks"] if any(n["contactId"] == t["contactId"] for n in dump["notes"]))
    contact_id = task["contactId"]
    note = next(n for n in dump["notes"] if n["contactId"] == contact_id)
    some_ids = [c["id"] for c in dump["contacts"][:30]]
    return {
        "search_contacts": (lambda h: h.search_contacts(filters=FILTERS, sort=SORT, page=2, page_limit=30),
                            lambda h: h.asearch_contacts(filters=FILTERS, sort=SORT, page=2, page_limit=30)),
        "iter_search_contacts": (lambda h: list(h.iter_search_contacts(filters=FILTERS, sort=SORT, page_limit=40)),
                                 lambda h: _collect(h.aiter_search_contacts(filters=FILTERS, sort=SORT, page_limit=40))),
        "get_contact": (lambda h: h.get_contact(contact_id), lambda h: h.aget_contact(contact_id)),
        "get_custom_fields": (lambda h: h.get_custom_fields(model="contact"), lambda h: h.aget_custom_fields(model="contact")),
        "list_tasks": (lambda h: h.list_tasks(contact_id), lambda h: h.alist_tasks(contact_id)),
        "get_task": (lambda h: h.get_task(contact_id, task["id"]), lambda h: h.aget_task(contact_id, task["id"])),
        "list_notes": (lambda h: h.list_notes(contact_id), lambda h: h.alist_notes(contact_id)),
        "get_note": (lambda h: h.get_note(contact_id, note["id"]), lambda h: h.aget_note(contact_id, note["id"])),
        "search_location_tasks": (lambda h: h.search_location_tasks(completed=False, limit=20, skip=5),
                                  lambda h: h.asearch_location_tasks(completed=False, limit=20, skip=5)),
        "iter_location_tasks": (lambda h: list(h.iter_location_tasks(page_limit=50)),
                                lambda h: _collect(h.aiter_location_tasks(page_limit=50))),
        "iter_location_tasks(contact_ids)": (
            lambda h: list(h.iter_location_tasks(contact_ids=some_ids, completed=False, batch_size=7)),
            lambda h: _collect(h.aiter_location_tasks(contact_ids=some_ids, completed=False, batch_size=7)),
        ),
    }


def _same(sync_result: Any, async_result: Any) -> None:
    """The same models (classes) with the same values."""
    assert type(async_result) is type(sync_result)
    if isinstance(sync_result, list):
        assert [type(r) for r in async_result] == [type(r) for r in sync_result]
    assert async_result == sync_result


def test_the_async_methods_need_only_the_hook(sandbox, ghl_conn) -> None:
    hook = GHLContactsHook(ghl_conn, location_id=sandbox.location_id)
    contact_id = sandbox.admin.dump()["contacts"][0]["id"]

    async def read() -> Any:
        return await hook.aget_contact(contact_id)

    contact = asyncio.run(read())
    assert contact.id == contact_id and hook.stats.requests == 1
    assert hook.get_contact(contact_id) == contact  # the settings the async call read serve the sync one


def test_each_async_read_sends_what_its_sync_twin_sends_and_returns_the_same(sandbox, ghl_conn) -> None:
    dump = sandbox.admin.dump()
    assert dump["tasks"] and dump["notes"]
    for name, (sync_call, async_call) in _twins(dump).items():
        sync_hook, async_hook = GHLContactsHook(ghl_conn), GHLContactsHook(ghl_conn)
        sandbox.admin.reset_counters()
        expected = sync_call(sync_hook)
        sent = sandbox.admin.counters()["by_operation"]
        sandbox.admin.reset_counters()
        found = asyncio.run(async_call(async_hook))
        assert sandbox.admin.counters()["by_operation"] == sent, name
        assert async_hook.stats.as_dict() == sync_hook.stats.as_dict(), name
        _same(expected, found)
        assert found, f"{name}: pick records the sandbox has"


def test_async_errors_are_the_sync_errors(sandbox, ghl_conn) -> None:
    hook = GHLContactsHook(ghl_conn)
    calls = [
        (lambda: hook.get_contact("noSuchContact0000000"), lambda: hook.aget_contact("noSuchContact0000000")),
        (lambda: hook.get_task("noSuchContact0000000", "t1"), lambda: hook.aget_task("noSuchContact0000000", "t1")),
        (lambda: hook.get_note("noSuchContact0000000", "n1"), lambda: hook.aget_note("noSuchContact0000000", "n1")),
    ]
    for sync_call, async_call in calls:
        with pytest.raises(GHLNotFoundError) as sync_err:
            sync_call()
        with pytest.raises(GHLNotFoundError) as async_err:
            asyncio.run(async_call())
        assert (async_err.value.status, async_err.value.operation, async_err.value.message) == (
            sync_err.value.status, sync_err.value.operation, sync_err.value.message
        )


def test_the_task_search_scope_fallback_gives_the_same_tasks_sync_and_async(sandbox_factory, monkeypatch, caplog) -> None:
    sb = sandbox_factory(contacts=60, missing_scopes=["locations/tasks.readonly"])
    monkeypatch.setenv("AIRFLOW_CONN_GHL_NO_TASK_SCOPE", sb.conn_json())
    dump = sb.admin.dump()
    ids = [c["id"] for c in dump["contacts"][:25]]
    reads = {
        "every task": (lambda h: list(h.iter_location_tasks()), lambda h: _collect(h.aiter_location_tasks())),
        "open tasks of some contacts": (
            lambda h: list(h.iter_location_tasks(contact_ids=ids, completed=False, batch_size=10)),
            lambda h: _collect(h.aiter_location_tasks(contact_ids=ids, completed=False, batch_size=10)),
        ),
    }
    for name, (sync_call, async_call) in reads.items():
        sync_hook, async_hook = GHLContactsHook("ghl_no_task_scope"), GHLContactsHook("ghl_no_task_scope")
        sb.admin.reset_counters()
        caplog.clear()
        with caplog.at_level("WARNING", logger="airflow_provider_contacts"):
            expected = sync_call(sync_hook)
            sent = sb.admin.counters()["by_operation"]
            sb.admin.reset_counters()
            found = asyncio.run(async_call(async_hook))
        _same(expected, found)
        assert sb.admin.counters()["by_operation"] == sent, name
        assert sent["task-search"] == 1 and sent["get-all-tasks"] >= 1, name  # refused once, then per contact
        assert not sync_hook.task_search_access.allowed and not async_hook.task_search_access.allowed
        fallbacks = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
        assert len(fallbacks) == 2 and all("locations/tasks.readonly" in m for m in fallbacks)  # one per hook
    every = {t["id"] for t in dump["tasks"]}
    assert {t.id for t in found} <= every and expected

    hook = GHLContactsHook("ghl_no_task_scope")
    with pytest.raises(GHLScopeError) as sync_err:
        hook.search_location_tasks()
    with pytest.raises(GHLScopeError) as async_err:
        asyncio.run(hook.asearch_location_tasks())
    assert async_err.value.scope == sync_err.value.scope == "locations/tasks.readonly"
    assert async_err.value.message == sync_err.value.message and hook.stats.refreshes == 0


def test_the_task_search_memory_is_shared_by_sync_and_async_calls(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=20, missing_scopes=["locations/tasks.readonly"])
    monkeypatch.setenv("AIRFLOW_CONN_GHL_NO_TASK_SCOPE", sb.conn_json())
    hook = GHLContactsHook("ghl_no_task_scope")
    ids = [c["id"] for c in sb.admin.dump()["contacts"][:5]]
    asyncio.run(_collect(hook.aiter_location_tasks(contact_ids=ids)))
    sb.admin.reset_counters()
    list(hook.iter_location_tasks(contact_ids=ids))
    assert "task-search" not in sb.admin.counters()["by_operation"]  # the async refusal is remembered


def test_async_search_pages_like_the_sync_paginator(sandbox, ghl_conn) -> None:
    hook = GHLContactsHook(ghl_conn)
    expected = [c.id for c in hook.iter_search_contacts(filters=FILTERS, sort=SORT, page_limit=30)]
    sandbox.admin.reset_counters()

    found = [c.id for c in asyncio.run(_collect(hook.aiter_search_contacts(filters=FILTERS, sort=SORT, page_limit=30)))]
    assert found == expected and len(found) == len(set(found)) == 200
    assert sandbox.admin.counters()["by_operation"]["search-contacts-advanced"] == 7  # 6 full pages of 30, 1 short


class _SamePageAPI:
    """A broken search that hands out the same cursor forever (route of a stub server)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def __call__(self, method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        self.bodies.append(body)
        return 200, {"contacts": [{"id": f"c{i}", "searchAfter": [1, f"c{i}"]} for i in range(2)], "total": 99}


def test_async_search_refuses_a_repeated_cursor_and_a_bad_body(stub_api) -> None:
    route = _SamePageAPI()
    stub, hook = stub_api(route)
    with pytest.raises(GHLPaginationError, match="a second time.*split the read with filters"):
        asyncio.run(_collect(hook.aiter_search_contacts(page_limit=2)))
    assert route.bodies[0] == {"locationId": "L1", "pageLimit": 2, "page": 1}
    assert route.bodies[1] == {"locationId": "L1", "pageLimit": 2, "searchAfter": [1, "c1"]}
    assert len(route.bodies) == 2
    with pytest.raises(GHLValidationError, match="pageLimit"):
        asyncio.run(_collect(hook.aiter_search_contacts(page_limit=501)))
    with pytest.raises(GHLValidationError, match="pageLimit"):
        asyncio.run(hook.asearch_contacts(page_limit=501))
    assert len(route.bodies) == 2


def test_async_calls_build_the_tls_context_once_off_the_event_loop(sandbox, ghl_conn, monkeypatch) -> None:
    """Each async call opens its own ``httpx.AsyncClient``; building a TLS context (reading the CA
    bundle) on the triggerer's event loop for each would block every other trigger. The context is
    built once per process, in a worker thread, and every client gets that one."""
    import threading

    import httpx

    from airflow_provider_contacts.hooks import transport

    transport._tls_context.cache_clear()
    built_on: list[str] = []
    real = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        built_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    contexts: list[Any] = []
    real_client = httpx.AsyncClient

    def recording_client(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        contexts.append(kwargs.get("verify"))
        return real_client(*args, **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", recording_client)
    hook = GHLContactsHook(ghl_conn, location_id=sandbox.location_id)
    ids = [c["id"] for c in sandbox.admin.dump()["contacts"][:3]]

    async def calls() -> str:
        await hook.aget_custom_fields()
        for cid in ids:
            await hook.aget_contact(cid)
        return threading.current_thread().name

    loop_thread = asyncio.run(calls())
    assert len(contexts) == 4
    assert len(built_on) == 1 and built_on[0] != loop_thread
    assert all(ctx is contexts[0] for ctx in contexts) and isinstance(contexts[0], __import__("ssl").SSLContext)
    transport._tls_context.cache_clear()
