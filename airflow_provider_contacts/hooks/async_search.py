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
are shared with the sync paginator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow_provider_contacts.hooks.operations import READ
from airflow_provider_contacts.hooks.pagination import (
    MAX_SEARCH_PAGE_LIMIT,
    SEARCH_OPERATION,
    CursorGuard,
    next_search_cursor,
    search_body,
)
from airflow_provider_contacts.hooks.transport import AsyncTransport
from airflow_provider_contacts.models import (
    Contact,
    ContactSearchPage,
    SearchFilter,
    SearchFilterGroup,
    SearchSort,
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


__all__ = ["REPEATED_CURSOR_ADVICE", "aiter_search_contacts"]
