"""Async, read-only client of the Contacts API for triggers.

Built on the hook's :class:`~airflow_provider_contacts.hooks.transport.AsyncTransport`
(``ContactsHook.async_transport()``, an ``httpx.AsyncClient``), so a trigger behaves exactly like
the hook on the wire: the same token source (private token or OAuth, ``aget_access_token()``, a
401 retried once after a refresh), the same ``Version``/``Accept``/``Authorization`` headers and
(connect, read) timeouts, the same process-wide limiter per (base URL, location) and the same
retry rules and error classes. Messages never carry a token.

The connection is read with ``await BaseHook.aget_connection(conn_id)`` (never the sync lookup,
which must not run in the triggerer's event loop) and validated by the hook's
:class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings`.

Methods mirror :class:`~airflow_provider_contacts.triggers.conditions.ConditionSource` and return
API-shaped JSON dicts, parsed with the hook's models (``Task``, ``Note``, ``Contact``) and dumped as
the sync source (:class:`~airflow_provider_contacts.sensors.base.HookSource`) dumps them, so a
condition sees the same values in the triggerer as in a worker (dates in one form, defaults filled
in). The contact search pages with the hook's own async paginator
(:func:`~airflow_provider_contacts.hooks.async_search.aiter_search_contacts`); location-wide tasks
come from the hook's async twin of ``iter_location_tasks``
(:func:`~airflow_provider_contacts.hooks.async_search.aiter_location_tasks`: the task search, and
per-contact reads when the token lacks ``locations/tasks.readonly``), as in a worker.
"""

from __future__ import annotations

import contextlib
from typing import Any

from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.errors import GHLConfigError
from airflow_provider_contacts.hooks.async_search import aiter_location_tasks, aiter_search_contacts, alist_tasks
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.operations import api_path
from airflow_provider_contacts.hooks.pagination import MAX_SEARCH_PAGE_LIMIT
from airflow_provider_contacts.hooks.transport import AsyncTransport
from airflow_provider_contacts.models import Note, Task
from airflow_provider_contacts.operators.base import to_jsonable

#: ``limit`` of one location task search page (``POST /locations/{id}/tasks/search``).
TASK_SEARCH_PAGE_LIMIT = 100


class AsyncContactsClient:
    """Read-only async client; use as ``async with AsyncContactsClient(conn_id) as client: ...``.

    :param ghl_conn_id: connection of type ``ghl``.
    :param location_id: location override (default: the connection's ``location_id`` extra).
    :param hook_kwargs: more :class:`ContactsHook` arguments (``retry``, ``daily_reserve``).
    """

    def __init__(self, ghl_conn_id: str = DEFAULT_CONN_ID, location_id: str | None = None, **hook_kwargs: Any) -> None:
        self.ghl_conn_id = ghl_conn_id
        self._location_override = location_id
        self._hook_kwargs = hook_kwargs
        self._hook: ContactsHook | None = None
        self._api: AsyncTransport | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> AsyncContactsClient:
        """Read the connection (async) and open the hook's async transport."""
        hook = ContactsHook(ghl_conn_id=self.ghl_conn_id, location_id=self._location_override, **self._hook_kwargs)
        await hook.aload_settings()  # never a sync connection lookup inside the event loop
        stack = contextlib.AsyncExitStack()
        self._api = await stack.enter_async_context(hook.async_transport())
        self._hook, self._stack = hook, stack
        return self

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = self._api = None

    async def __aenter__(self) -> AsyncContactsClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def requests(self) -> int:
        """Requests sent so far (the hook's ``stats.requests``)."""
        return self._hook.stats["requests"] if self._hook is not None else 0

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

    @property
    def api(self) -> AsyncTransport:
        """The hook's async transport (raises ``RuntimeError`` when the client is not open)."""
        if self._api is None:
            raise RuntimeError("AsyncContactsClient is not open; use 'async with AsyncContactsClient(...)'")
        return self._api

    async def request(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        """One read call through the hook's async transport (pacing, auth, retries, errors)."""
        kwargs.setdefault("scope", "contacts.readonly")
        return await self.api.request(method, path, operation=operation, **kwargs)

    # -- reads (ConditionSource) -----------------------------------------------------------
    async def search_contacts(
        self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int
    ) -> list[dict[str, Any]]:
        """Every match of the search, page by page (the hook's async paginator), at most ``limit``.

        Contacts are dumped to API-shaped dicts as the sync source does.
        """
        out: list[dict[str, Any]] = []
        page_limit = max(1, min(MAX_SEARCH_PAGE_LIMIT, limit))
        found = aiter_search_contacts(self.api, self.location_id, filters=filters, sort=sort, page_limit=page_limit)
        async with contextlib.aclosing(found):
            async for contact in found:
                out.append(to_jsonable(contact))
                if len(out) >= limit:
                    break
        return out

    async def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/tasks`` (each task with ``contactId``): the hook's async twin
        of ``list_tasks`` (:func:`~airflow_provider_contacts.hooks.async_search.alist_tasks`)."""
        return [to_jsonable(task) for task in await alist_tasks(self.api, contact_id)]

    async def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/tasks/{taskId}`` as a one-item list."""
        path = api_path("/contacts/{contact_id}/tasks/{task_id}", "get-task", contact_id=contact_id, task_id=task_id)
        data = await self.request("GET", path, operation="get-task")
        task = data.get("task") or {}
        return [_dump(Task, {**task, "contactId": task.get("contactId") or contact_id})]

    async def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        """``GET /contacts/{contactId}/notes`` (each note with ``contactId``), as the hook's ``Note``."""
        path = api_path("/contacts/{contact_id}/notes", "get-all-notes", contact_id=contact_id)
        data = await self.request("GET", path, operation="get-all-notes")
        return [_dump(Note, {**n, "contactId": n.get("contactId") or contact_id}) for n in data.get("notes") or []]

    async def tasks(self, contact_id: str | None, completed: bool | None = None) -> list[dict[str, Any]]:
        """Tasks of a contact, or with ``None`` of the whole location (``POST
        /locations/{id}/tasks/search``, paged), optionally only ``completed`` or open ones."""
        if contact_id:
            return [
                t for t in await self.list_tasks(contact_id) if completed is None or bool(t.get("completed")) == completed
            ]
        # The hook's async twin of iter_location_tasks: the task search, and per-contact reads when
        # the token may not use it (sharing the hook's memory of that).
        found = aiter_location_tasks(self.api, self.location_id, completed=completed, page_limit=TASK_SEARCH_PAGE_LIMIT)
        async with contextlib.aclosing(found):
            return [to_jsonable(task) async for task in found]

    async def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]:
        """Open (not completed) tasks of a contact, or of the whole location."""
        return await self.tasks(contact_id, completed=False)


def _dump(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` parsed with the hook's model and dumped as the sync source dumps it."""
    return to_jsonable(model.model_validate(data))


__all__ = ["AsyncContactsClient"]
