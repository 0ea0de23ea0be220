"""Where a sensor condition's records come from: the hook, in a worker or in the triggerer.

A :class:`~airflow_provider_contacts.sensors.conditions.GHLCondition` asks its *source* for one
read by name (:class:`~airflow_provider_contacts.sensors.conditions.GHLConditionSource`). Two
sources serve those reads, both thin adapters over the hook's methods, and both dump the hook's
models (``Contact``, ``Task``, ``Note``) to API-shaped dicts the same way
(:func:`~airflow_provider_contacts.results.to_jsonable`), so a condition sees the same values in
every sensor mode:

* :class:`GHLHookSource`: the hook's sync methods (poke and reschedule modes, and the deferrable
  mode's first check in the worker);
* :class:`GHLAsyncHookSource`: the hook's async twins, in the triggerer (deferrable mode and
  event-driven scheduling): the same requests, with the same token source (private token or
  OAuth, a 401 retried once after a refresh), headers, timeouts, process-wide limiter per (base
  URL, location), retry rules and error classes as the sync calls. The connection is read with
  ``await hook.aload_settings()`` (``BaseHook.aget_connection``), never with the sync lookup, which
  must not run in the triggerer's event loop. Messages never carry a token.

Sensors and triggers import this module at DAG parse time: the hook (and with it ``requests`` and
the async transport) is imported only when a source is built for a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.hooks.pagination import MAX_SEARCH_PAGE_LIMIT
from airflow_provider_contacts.results import to_jsonable

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: ``limit`` of one location task search page (``POST /locations/{id}/tasks/search``) in the triggerer.
TASK_SEARCH_PAGE_LIMIT = 100


def _search_page_limit(limit: int) -> int:
    """Contacts per search page for a read of at most ``limit`` contacts."""
    return max(1, min(MAX_SEARCH_PAGE_LIMIT, limit))


def _dump(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The hook's models as API-shaped dicts."""
    return [to_jsonable(r) for r in records]


def _completed(tasks: list[dict[str, Any]], completed: bool | None) -> list[dict[str, Any]]:
    """The tasks whose ``completed`` flag is ``completed`` (all of them for ``None``)."""
    return [t for t in tasks if completed is None or bool(t.get("completed")) == completed]


class GHLHookSource:
    """The synchronous condition source: the hook's reads, answers dumped to API-shaped dicts."""

    def __init__(self, hook: GHLContactsHook) -> None:
        self.hook = hook

    def search_contacts(self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        found = self.hook.iter_search_contacts(filters=filters, sort=sort, page_limit=_search_page_limit(limit))
        return _dump(islice(found, limit))

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        return _dump(self.hook.list_tasks(contact_id))

    def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]:
        return _dump([self.hook.get_task(contact_id, task_id)])

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        return _dump(self.hook.list_notes(contact_id))

    def tasks(self, contact_id: str | None, completed: bool | None = None) -> list[dict[str, Any]]:
        """A contact's tasks, or with ``None`` every task of the location (``iter_location_tasks``)."""
        if contact_id:
            return _completed(self.list_tasks(contact_id), completed)
        return _dump(self.hook.iter_location_tasks(completed=completed))

    def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]:
        return self.tasks(contact_id, completed=False)


class GHLAsyncHookSource:
    """The asynchronous condition source: the hook's async twins (``aiter_search_contacts``,
    ``alist_tasks``, ``aget_task``, ``alist_notes``, ``aiter_location_tasks``), awaited, answers
    dumped to API-shaped dicts as :class:`GHLHookSource` dumps them.

    Each twin sends the same request as its sync twin, with the same pacing, retries, fallbacks
    (the location task search falls back to per-contact reads without ``locations/tasks.readonly``,
    sharing the hook's memory of that) and errors; it opens its own ``httpx.AsyncClient``. Build
    one with :meth:`connect` (it reads the connection first, without blocking the event loop).
    """

    def __init__(self, hook: GHLContactsHook) -> None:
        self.hook = hook

    @classmethod
    async def connect(cls, ghl_conn_id: str = DEFAULT_CONN_ID, location_id: str | None = None) -> GHLAsyncHookSource:
        """A source over a new hook of ``ghl_conn_id`` (and ``location_id`` override) whose connection
        is read - ``await hook.aload_settings()``, never the sync lookup, which must not run in the
        triggerer's event loop - so a missing or invalid connection fails here, before any read."""
        from airflow_provider_contacts.hooks.contacts import GHLContactsHook

        hook = GHLContactsHook(ghl_conn_id=ghl_conn_id, location_id=location_id)
        await hook.aload_settings()
        return cls(hook)

    @property
    def location_id(self) -> str | None:
        """The location the source reads (the hook's override, else its connection's)."""
        return self.hook.location_id

    # -- reads (GHLConditionSource, awaited) -------------------------------------------------
    async def search_contacts(
        self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int
    ) -> list[dict[str, Any]]:
        """Every match of the search, page by page, at most ``limit`` (the last page's surplus is
        not kept: the iterator is closed as soon as ``limit`` contacts are in)."""
        out: list[dict[str, Any]] = []
        found = self.hook.aiter_search_contacts(filters=filters, sort=sort, page_limit=_search_page_limit(limit))
        async with contextlib.aclosing(found):
            async for contact in found:
                out.append(to_jsonable(contact))
                if len(out) >= limit:
                    break
        return out

    async def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        return _dump(await self.hook.alist_tasks(contact_id))

    async def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]:
        return _dump([await self.hook.aget_task(contact_id, task_id)])

    async def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        return _dump(await self.hook.alist_notes(contact_id))

    async def tasks(self, contact_id: str | None, completed: bool | None = None) -> list[dict[str, Any]]:
        """A contact's tasks, or with ``None`` every task of the location (``aiter_location_tasks``)."""
        if contact_id:
            return _completed(await self.list_tasks(contact_id), completed)
        found = self.hook.aiter_location_tasks(completed=completed, page_limit=TASK_SEARCH_PAGE_LIMIT)
        async with contextlib.aclosing(found):
            return [to_jsonable(task) async for task in found]

    async def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]:
        return await self.tasks(contact_id, completed=False)


#: The name before the ``GHL`` prefix (alias).
HookSource = GHLHookSource

__all__ = ["TASK_SEARCH_PAGE_LIMIT", "GHLAsyncHookSource", "GHLHookSource"]
