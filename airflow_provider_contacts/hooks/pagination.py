"""Small building blocks of the hook's paginators, without I/O.

The paginators themselves are plans of the hook's operation mixins (they need its requests; see
:mod:`.specs`); this module holds what they share, sync and async alike: the ``searchAfter``
cursor of the advanced search (:class:`SearchPaging`) and the stop rules of ``limit``/``skip``
listings (:class:`SkipPaging`, :func:`pages_by_skip`), a guard against servers that repeat a
cursor, the advanced search's request body, and lazy batching of an iterable of ids.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from airflow_provider_contacts.errors import GHLAPIError, GHLPaginationError
from airflow_provider_contacts.models import (
    TASK_SEARCH_MAX_LIMIT,
    Contact,
    SearchContactsBody,
    SearchFilter,
    SearchFilterGroup,
    SearchSort,
    validate_body,
)

T = TypeVar("T")

#: Filters of an advanced search: ``SearchFilter``/``SearchFilterGroup`` models or dicts.
SearchFilters = Sequence[SearchFilter | SearchFilterGroup | dict[str, Any]]
#: Sort of an advanced search: ``SearchSort`` models or dicts.
SearchSorts = Sequence[SearchSort | dict[str, Any]]

#: Largest ``pageLimit`` of the advanced search.
MAX_SEARCH_PAGE_LIMIT = 500
#: Largest ``limit`` of the legacy ``GET /contacts/``.
MAX_LEGACY_LIMIT = 100
#: Largest ``limit`` of ``GET /contacts/business/{businessId}`` (HighLevel and the sandbox cap it).
MAX_BUSINESS_LIMIT = 100
#: HighLevel's page-size caps are multiples of this (25, 100, 500, 1000); see :func:`pages_by_skip`.
CAP_STEP = 25
#: Largest ``limit`` of the location task search (re-exported from the request body model).
MAX_TASK_SEARCH_LIMIT = TASK_SEARCH_MAX_LIMIT


class CursorGuard:
    """Remembers the cursors of one iteration and refuses a repeated one.

    :param operation: the operationId being paged, named in the error.
    :param advice: what the caller can do instead, appended to the error (a full sentence).
    """

    def __init__(self, operation: str, advice: str) -> None:
        self.operation = operation
        self.advice = advice
        self._seen: set[Hashable] = set()

    def check(self, cursor: Hashable) -> None:
        """Record ``cursor``; raise :class:`GHLPaginationError` if it was seen before."""
        if cursor in self._seen:
            raise GHLPaginationError(
                f"{self.operation}: the API returned the cursor {cursor!r} a second time after "
                f"{len(self._seen)} pages; stopping instead of looping forever. {self.advice}"
            )
        self._seen.add(cursor)


class SkipPaging:
    """The stop rules of a ``limit``/``skip`` paged listing, without I/O, so that sync and async
    loops page alike (see :func:`pages_by_skip` for the sync one).

    A server may cap the page size silently (HighLevel does), so a page shorter than the effective
    page size (at first ``limit``) ends the listing only when it cannot be such a cap:

    * an empty page always ends it; a full page never does (a misreported total cannot cut it);
    * a short page with a total: the end once ``total`` items were read, else a cap;
    * a short page without a total: the end, unless it is the first page and its length is a
      multiple of :data:`CAP_STEP` (a possible cap): then one more page tells (empty or shorter:
      the end; as long: the cap). A small listing thus still costs one request.

    A cap becomes the effective page size for the rest of the listing.

    :param limit: the page size asked for.
    :param operation: operationId named in errors.
    """

    def __init__(self, limit: int, operation: str) -> None:
        self.skip = 0  #: ``skip`` of the next page to read
        self.page_size = limit
        self.operation = operation
        self._previous: list[Any] | None = None

    def advance(self, items: Sequence[Any], total: int | None) -> bool:
        """Account for one page just read (at :attr:`skip`); ``True`` when another must be read.

        :param total: the number of matches when the API reports one, else ``None``.
        :raises GHLPaginationError: when a page repeats the previous one (a server that ignores
            ``skip`` would otherwise be read forever).
        """
        if not items:
            return False
        if len(items) < self.page_size:
            if total is not None:
                capped = self.skip + len(items) < total
            else:
                capped = not self.skip and not len(items) % CAP_STEP  # or the end: the next page tells
            if not capped:
                return False
            self.page_size = len(items)
        ids = [item.get("id") if isinstance(item, dict) else getattr(item, "id", item) for item in items]
        if ids == self._previous:
            raise GHLPaginationError(
                f"{self.operation}: the API returned the same page again for skip={self.skip}; stopping "
                "instead of looping forever"
            )
        self._previous = ids
        self.skip += len(items)
        return True


def pages_by_skip(
    fetch: Callable[[int], tuple[Sequence[T], int | None]], limit: int, operation: str
) -> Iterator[T]:
    """Every item of a ``limit``/``skip`` paged listing, page by page, stopping by the rules of
    :class:`SkipPaging`.

    ``fetch(skip)`` returns one page of at most ``limit`` items and the total number of matches
    when the API reports one (else ``None``).

    :raises GHLPaginationError: when a page repeats the previous one.
    """
    paging = SkipPaging(limit, operation)
    while True:
        items, total = fetch(paging.skip)
        yield from items
        if not paging.advance(items, total):
            return


#: contacts.json ``operationId`` of the advanced search.
SEARCH_OPERATION = "search-contacts-advanced"

#: What to do when the advanced search hands back a cursor twice (appended to the pagination error).
REPEATED_CURSOR_ADVICE = (
    "Read again later; if it keeps repeating, split the read with filters (e.g. a 'dateUpdated' or "
    "'dateAdded' range per call) so each search needs fewer pages"
)


def search_body(
    location_id: str,
    filters: SearchFilters | None = None,
    sort: SearchSorts | None = None,
    query: str | None = None,
    page: int | None = 1,
    page_limit: int = MAX_SEARCH_PAGE_LIMIT,
    search_after: list[Any] | None = None,
) -> dict[str, Any]:
    """The validated JSON body of one ``POST /contacts/search`` page.

    :param page: 1-based page; not sent when ``search_after`` is given.
    :param page_limit: contacts per page, 1..500.
    :param search_after: ``searchAfter`` of the last contact of the previous page.
    :raises GHLValidationError: naming each bad field (before any request).
    """
    fields = {
        "locationId": location_id,
        "pageLimit": page_limit,
        "searchAfter": search_after,
        "page": page if search_after is None else None,
        "filters": list(filters) if filters else None,
        "sort": list(sort) if sort else None,
        "query": query or None,
    }
    body = {k: v for k, v in fields.items() if v is not None}
    return validate_body(SearchContactsBody, body, SEARCH_OPERATION).payload()


class SearchPaging:
    """The ``searchAfter`` cursor of one advanced search iteration (``POST /contacts/search``).

    The first page is requested with ``page=1`` (:attr:`cursor` ``None``); every later one with
    the ``searchAfter`` of the last contact of the page before, so the 10,000-result cap of
    page-based search never applies. A page shorter than ``page_limit`` is the last.

    :param page_limit: contacts per page.
    """

    def __init__(self, page_limit: int) -> None:
        self.page_limit = page_limit
        self.cursor: list[Any] | None = None  #: ``searchAfter`` of the next page (``None``: the first)
        self._guard = CursorGuard(SEARCH_OPERATION, REPEATED_CURSOR_ADVICE)

    def advance(self, contacts: Sequence[Contact]) -> bool:
        """Account for one page just read; ``True`` when another must be read (:attr:`cursor`).

        :raises GHLAPIError: a full page whose last contact carries no cursor.
        :raises GHLPaginationError: the cursor was already used in this iteration.
        """
        if len(contacts) < self.page_limit:
            return False
        cursor = contacts[-1].searchAfter
        if not cursor:
            raise GHLAPIError(
                "the search answer carries no 'searchAfter' on its contacts; cannot page further",
                operation=SEARCH_OPERATION,
            )
        self._guard.check(tuple(map(str, cursor)))
        self.cursor = list(cursor)
        return True


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` consecutive items, read lazily from ``items``."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


__all__ = [
    "CAP_STEP",
    "MAX_BUSINESS_LIMIT",
    "MAX_LEGACY_LIMIT",
    "MAX_SEARCH_PAGE_LIMIT",
    "MAX_TASK_SEARCH_LIMIT",
    "REPEATED_CURSOR_ADVICE",
    "SEARCH_OPERATION",
    "CursorGuard",
    "SearchFilters",
    "SearchPaging",
    "SearchSorts",
    "SkipPaging",
    "batched",
    "pages_by_skip",
    "search_body",
]
