"""Contact operations of ``GHLContactsHook``: search and pagination, single records, bulk updates,
and the location's custom field definitions (the fields of its contacts).

Every request is built once from its :class:`~.operations.Endpoint` (ids checked by
:func:`~.paths.api_path`); the reads have async twins (``asearch_contacts``,
``aiter_search_contacts``, ``aget_contact``, ``aget_custom_fields``) that send the same request
through the hook's async transport and return the same models. Creates are sent exactly once (see
:meth:`ContactOperations.create_contact` and :mod:`.creates`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from airflow_provider_contacts.errors import GHLNotFoundError, GHLValidationError
from airflow_provider_contacts.hooks.creates import CreateWindow
from airflow_provider_contacts.hooks.operations import (
    CLOCK_ALLOWANCE,
    CREATE_MATCH_SKEW,
    FIELDS_READ,
    READ,
    WRITE,
    Endpoint,
    OperationsBase,
    operation,
)
from airflow_provider_contacts.hooks.pagination import (
    MAX_BUSINESS_LIMIT,
    MAX_LEGACY_LIMIT,
    MAX_SEARCH_PAGE_LIMIT,
    SEARCH_OPERATION,
    CursorGuard,
    SearchFilters,
    SearchPaging,
    SearchSorts,
    pages_by_skip,
    search_body,
)
from airflow_provider_contacts.hooks.paths import id_list
from airflow_provider_contacts.hooks.specs import Plan, RequestSpec
from airflow_provider_contacts.hooks.transport import CallReport
from airflow_provider_contacts.models import (
    BulkBusinessBody,
    BulkBusinessResult,
    BulkTagsBody,
    BulkTagsResult,
    Contact,
    ContactSearchPage,
    ContactsPage,
    CreateContact,
    CustomField,
    SearchFilter,
    SearchSort,
    UpdateContact,
    UpsertContact,
    UpsertResult,
    validate_body,
)

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

#: ``get-contact`` / ``update-contact`` / ``delete-contact`` (placeholder: the hook's parameter).
CONTACT_PATH = "/contacts/{contact_id}"

SEARCH_CONTACTS = Endpoint("POST", "/contacts/search", SEARCH_OPERATION, READ)
GET_DUPLICATE_CONTACT = Endpoint("GET", "/contacts/search/duplicate", "get-duplicate-contact", READ)
GET_CONTACTS = Endpoint("GET", "/contacts/", "get-contacts", READ)
GET_CONTACTS_BY_BUSINESS = Endpoint("GET", "/contacts/business/{business_id}", "get-contacts-by-businessId", READ)
GET_CONTACT = Endpoint("GET", CONTACT_PATH, "get-contact", READ)
CREATE_CONTACT = Endpoint("POST", "/contacts/", "create-contact", WRITE)
UPDATE_CONTACT = Endpoint("PUT", CONTACT_PATH, "update-contact", WRITE)
UPSERT_CONTACT = Endpoint("POST", "/contacts/upsert", "upsert-contact", WRITE)
DELETE_CONTACT = Endpoint("DELETE", CONTACT_PATH, "delete-contact", WRITE)
BULK_BUSINESS = Endpoint("POST", "/contacts/bulk/business", "add-remove-contact-from-business", WRITE)
BULK_TAGS = Endpoint("POST", "/contacts/bulk/tags/update/{type}", "create-association", WRITE)
GET_CUSTOM_FIELDS = Endpoint("GET", "/locations/{location_id}/customFields", "get-custom-fields", FIELDS_READ)


def _written_contact(data: Any) -> Contact:
    """The contact of a create or update answer."""
    return Contact.model_validate(data["contact"])


class ContactOperations(OperationsBase):
    """Contacts: ``search-contacts-advanced`` ... ``create-association`` of contacts.json, and
    locations.json ``get-custom-fields``."""

    # ------------------------------------------------------------------------------------------
    # Contacts: search and pagination
    # ------------------------------------------------------------------------------------------

    def _search_page(self, *args: Any, **kwargs: Any) -> RequestSpec[ContactSearchPage]:
        """One ``POST /contacts/search`` of the hook's location (``search_body``'s other arguments)."""
        body = search_body(self.require_location_id(), *args, **kwargs)
        return SEARCH_CONTACTS.spec(ContactSearchPage.model_validate, body=body)

    @operation(SEARCH_CONTACTS)
    def search_contacts(
        self,
        filters: SearchFilters | None = None,
        sort: SearchSorts | None = None,
        query: str | None = None,
        page: int | None = 1,
        page_limit: int = MAX_SEARCH_PAGE_LIMIT,
        search_after: list[Any] | None = None,
    ) -> ContactSearchPage:
        """One page of ``POST /contacts/search`` (advanced search).

        :param filters: ``SearchFilter``/``SearchFilterGroup`` models or dicts.
        :param sort: ``SearchSort`` models or dicts (default: dateAdded ascending).
        :param page: 1-based page; ignored when ``search_after`` is given.
        :param page_limit: contacts per page, 1..500.
        :param search_after: ``searchAfter`` of the last contact of the previous page.
        """
        return self._run(self._search_page, filters, sort, query, page, page_limit, search_after)

    @operation(SEARCH_CONTACTS)
    async def asearch_contacts(
        self,
        filters: SearchFilters | None = None,
        sort: SearchSorts | None = None,
        query: str | None = None,
        page: int | None = 1,
        page_limit: int = MAX_SEARCH_PAGE_LIMIT,
        search_after: list[Any] | None = None,
    ) -> ContactSearchPage:
        """Async :meth:`search_contacts`: the same request, the same :class:`ContactSearchPage`."""
        return await self._arun(self._search_page, filters, sort, query, page, page_limit, search_after)

    def _contact_search(
        self,
        filters: SearchFilters | None,
        sort: SearchSorts | None,
        query: str | None,
        page_limit: int,
        then: Callable[[list[Contact]], Plan[None]] | None = None,
    ) -> Plan[None]:
        """Every contact matching the search, page by page (:class:`~.pagination.SearchPaging`);
        with ``then``, the records of the plan ``then(contacts)`` of each page instead."""
        paging = SearchPaging(page_limit)
        while True:
            page = yield self._search_page(filters, sort, query, page_limit=page_limit, search_after=paging.cursor)
            yield from (page.contacts if then is None else then(page.contacts))
            if not paging.advance(page.contacts):
                return

    def iter_search_contacts(
        self,
        filters: SearchFilters | None = None,
        sort: SearchSorts | None = None,
        query: str | None = None,
        page_limit: int = MAX_SEARCH_PAGE_LIMIT,
    ) -> Iterator[Contact]:
        """Every contact matching the search, page by page (constant memory).

        The first page is requested with ``page=1``; every later page with ``searchAfter`` (the
        cursor of the last contact), so the 10,000-result cap of page-based search never applies.

        :raises GHLPaginationError: the API hands back a cursor it already returned.
        """
        return self._iterate(self._contact_search, filters, sort, query, page_limit)

    def aiter_search_contacts(
        self,
        filters: SearchFilters | None = None,
        sort: SearchSorts | None = None,
        query: str | None = None,
        page_limit: int = MAX_SEARCH_PAGE_LIMIT,
    ) -> AsyncIterator[Contact]:
        """Async :meth:`iter_search_contacts` (the same pages, cursors and stop rules)::

            async with contextlib.aclosing(hook.aiter_search_contacts(filters=...)) as contacts:
                async for contact in contacts:
                    ...
        """
        return self._aiterate(self._contact_search, filters, sort, query, page_limit)

    @operation(GET_DUPLICATE_CONTACT)
    def get_duplicate_contact(self, email: str | None = None, number: str | None = None) -> Contact | None:
        """The contact HighLevel's duplicate rules match for ``email`` / phone ``number``, or None."""
        if not email and not number:
            raise GHLValidationError(
                "give 'email' or 'number' (phone) to look for a duplicate", operation=GET_DUPLICATE_CONTACT.operation_id
            )

        def parse(data: Any) -> Contact | None:
            contact = data.get("contact") if isinstance(data, dict) else None
            return Contact.model_validate(contact) if contact else None

        params = {"locationId": self.require_location_id(), "email": email, "number": number}
        return self._send(GET_DUPLICATE_CONTACT.spec(parse, params=params))

    @operation(GET_CONTACTS)
    def get_contacts(
        self,
        query: str | None = None,
        limit: int = MAX_LEGACY_LIMIT,
        start_after: int | str | None = None,
        start_after_id: str | None = None,
    ) -> ContactsPage:
        """One page of the legacy ``GET /contacts/`` (``limit`` <= 100; cursor in ``.meta``)."""
        if not 1 <= limit <= MAX_LEGACY_LIMIT:
            raise GHLValidationError(
                f"parameter 'limit' must be 1..{MAX_LEGACY_LIMIT}, got {limit}", operation=GET_CONTACTS.operation_id
            )
        params = {
            "locationId": self.require_location_id(),
            "query": query,
            "limit": limit,
            "startAfter": start_after,
            "startAfterId": start_after_id,
        }
        return self._send(GET_CONTACTS.spec(ContactsPage.model_validate, params=params))

    def iter_contacts_legacy(self, query: str | None = None, limit: int = MAX_LEGACY_LIMIT) -> Iterator[Contact]:
        """Every contact through the legacy ``GET /contacts/`` (``startAfter`` + ``startAfterId``).

        :raises GHLPaginationError: if the API hands back a cursor it already returned.
        """
        guard = CursorGuard(
            GET_CONTACTS.operation_id,
            "Use the advanced search (iter_search_contacts) instead, which pages with searchAfter",
        )
        start_after: int | str | None = None
        start_after_id: str | None = None
        while True:
            page = self.get_contacts(query=query, limit=limit, start_after=start_after, start_after_id=start_after_id)
            yield from page.contacts
            meta = page.meta
            if len(page.contacts) < limit or meta is None or not meta.startAfterId:
                return
            start_after, start_after_id = meta.startAfter, meta.startAfterId  # type: ignore[assignment]
            guard.check((str(start_after), start_after_id))

    @operation(GET_CONTACTS_BY_BUSINESS)
    def get_contacts_by_business(
        self, business_id: str, limit: int = 100, skip: int = 0, query: str | None = None
    ) -> ContactsPage:
        """One page of ``GET /contacts/business/{businessId}``: ``limit`` (1..100) contacts from ``skip``.

        ``.count`` of the page is the number of contacts of the business matching ``query``.
        """
        if not 1 <= limit <= MAX_BUSINESS_LIMIT or skip < 0:
            raise GHLValidationError(
                f"parameter 'limit' must be 1..{MAX_BUSINESS_LIMIT} (got {limit}) and 'skip' >= 0 "
                f"(got {skip}); read more than {MAX_BUSINESS_LIMIT} contacts with "
                "iter_contacts_by_business, which pages with 'skip'",
                operation=GET_CONTACTS_BY_BUSINESS.operation_id,
            )
        params = {"locationId": self.require_location_id(), "limit": str(limit), "skip": str(skip), "query": query}
        return self._send(GET_CONTACTS_BY_BUSINESS.spec(ContactsPage.model_validate, params=params, business_id=business_id))

    def iter_contacts_by_business(
        self, business_id: str, query: str | None = None, limit: int = MAX_BUSINESS_LIMIT
    ) -> Iterator[Contact]:
        """Every contact of a business, page by page, each once.

        :param limit: contacts per request; above 100 (the endpoint's largest page) pages of 100
            are read, so any ``limit`` >= 1 returns every contact.
        """
        if limit < 1:
            raise GHLValidationError(
                f"parameter 'limit' must be >= 1, got {limit}", operation=GET_CONTACTS_BY_BUSINESS.operation_id
            )
        page_size = min(limit, MAX_BUSINESS_LIMIT)

        def fetch(skip: int) -> tuple[list[Contact], int | None]:
            page = self.get_contacts_by_business(business_id, limit=page_size, skip=skip, query=query)
            return page.contacts, page.count

        return pages_by_skip(fetch, page_size, GET_CONTACTS_BY_BUSINESS.operation_id)

    # ------------------------------------------------------------------------------------------
    # Contacts: single records
    # ------------------------------------------------------------------------------------------

    def _get_contact(self, contact_id: str) -> RequestSpec[Contact]:
        return GET_CONTACT.spec(lambda data: Contact.model_validate(data.get("contact", data)), contact_id=contact_id)

    @operation(GET_CONTACT)
    def get_contact(self, contact_id: str) -> Contact:
        """``GET /contacts/{contactId}`` (contacts.json ``get-contact``), parsed into the same
        :class:`Contact` as the search's contacts (see :mod:`airflow_provider_contacts.models`).

        :raises GHLNotFoundError: the contact does not exist or was deleted: a 404, or the live
            API's 400 ``Contact not found`` (ghl-live-notes.md); ``status`` keeps which.
        """
        return self._run(self._get_contact, contact_id)

    @operation(GET_CONTACT)
    async def aget_contact(self, contact_id: str) -> Contact:
        """Async :meth:`get_contact`: the same request, the same :class:`Contact` and errors."""
        return await self._arun(self._get_contact, contact_id)

    @operation(CREATE_CONTACT)
    def create_contact(self, body: CreateContact | dict[str, Any]) -> Contact:
        """``POST /contacts/``; ``locationId`` defaults to the hook's.

        Sent exactly once: after a dropped connection, timeout, 5xx or the 422-after-create quirk,
        the hook looks for the contact the failed attempt made (:meth:`_find_created_contact`) and
        returns it; otherwise it sends the create again (bounded by the retry policy). A contact
        this process's creates already returned is never returned again, so two deliberate
        identical creates (where the location allows duplicates) give two contacts.
        """
        model = validate_body(CreateContact, body, CREATE_CONTACT.operation_id)
        payload = model.payload()
        payload["locationId"] = model.locationId or self.require_location_id()
        return self._create_once(
            CREATE_CONTACT.spec(_written_contact, body=payload, replay_safe=False),
            lookup=lambda window: self._find_created_contact(payload, window),
            key=self._claim_key("contact", payload["locationId"]),
            check_422=True,
        )

    def _find_created_contact(self, payload: dict[str, Any], window: CreateWindow) -> Contact | None:
        """The contact a failed create made, if any: matching ``payload`` and new in ``window``
        (added since the attempt was sent, on the server's clock; not claimed by another create).

        The duplicate lookup by email/phone (consistent, and idempotent by nature) comes first; it
        returns the *oldest* match, so when duplicates are allowed the search settles it: newest
        first by ``dateAdded`` (from the send time when the server's clock is known), the email or
        else the names compared. A contact with neither email nor phone is found by the search
        only, which lags behind writes (ghl-live-notes.md): one it does not show yet is created again.
        """
        email, phone = payload.get("email"), payload.get("phone")
        if email or phone:
            found = self.get_duplicate_contact(email=email or None, number=phone or None)
            adopted = window.adopt([found]) if found is not None else None
            if adopted is not None:
                return adopted
        filters = []
        if window.clock.offset_s is not None:  # else the answer teaches the clock; compared below
            filters.append(SearchFilter(field="dateAdded", operator="range", value={"gte": window.since()}))
        if email:
            filters.append(SearchFilter(field="email", operator="eq", value=email))
        page = self.search_contacts(filters=filters, sort=[SearchSort(field="dateAdded", direction="desc")], page_limit=100)
        keys = ("email", "firstName", "lastName", "name", "companyName")
        matches = []
        for contact in page.contacts:
            values = contact.model_dump()
            if all(str(values.get(k) or "").lower() == str(payload[k]).lower() for k in keys if payload.get(k)):
                matches.append(contact)
        return window.adopt(matches)

    @operation(UPDATE_CONTACT)
    def update_contact(self, contact_id: str, body: UpdateContact | dict[str, Any]) -> Contact:
        """``PUT /contacts/{contactId}`` (``update-contact``) with only the fields to change.

        The body is validated by :class:`UpdateContact`, as liberal as the live API: custom field
        values as ``{"id"|"key", "fieldValue"|"field_value"|"value"}`` (``value`` is sent as
        ``fieldValue``), ``dateOfBirth`` in any of the spec's eight forms, a date or epoch
        milliseconds (sent as ``YYYY-MM-DD``), phones as HighLevel stores them.

        :raises GHLValidationError: a body refused before sending (names the place and its keys).
        :raises GHLNotFoundError: the contact does not exist (404 or 400 ``Contact not found``).
        """
        payload = validate_body(UpdateContact, body, UPDATE_CONTACT.operation_id).payload()
        return self._send(UPDATE_CONTACT.spec(_written_contact, body=payload, contact_id=contact_id))

    @operation(UPSERT_CONTACT)
    def upsert_contact(self, body: UpsertContact | dict[str, Any]) -> UpsertResult:
        """``POST /contacts/upsert``: create or update by the location's duplicate rules.

        A plain upsert is safe to resend. With ``createNewIfDuplicateAllowed`` (a create without a
        duplicate check, where the location allows duplicates) it is sent exactly once like
        :meth:`create_contact`: after an ambiguous failure the contact is looked up before any retry.

        ``new`` says whether the contact existed before this call, also after a lost answer. When
        an attempt that may have been applied (it reached HighLevel, its answer was lost: 5xx,
        timeout, dropped connection) is resent, the resend's ``new: false`` cannot tell "it was
        there before" from "our lost attempt created it". The hook then decides by the contact's
        ``dateAdded`` against the moment that attempt was sent, on the server's clock (the rule of
        the exactly-once creates, :mod:`.creates`): added since then, the contact did not exist
        before the call and ``new`` is ``True``. This costs no request unless the answer lacks a
        ``dateAdded`` date (then one ``GET /contacts/{id}``); an upsert answered at once costs
        nothing extra (no pre-send duplicate look-up). What stays ambiguous: a contact someone else
        created within about 2 s (:data:`~.operations.CLOCK_ALLOWANCE`; 2 minutes when the API
        sends no ``Date`` header) before that attempt counts as new; a contact whose ``dateAdded``
        cannot be read at all keeps the API's answer (logged).
        """
        model = validate_body(UpsertContact, body, UPSERT_CONTACT.operation_id)
        payload = model.payload()
        payload["locationId"] = model.locationId or self.require_location_id()
        if not payload.get("createNewIfDuplicateAllowed"):
            report = CallReport()
            result = self._send(UPSERT_CONTACT.spec(UpsertResult.model_validate, body=payload), report)
            if report.maybe_applied_at is not None and not result.new:
                return self._upsert_after_lost_answer(result, report.maybe_applied_at)
            return result

        def lookup(window: CreateWindow) -> UpsertResult | None:
            found = self._find_created_contact(payload, window)
            return None if found is None else UpsertResult(contact=found, new=True)

        return self._create_once(
            UPSERT_CONTACT.spec(UpsertResult.model_validate, body=payload, replay_safe=False),
            lookup=lookup,
            key=self._claim_key("contact", payload["locationId"]),
            record_id=lambda result: result.contact.id,
        )

    def _upsert_after_lost_answer(self, result: UpsertResult, sent_at: float) -> UpsertResult:
        """``result`` of an upsert resent after an attempt sent at ``sent_at`` (local epoch
        seconds) whose answer was lost, with ``new`` as before that attempt (see
        :meth:`upsert_contact`)."""
        added = result.contact.dateAdded
        if not isinstance(added, datetime):
            try:
                added = self.get_contact(result.contact.id).dateAdded
            except GHLNotFoundError:  # deleted since: nothing to tell
                added = None
        if not isinstance(added, datetime):
            log.warning(
                "%s: an attempt's answer was lost and contact %s has no readable dateAdded; 'new' is "
                "the resend's answer (False), although the lost attempt may have created it",
                UPSERT_CONTACT.operation_id, result.contact.id,
            )
            return result
        window = CreateWindow(
            key=None, sent_at=sent_at, clock=self.transport.clock, known=frozenset(),
            allowance=CLOCK_ALLOWANCE, fallback=CREATE_MATCH_SKEW,
        )
        if added < window.since():
            return result  # there before the lost attempt: updated, not created
        log.warning(
            "%s: the answer of an attempt that created contact %s was lost; the resend answered "
            "new=false; reporting new=True", UPSERT_CONTACT.operation_id, result.contact.id,
        )
        return result.model_copy(update={"new": True})

    @operation(DELETE_CONTACT)
    def delete_contact(self, contact_id: str, *, missing_ok: bool = False) -> bool:
        """``DELETE /contacts/{contactId}``; ``True`` if HighLevel confirmed (``succeded``).

        :param missing_ok: a contact that does not exist (already deleted) - 404, or the live API's
            400 ``Contact not found`` - returns ``False`` instead of raising (an idempotent delete).
        :raises GHLNotFoundError: it does not exist and ``missing_ok`` is false. Not raised when an
            earlier attempt of this call may have deleted it (its answer lost, the ``DELETE``
            resent): that gives ``True`` (see ``OperationsBase._delete``).
        """
        return self._delete(DELETE_CONTACT, missing_ok, contact_id=contact_id)

    def contact_exists(self, contact_id: str) -> bool:
        """Whether the contact exists: :meth:`get_contact` without :class:`GHLNotFoundError`
        (a 404 and the live API's 400 ``Contact not found`` both mean "no")."""
        try:
            self.get_contact(contact_id)
        except GHLNotFoundError:
            return False
        return True

    @operation(BULK_BUSINESS)
    def bulk_update_business(self, contact_ids: Sequence[str], business_id: str | None) -> BulkBusinessResult:
        """``POST /contacts/bulk/business``: attach contacts to a business (``None`` detaches)."""
        op = BULK_BUSINESS.operation_id
        body = {"locationId": self.require_location_id(), "ids": id_list(contact_ids, "contact_ids", op), "businessId": business_id}
        payload = validate_body(BulkBusinessBody, body, op).payload()
        return self._send(BULK_BUSINESS.spec(BulkBusinessResult.model_validate, body=payload))

    @operation(BULK_TAGS)
    def bulk_update_tags(
        self,
        type: Literal["add", "remove"],
        contact_ids: Sequence[str],
        tags: Sequence[str],
        remove_all_tags: bool = False,
    ) -> BulkTagsResult:
        """``POST /contacts/bulk/tags/update/{type}``: add or remove tags on many contacts."""
        op = BULK_TAGS.operation_id
        if type not in ("add", "remove"):
            raise GHLValidationError(f"parameter 'type' must be 'add' or 'remove', got {type!r}", operation=op)
        if remove_all_tags and type != "remove":
            raise GHLValidationError("'remove_all_tags' only works with type='remove'", operation=op)
        body: dict[str, Any] = {
            "contacts": id_list(contact_ids, "contact_ids", op),
            "tags": list(tags),
            "locationId": self.require_location_id(),
        }
        if remove_all_tags:
            body["removeAllTags"] = True
        payload = validate_body(BulkTagsBody, body, op).payload()
        return self._send(BULK_TAGS.spec(BulkTagsResult.model_validate, body=payload, type=type))

    # ------------------------------------------------------------------------------------------
    # The location's custom field definitions
    # ------------------------------------------------------------------------------------------

    def _custom_fields(self, model: Literal["contact", "opportunity", "all"] | None) -> RequestSpec[list[CustomField]]:
        return GET_CUSTOM_FIELDS.spec(
            lambda data: [CustomField.model_validate(f) for f in data.get("customFields") or []],
            params={"model": model},
            location_id=self.require_location_id(),
        )

    @operation(GET_CUSTOM_FIELDS)
    def get_custom_fields(self, model: Literal["contact", "opportunity", "all"] | None = None) -> list[CustomField]:
        """Custom field definitions of the location (``GET /locations/{locationId}/customFields``)."""
        return self._run(self._custom_fields, model)

    @operation(GET_CUSTOM_FIELDS)
    async def aget_custom_fields(self, model: Literal["contact", "opportunity", "all"] | None = None) -> list[CustomField]:
        """Async :meth:`get_custom_fields`: the same request, the same :class:`CustomField` list."""
        return await self._arun(self._custom_fields, model)
