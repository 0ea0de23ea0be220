"""Advanced contact search for asyncio code (triggers): the async twin of ``iter_search_contacts``.

:func:`aiter_search_contacts` pages ``POST /contacts/search`` (``search-contacts-advanced``) over
the hook's :class:`~airflow_provider_contacts.hooks.transport.AsyncTransport` exactly as
:meth:`ContactOperations.iter_search_contacts
<airflow_provider_contacts.hooks.contact_ops.ContactOperations.iter_search_contacts>` does with
the sync transport: the first page with ``page=1``, every later one with the ``searchAfter``
cursor of the last contact (so the 10,000-result cap of page-based search never applies), a stop
after a short page, and the hook's :class:`~airflow_provider_contacts.hooks.pagination.CursorGuard`
against a server repeating a cursor. The body is validated by the same
:class:`~airflow_provider_contacts.models.SearchContactsBody` and the answer parsed by the same
:class:`~airflow_provider_contacts.models.ContactSearchPage`, so both flavours send and yield the
same things.

The pure steps (:func:`~airflow_provider_contacts.hooks.pagination.search_body`,
:func:`~airflow_provider_contacts.hooks.pagination.next_search_cursor`) live in ``pagination`` and
are shared with the sync paginator. Paths with ids are built by the hook's one path builder,
:func:`~airflow_provider_contacts.hooks.operations.api_path`: a location or contact id that is not
a HighLevel id raises :class:`~airflow_provider_contacts.errors.GHLValidationError` naming it
before any request, as in the sync operations.

:func:`aiter_location_tasks` is the async twin of ``ActivityOperations.iter_location_tasks``: the
location task search (locations.json ``task-search``) paged by ``skip`` with the same stop rules
(:class:`~airflow_provider_contacts.hooks.pagination.SkipPaging`), and the same fallback to one
``GET /contacts/{id}/tasks`` per contact when the token may not use the search (401 ``not
authorized for this scope`` or 401/403; one warning per hook; see
:mod:`~airflow_provider_contacts.hooks.task_access`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from itertools import chain
from typing import Any

from airflow_provider_contacts.errors import GHLAuthError, GHLNotFoundError
from airflow_provider_contacts.hooks.operations import READ, TASKS_READ, api_path, flatten
from airflow_provider_contacts.hooks.pagination import (
    MAX_SEARCH_PAGE_LIMIT,
    MAX_TASK_SEARCH_LIMIT,
    SEARCH_OPERATION,
    CursorGuard,
    SkipPaging,
    batched,
    next_search_cursor,
    search_body,
)
from airflow_provider_contacts.hooks.task_access import TaskSearchAccess
from airflow_provider_contacts.hooks.transport import AsyncTransport
from airflow_provider_contacts.models import (
    Contact,
    ContactSearchPage,
    SearchFilter,
    SearchFilterGroup,
    SearchSort,
    Task,
    TaskSearchBody,
    validate_body,
)

#: What to do when the search hands back a cursor twice (appended to the pagination error).
REPEATED_CURSOR_ADVICE = (
    "The next poll reads it again; if it keeps repeating, narrow the search with filters "
    "(e.g. a 'dateUpdated' range) so it needs fewer pages"
)


async def aiter_search_contacts(
    api: AsyncTransport,
    location_id: str,
    filters: Sequence[SearchFilter | SearchFilterGroup | dict[str, Any]] | None = None,
    sort: Sequence[SearchSort | dict[str, Any]] | None = None,
    query: str | None = None,
    page_limit: int = MAX_SEARCH_PAGE_LIMIT,
    scope: str = READ,
) -> AsyncIterator[Contact]:
    """Every contact matching the search, page by page (one page in memory at a time).

    :param api: the hook's async transport (``async with hook.async_transport() as api``).
    :param location_id: the location searched.
    :param filters: ``SearchFilter``/``SearchFilterGroup`` models or dicts.
    :param sort: ``SearchSort`` models or dicts (default: the API's, dateAdded ascending).
    :param page_limit: contacts per request, 1..500.
    :param scope: the OAuth scope named in a 403 error.
    """
    guard = CursorGuard(SEARCH_OPERATION, REPEATED_CURSOR_ADVICE)
    cursor: list[Any] | None = None
    while True:
        body = search_body(location_id, filters, sort, query, page_limit=page_limit, search_after=cursor)
        data = await api.request("POST", "/contacts/search", operation=SEARCH_OPERATION, json_body=body, scope=scope)
        page = ContactSearchPage.model_validate(data)
        for contact in page.contacts:
            yield contact
        cursor = next_search_cursor(page.contacts, page_limit, guard)
        if cursor is None:
            return


async def _search_task_pages(
    api: AsyncTransport, location_id: str, contact_ids: list[str] | None, completed: bool | None, page_size: int
) -> AsyncIterator[Task]:
    """Every task of one location task search, page by page (the sync paginator's stop rules)."""
    path = api_path("/locations/{location_id}/tasks/search", operation="task-search", location_id=location_id)
    paging = SkipPaging(page_size, "task-search")
    while True:
        body: dict[str, Any] = {"limit": page_size, "skip": paging.skip}
        if contact_ids is not None:
            body["contactId"] = contact_ids
        if completed is not None:
            body["completed"] = completed
        payload = validate_body(TaskSearchBody, body, "task-search").payload()
        data = await api.request("POST", path, operation="task-search", json_body=payload, scope=TASKS_READ)
        tasks = [Task.model_validate(t) for t in flatten(data.get("tasks"))]
        for task in tasks:
            yield task
        total = data.get("total") if isinstance(data.get("total"), int) else None
        if not paging.advance(tasks, total):
            return


async def alist_tasks(api: AsyncTransport, contact_id: str, *, missing_ok: bool = False) -> list[Task]:
    """``GET /contacts/{contactId}/tasks`` (``get-all-tasks``): the contact's tasks, each with
    ``contactId``. Async twin of ``ContactsHook.list_tasks``.

    :param missing_ok: a contact that does not exist (404, or the live API's 400 ``Contact not
        found``) has no tasks (``[]``) instead of raising :class:`GHLNotFoundError`.
    """
    path = api_path("/contacts/{contact_id}/tasks", operation="get-all-tasks", contact_id=contact_id)
    try:
        data = await api.request("GET", path, operation="get-all-tasks", scope=READ)
    except GHLNotFoundError:
        if missing_ok:
            return []
        raise
    return [Task.model_validate({**t, "contactId": t.get("contactId") or contact_id}) for t in data.get("tasks") or []]


async def aiter_location_tasks(
    api: AsyncTransport,
    location_id: str,
    contact_ids: Iterable[str] | None = None,
    completed: bool | None = None,
    batch_size: int = 100,
    page_limit: int = 100,
    access: TaskSearchAccess | None = None,
) -> AsyncIterator[Task]:
    """Tasks of the location (or of ``contact_ids``, sent in batches of ``batch_size``), page by
    page: the async twin of ``ContactsHook.iter_location_tasks`` (locations.json ``task-search``).

    When the token may not use the task search - 401 ``The token is not authorized for this
    scope.`` (:class:`GHLScopeError`, raised without spending a token refresh) or another 401/403 -
    the tasks come from one ``GET /contacts/{id}/tasks`` per contact instead (the contacts from
    the advanced search when no ``contact_ids`` are given; a contact that vanished meanwhile has
    no tasks), one warning per hook names ``locations/tasks.readonly``, and the search is not tried
    again through that hook (sync or async). A task already yielded is not yielded twice.

    :param api: the hook's async transport (``async with hook.async_transport() as api``).
    :param completed: only completed (``True``) or open (``False``) tasks; ``None``: all.
    :param page_limit: tasks per search page, 1..1000.
    :param access: the per-hook task search memory (default: ``api.task_search``).
    :raises GHLLocationAccessError: the token belongs to another location (no fallback).
    """
    access = access or getattr(api, "task_search", None) or TaskSearchAccess()
    page_size = min(page_limit, MAX_TASK_SEARCH_LIMIT)
    seen: set[str] = set()
    batches = batched(contact_ids, batch_size) if contact_ids is not None else None
    current: list[str] = []  # the batch being searched when the search was refused
    if access.allowed:
        try:
            if batches is None:
                async for task in _search_task_pages(api, location_id, None, completed, page_size):
                    seen.add(task.id)
                    yield task
                return
            for current in batches:
                async for task in _search_task_pages(api, location_id, current, completed, page_size):
                    if task.id not in seen and task.contactId in current:
                        seen.add(task.id)
                        yield task
            return
        except GHLAuthError as exc:
            if not access.refuse(exc):
                raise
    # Per contact: the refused batch and the rest of the given ids, or every contact of the location.
    if batches is None:
        async for contact in aiter_search_contacts(api, location_id):
            for task in await alist_tasks(api, contact.id, missing_ok=True):
                if task.id not in seen and (completed is None or task.completed == completed):
                    seen.add(task.id)
                    yield task
        return
    for batch in chain([current], batches):
        for cid in batch:
            for task in await alist_tasks(api, cid, missing_ok=True):
                if task.id not in seen and (completed is None or task.completed == completed):
                    seen.add(task.id)
                    yield task


__all__ = ["REPEATED_CURSOR_ADVICE", "aiter_location_tasks", "aiter_search_contacts", "alist_tasks"]
