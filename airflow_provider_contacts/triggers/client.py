"""Async, read-only client of the Contacts API for triggers (httpx, already in Airflow's tree).

It follows the hook's rules so a trigger behaves like the hook on the wire:

* the connection is read with ``await BaseHook.aget_connection(conn_id)`` (never the sync
  lookup, which must not run in the triggerer's event loop) and validated by the hook's
  :class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings`;
* the same token source as the hook (private token or OAuth, ``aget_access_token()``; a 401 is
  retried once after a refresh), the same ``Version``/``Accept``/``Authorization`` headers and
  (connect, read) timeouts;
* the same process-wide limiter per (base URL, location) (``aacquire()``/``release()``,
  ``update_from_headers()``, ``hold()`` after a 429) and the same retry policy (429 after
  ``Retry-After``, 5xx and transport errors with jittered backoff, bounded in count and time);
* errors are the hook's :mod:`~airflow_provider_contacts.errors` classes; messages never carry a
  token.

Methods mirror :class:`~airflow_provider_contacts.triggers.conditions.ConditionSource` and return
API-shaped JSON dicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.errors import GHLAPIError, GHLConfigError, GHLServerError, GHLTransportError
from airflow_provider_contacts.hooks.pacing import DEFAULT_DAILY_RESERVE
from airflow_provider_contacts.hooks.retry import RETRYABLE_STATUSES, RetryPolicy, retry_after_s
from airflow_provider_contacts.hooks.transport import Transport, api_error_message

log = logging.getLogger(__name__)

MAX_SEARCH_PAGE_LIMIT = 500
TASK_SEARCH_PAGE_LIMIT = 100


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GHLConfigError(f"parameter '{name}' must be a non-empty id string, got {value!r}")
    return quote(value.strip(), safe="")


class AsyncContactsClient:
    """Read-only async client; use as ``async with AsyncContactsClient(conn_id) as client: ...``.

    :param ghl_conn_id: connection of type ``ghl``.
    :param location_id: location override (default: the connection's ``location_id`` extra).
    :param retry: retry bounds (the hook's default policy when ``None``).
    :param daily_reserve: daily requests never used (as the hook).
    """

    def __init__(
        self,
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        daily_reserve: int = DEFAULT_DAILY_RESERVE,
    ) -> None:
        self.ghl_conn_id = ghl_conn_id
        self._location_override = location_id
        self.retry = retry or RetryPolicy()
        self.daily_reserve = daily_reserve
        self.requests = 0
        self._hook: Any = None
        self._http: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> AsyncContactsClient:
        """Read the connection (async) and open the HTTP client."""
        from airflow.sdk import BaseHook

        from airflow_provider_contacts.hooks.contacts import ContactsHook
        from airflow_provider_contacts.hooks.settings import ConnectionSettings

        conn = await BaseHook.aget_connection(self.ghl_conn_id)
        settings = ConnectionSettings.from_connection(conn, self.ghl_conn_id)
        hook = ContactsHook(ghl_conn_id=self.ghl_conn_id, location_id=self._location_override)
        # The hook builds its token source and limiter from its settings; hand it the settings
        # read asynchronously so it never does a sync connection lookup inside the event loop.
        hook._settings = settings
        self._hook = hook
        connect_s, read_s = settings.timeout
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=httpx.Timeout(read_s, connect=connect_s),
            headers={"Version": settings.api_version, "Accept": "application/json"},
        )
        return self

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> AsyncContactsClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def location_id(self) -> str:
        """The location the client reads (override, else the connection's)."""
        location = self._hook.location_id if self._hook is not None else self._location_override
        if not location:
            raise GHLConfigError(
                f"location_id is not set: pass location_id=... or set the extra 'location_id' on connection "
                f"{self.ghl_conn_id!r}"
            )
        return location

    # -- request loop ----------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        scope: str | None = "contacts.readonly",
    ) -> Any:
        """Send one (read) call with the hook's pacing, auth and retry rules; return the JSON body."""
        if self._http is None or self._hook is None:
            raise RuntimeError("AsyncContactsClient is not open; use 'async with AsyncContactsClient(...)'")
        token_source = self._hook.token_source
        limiter = self._hook.limiter
        started = time.monotonic()
        failures = throttles = 0
        refreshed = False
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        while True:
            token = await token_source.aget_access_token()
            await limiter.aacquire(self.daily_reserve)
            resp: httpx.Response | None = None
            error: GHLAPIError
            try:
                self.requests += 1
                resp = await self._http.request(
                    method,
                    path,
                    params=clean_params or None,
                    json=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                limiter.update_from_headers(resp.headers)
            except httpx.HTTPError as exc:
                error = GHLTransportError(
                    f"no usable answer from {self._http.base_url} ({type(exc).__name__})", operation=operation
                )
            finally:
                limiter.release()

            if resp is not None:
                status = resp.status_code
                if 200 <= status < 300:
                    try:
                        return resp.json() if resp.content.strip() else {}
                    except ValueError:
                        error = GHLTransportError(
                            f"HTTP {status} with a body that is not valid JSON (truncated?)", status=status, operation=operation
                        )
                else:
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    message, trace_id = api_error_message(body, resp.reason_phrase or f"HTTP {status}")
                    if status == 401 and not refreshed:
                        refreshed = True
                        if await self._refresh(token_source, token):
                            continue
                    if status == 429:
                        throttles += 1
                        wait = retry_after_s(resp.headers, limiter.retry_after_default())
                        limiter.hold(wait)
                        if throttles > self.retry.max_throttled or time.monotonic() - started + wait > self.retry.max_elapsed_s:
                            raise error_for(429, f"{message}; still rate limited after {throttles} attempts", trace_id, operation, scope)
                        continue  # the limiter's hold makes the next aacquire wait
                    if status not in RETRYABLE_STATUSES:
                        raise error_for(status, message, trace_id, operation, scope)
                    error = GHLServerError(message, status=status, trace_id=trace_id, operation=operation)

            failures += 1
            wait = self.retry.backoff_s(failures)
            if failures > self.retry.max_retries or time.monotonic() - started + wait > self.retry.max_elapsed_s:
                raise type(error)(
                    f"{error.message} (gave up after {failures} attempts)",
                    status=error.status,
                    trace_id=error.trace_id,
                    operation=operation,
                )
            log.warning("%s: %s; retry %d in %.2f s", operation, error.message, failures, wait)
            await asyncio.sleep(wait)

    @staticmethod
    async def _refresh(token_source: Any, used_token: str) -> bool:
        """Refresh after a 401 (OAuth only), without blocking the event loop."""
        if hasattr(token_source, "aon_unauthorized"):
            return bool(await token_source.aon_unauthorized(used_token))
        return bool(await asyncio.to_thread(token_source.on_unauthorized, used_token))

    # -- reads (ConditionSource) -----------------------------------------------------------
    async def search_page(
        self,
        filters: list[dict[str, Any]] | None,
        sort: list[dict[str, Any]] | None,
        page_limit: int,
        search_after: list[Any] | None = None,
    ) -> dict[str, Any]:
        """One page of ``POST /contacts/search`` (``search-contacts-advanced``)."""
        body: dict[str, Any] = {"locationId": self.location_id, "pageLimit": page_limit}
        if search_after is not None:
            body["searchAfter"] = search_after
        else:
            body["page"] = 1
        if filters:
            body["filters"] = filters
        if sort:
            body["sort"] = sort
        return await self.request("POST", "/contacts/search", operation="search-contacts-advanced", json_body=body)

    async def search_contacts(
        self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int
    ) -> list[dict[str, Any]]:
        """Every match of the search, page by page (``searchAfter``), at most ``limit``."""
        out: list[dict[str, Any]] = []
        page_limit = max(1, min(MAX_SEARCH_PAGE_LIMIT, limit))
        cursor: list[Any] | None = None
        seen: set[str] = set()
        while len(out) < limit:
            page = await self.search_page(filters, sort, page_limit, cursor)
            contacts = page.get("contacts") or []
            out.extend(contacts[: limit - len(out)])
            if len(contacts) < page_limit:
                break
            cursor = contacts[-1].get("searchAfter")
            key = repr(cursor)
            if not cursor or key in seen:
                raise GHLAPIError("the search repeated or lacks a 'searchAfter' cursor", operation="search-contacts-advanced")
            seen.add(key)
        return out

    async def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/tasks`` (each task gets ``contactId``)."""
        data = await self.request("GET", f"/contacts/{_segment(contact_id, 'contact_id')}/tasks", operation="get-all-tasks")
        return [{"contactId": contact_id, **t} for t in data.get("tasks") or []]

    async def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/tasks/{taskId}`` as a one-item list."""
        path = f"/contacts/{_segment(contact_id, 'contact_id')}/tasks/{_segment(task_id, 'task_id')}"
        data = await self.request("GET", path, operation="get-task")
        return [{"contactId": contact_id, **(data.get("task") or {})}]

    async def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/notes`` (each note gets ``contactId``)."""
        data = await self.request("GET", f"/contacts/{_segment(contact_id, 'contact_id')}/notes", operation="get-all-notes")
        return [{"contactId": contact_id, **n} for n in data.get("notes") or []]

    async def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]:
        """Open tasks of a contact, or of the whole location (``POST /locations/{id}/tasks/search``)."""
        if contact_id:
            return [t for t in await self.list_tasks(contact_id) if not t.get("completed")]
        path = f"/locations/{_segment(self.location_id, 'location_id')}/tasks/search"
        out: list[dict[str, Any]] = []
        skip = 0
        while True:
            body = {"completed": False, "limit": TASK_SEARCH_PAGE_LIMIT, "skip": skip}
            data = await self.request("POST", path, operation="task-search", json_body=body, scope="locations/tasks.readonly")
            tasks = list(_flatten(data.get("tasks")))
            out.extend(t for t in tasks if not t.get("completed"))
            if len(tasks) < TASK_SEARCH_PAGE_LIMIT:
                return out
            skip += len(tasks)


def _flatten(items: Any) -> Any:
    """Tasks of a task search: locations.json documents them as an array of arrays."""
    for item in items or []:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def error_for(status: int, message: str, trace_id: str | None, operation: str, scope: str | None) -> GHLAPIError:
    """The hook's error for an HTTP error answer (same classes and fix hints)."""
    return Transport._client_error(status, message, trace_id, operation, scope)


__all__ = ["AsyncContactsClient", "error_for"]
