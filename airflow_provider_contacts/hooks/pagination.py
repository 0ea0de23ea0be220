"""Small building blocks of the hook's paginators.

The paginators themselves live on :class:`~airflow_provider_contacts.hooks.contacts.ContactsHook`
(they need its requests); this module holds what they share: a guard against servers that repeat a
cursor, the ``limit``/``skip`` page loop, and lazy batching of an iterable of ids.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from airflow_provider_contacts.errors import GHLPaginationError

T = TypeVar("T")

#: Page-based contact search cannot go past this many results (page * pageLimit).
SEARCH_WINDOW = 10_000
#: Largest ``pageLimit`` of the advanced search.
MAX_SEARCH_PAGE_LIMIT = 500
#: Largest ``limit`` of the legacy ``GET /contacts/``.
MAX_LEGACY_LIMIT = 100


class CursorGuard:
    """Remembers the cursors of one iteration and refuses a repeated one.

    :param operation: named in the error.
    """

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self._seen: set[Hashable] = set()

    def check(self, cursor: Hashable) -> None:
        """Record ``cursor``; raise :class:`GHLPaginationError` if it was seen before."""
        if cursor in self._seen:
            raise GHLPaginationError(
                f"{self.operation}: the API returned the cursor {cursor!r} a second time after "
                f"{len(self._seen)} pages; stopping instead of looping forever. Use the advanced "
                "search (iter_search_contacts), which pages with searchAfter"
            )
        self._seen.add(cursor)


def pages_by_skip(fetch: Callable[[int], Sequence[T]], limit: int, operation: str) -> Iterator[T]:
    """Every item of a ``limit``/``skip`` paged listing, page by page.

    ``fetch(skip)`` returns one page of at most ``limit`` items. Stops after a short page; raises
    :class:`GHLPaginationError` when a full page repeats the previous one (a server that ignores
    ``skip`` would otherwise be read forever).
    """
    skip = 0
    previous: list[Any] | None = None
    while True:
        items = fetch(skip)
        yield from items
        if len(items) < limit:
            return
        ids = [getattr(item, "id", item) for item in items]
        if ids == previous:
            raise GHLPaginationError(
                f"{operation}: the API returned the same page again for skip={skip}; stopping "
                "instead of looping forever"
            )
        previous = ids
        skip += len(items)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` consecutive items, read lazily from ``items``."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


__all__ = ["MAX_LEGACY_LIMIT", "MAX_SEARCH_PAGE_LIMIT", "SEARCH_WINDOW", "CursorGuard", "batched", "pages_by_skip"]
