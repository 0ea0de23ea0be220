"""Reading from HighLevel for the reconciliation: changed contacts, the contact id scan, and the
tasks and notes of a set of contacts. Everything streams; nothing holds a whole location.

All reads go through one :class:`~airflow_provider_contacts.hooks.contacts.ContactsHook`, so they
share its per-(base URL, location) rate limiter, retries and request counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.dates import format_datetime, parse_datetime
from airflow_provider_contacts.errors import GHLAPIError
from airflow_provider_contacts.failures import is_not_found
from airflow_provider_contacts.hooks.pagination import SearchPaging

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import ContactsHook

__all__ = ["Children", "Extractor", "iso_utc", "parse_updated", "to_api_dict"]


#: Fields the API adds per response, not per record (the search cursor): never stored or hashed.
VOLATILE_FIELDS = frozenset({"searchAfter"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def to_api_dict(obj: Any) -> dict[str, Any]:
    """An API record as the JSON dict HighLevel sent.

    Pydantic models are dumped with only the fields the answer carried (``exclude_unset``), dates
    back in HighLevel's form (``2024-05-01T12:30:00.000Z``); per-response fields such as the
    search cursor ``searchAfter`` are dropped, so the same record always hashes the same.
    """
    if isinstance(obj, Mapping):
        data = dict(obj)
    else:
        dump = getattr(obj, "model_dump", None)
        if dump is None:
            raise TypeError(f"cannot turn {type(obj).__name__} into an API dict")
        data = dump(mode="python", by_alias=True, exclude_unset=True)
    return {k: _jsonable(v) for k, v in data.items() if k not in VOLATILE_FIELDS}


def parse_updated(record: Mapping[str, Any]) -> datetime | None:
    """The record's ``dateUpdated`` (falling back to ``dateAdded``) as aware UTC, or ``None``
    (also for values that are not dates: :func:`airflow_provider_contacts.dates.parse_datetime`)."""
    for key in ("dateUpdated", "dateAdded"):
        try:
            value = parse_datetime(record.get(key))
        except ValueError:
            value = None
        if value is not None:
            return value
    return None


def iso_utc(moment: datetime) -> str:
    """``2024-05-01T12:30:00.000Z``: the millisecond ISO form HighLevel uses
    (:func:`airflow_provider_contacts.dates.format_datetime`)."""
    return format_datetime(moment)


@dataclass
class Children:
    """Tasks and notes read for a set of contacts (API dicts, each with ``contactId``).

    ``contact_ids`` are the contacts whose activity is complete here; ``vanished`` the ones that
    HighLevel no longer knew when their activity was read.
    """

    contact_ids: list[str]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def of(self, entity: str) -> list[dict[str, Any]]:
        """``tasks`` or ``notes``."""
        return self.tasks if entity == "tasks" else self.notes


class Extractor:
    """Reads for one location through ``hook``.

    :param page_limit: contacts per search page (HighLevel allows up to 500).
    :param max_workers: parallel requests for tasks and notes. Tasks come from the batched
        location task search (``POST /locations/{id}/tasks/search``, many contacts per request;
        the hook falls back to ``GET /contacts/{id}/tasks`` when the token lacks the scope), notes
        from one ``GET /contacts/{id}/notes`` per contact.
    """

    def __init__(self, hook: ContactsHook, *, page_limit: int = 500, max_workers: int = 8) -> None:
        self.hook = hook
        self.page_limit = page_limit
        self.max_workers = max_workers

    def contacts_updated_since(
        self, since: datetime | None, on_total: Callable[[int], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Contacts with ``dateUpdated >= since`` (all when ``None``), oldest update first.

        The order (``dateUpdated`` ascending, id breaking ties) is what makes a watermark taken
        after any committed batch safe: everything not yet loaded sorts after it.

        :param on_total: called once with the search answer's ``total`` (the number of matching
            contacts, ``POST /contacts/search``), as soon as the first page is read; not called
            when the answer carries no total.
        """
        filters = None
        if since is not None:
            filters = [{"field": "dateUpdated", "operator": "range", "value": {"gte": iso_utc(since)}}]
        sort = [{"field": "dateUpdated", "direction": "asc"}]
        for contact in self._search(filters, sort, on_total):
            yield to_api_dict(contact)

    def contact_ids(self, on_total: Callable[[int], None] | None = None) -> Iterator[str]:
        """Every contact id of the location (the deletion scan), in ``dateAdded`` order.

        ``dateAdded`` never changes, so contacts updated during the scan cannot slip between pages.
        ``on_total``: as for :meth:`contacts_updated_since`.
        """
        sort = [{"field": "dateAdded", "direction": "asc"}]
        for contact in self._search(None, sort, on_total):
            yield str(getattr(contact, "id", None) or to_api_dict(contact)["id"])

    def _search(
        self, filters: list[dict[str, Any]] | None, sort: list[dict[str, Any]], on_total: Callable[[int], None] | None
    ) -> Iterator[Any]:
        """The contacts of the search, page by page, reporting the first page's ``total``.

        With a hook that reads single pages (``search_contacts``, which answers a
        :class:`~airflow_provider_contacts.models.ContactSearchPage`), the pages are walked here
        with the hook's own :class:`~airflow_provider_contacts.hooks.pagination.SearchPaging`
        (``searchAfter`` cursors, the same stop rules and repeated-cursor guard as
        ``iter_search_contacts``) so the total is seen; any other hook is read through
        ``iter_search_contacts`` and the total stays unknown.
        """
        search_page = getattr(self.hook, "search_contacts", None)
        if on_total is None or search_page is None:
            yield from self.hook.iter_search_contacts(filters=filters, sort=sort, page_limit=self.page_limit)
            return
        paging = SearchPaging(self.page_limit)
        first = True
        while True:
            page = search_page(filters=filters, sort=sort, page_limit=self.page_limit, search_after=paging.cursor)
            total = getattr(page, "total", None)
            if first and isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                on_total(total)
            first = False
            contacts = list(getattr(page, "contacts", None) or [])
            yield from contacts
            if not paging.advance(contacts):
                return

    def custom_fields(self) -> list[dict[str, Any]]:
        """The location's contact custom field definitions (``GET /locations/{id}/customFields``
        with ``model=contact``; definitions of other models are left out)."""
        fields = [to_api_dict(f) for f in self.hook.get_custom_fields(model="contact")]
        return [f for f in fields if f.get("model") in (None, "contact")]

    def children(self, contact_ids: Sequence[str]) -> Children:
        """Every task and note of the given contacts.

        A contact that HighLevel no longer knows (404, or 400 ``Contact not found``: see
        :func:`~airflow_provider_contacts.failures.is_not_found`) is not an error: the batch is read
        again contact by contact and the vanished ones are listed in ``Children.vanished`` (the
        deletion scan tombstones them).
        """
        out = Children(list(contact_ids))
        if not contact_ids:
            return out
        try:
            for activity in self.hook.fetch_tasks_and_notes(list(contact_ids), max_workers=self.max_workers):
                out.tasks.extend(_with_contact(to_api_dict(t), activity.contact_id) for t in activity.tasks)
                out.notes.extend(_with_contact(to_api_dict(n), activity.contact_id) for n in activity.notes)
        except GHLAPIError as exc:
            if not is_not_found(exc):
                raise
            return self._children_one_by_one(contact_ids)
        return out

    def _children_one_by_one(self, contact_ids: Sequence[str]) -> Children:
        out = Children([])
        for cid in contact_ids:
            try:
                tasks = [_with_contact(to_api_dict(t), cid) for t in self.hook.list_tasks(cid)]
                notes = [_with_contact(to_api_dict(n), cid) for n in self.hook.list_notes(cid)]
            except GHLAPIError as exc:
                if not is_not_found(exc):
                    raise
                out.vanished.append(cid)
                continue
            out.contact_ids.append(cid)
            out.tasks.extend(tasks)
            out.notes.extend(notes)
        return out

    def contact_exists(self, contact_id: str) -> bool:
        """Whether ``GET /contacts/{id}`` finds the contact (used to confirm a deletion).

        Not found (404, or the live API's 400 ``Contact not found``) is ``False``, never an error;
        the answer itself is not written anywhere (contacts are stored from the search only, so a
        contact's stored shape and content hash never depend on which endpoint read it).
        """
        try:
            self.hook.get_contact(contact_id)
        except GHLAPIError as exc:
            if is_not_found(exc):
                return False
            raise
        return True


def _with_contact(record: dict[str, Any], contact_id: str) -> dict[str, Any]:
    if not record.get("contactId"):
        record["contactId"] = contact_id
    return record
