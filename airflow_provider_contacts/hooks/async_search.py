"""Compatibility: the async reads as functions of an open transport.

The async reads are methods of the hook now - ``hook.aiter_search_contacts(...)``,
``hook.alist_tasks(...)``, ``hook.aiter_location_tasks(...)`` - which read the connection without
blocking the loop and open their own transport. These functions run the same reads (the hook's own
plans and requests) on a transport the caller holds open, ``async with hook.async_transport() as
api``; ``location_id`` must be that hook's location (the transport paces under its limiter).
Prefer the hook's methods; these go once nothing calls them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow_provider_contacts.errors import GHLConfigError, GHLNotFoundError
from airflow_provider_contacts.hooks.pagination import MAX_SEARCH_PAGE_LIMIT, SearchFilters, SearchSorts
from airflow_provider_contacts.hooks.specs import adrive
from airflow_provider_contacts.hooks.transport import AsyncTransport
from airflow_provider_contacts.models import Contact, Task


def _hook_of(api: AsyncTransport, location_id: str | None = None) -> Any:
    """The hook that opened ``api``; ``location_id`` must be its location."""
    hook = getattr(api, "owner", None)
    if hook is None:
        raise TypeError("pass the transport of 'async with hook.async_transport() as api', or use the hook's async methods")
    if location_id is not None and location_id != hook.location_id:
        raise GHLConfigError(
            f"location_id {location_id!r} is not the location of the hook that opened the transport "
            f"({hook.location_id!r}); use GHLContactsHook(location_id={location_id!r})"
        )
    return hook


def aiter_search_contacts(
    api: AsyncTransport,
    location_id: str,
    filters: SearchFilters | None = None,
    sort: SearchSorts | None = None,
    query: str | None = None,
    page_limit: int = MAX_SEARCH_PAGE_LIMIT,
) -> AsyncIterator[Contact]:
    """``hook.aiter_search_contacts(filters, sort, query, page_limit)`` on ``api``."""
    hook = _hook_of(api, location_id)
    return adrive(hook._contact_search(filters, sort, query, page_limit), api.request)


async def alist_tasks(api: AsyncTransport, contact_id: str, *, missing_ok: bool = False) -> list[Task]:
    """``hook.alist_tasks(contact_id)`` on ``api``; with ``missing_ok`` a contact that does not
    exist (404, or the live API's 400 ``Contact not found``) has no tasks (``[]``)."""
    try:
        return await _hook_of(api)._list_tasks(contact_id).asend(api.request)
    except GHLNotFoundError:
        if missing_ok:
            return []
        raise


def aiter_location_tasks(
    api: AsyncTransport,
    location_id: str,
    contact_ids: Iterable[str] | None = None,
    completed: bool | None = None,
    batch_size: int = 100,
    page_limit: int = 100,
) -> AsyncIterator[Task]:
    """``hook.aiter_location_tasks(contact_ids, completed, batch_size, page_limit)`` on ``api``
    (the task search, or per-contact lists when the token may not use it)."""
    hook = _hook_of(api, location_id)
    return adrive(hook._location_tasks(contact_ids, completed, batch_size, page_limit), api.request)


__all__ = ["aiter_location_tasks", "aiter_search_contacts", "alist_tasks"]
