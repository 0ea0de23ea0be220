"""``ContactsHook``: the one place that talks to the HighLevel Contacts API.

Usage::

    from airflow_provider_contacts.hooks.contacts import ContactsHook

    hook = ContactsHook()  # connection "ghl_default"
    for contact in hook.iter_search_contacts(filters=[{"field": "dateUpdated", "operator": "range",
                                                       "value": {"gte": "2024-05-01T00:00:00Z"}}]):
        ...
    for activity in hook.fetch_tasks_and_notes(ids):
        ...

Every public operation method carries the contacts.json ``operationId`` it wraps
(``ContactsHook.get_contact.operation_id == "get-contact"``) and the OAuth scope it needs
(``.required_scope``). Bodies are validated with the request models of
:mod:`airflow_provider_contacts.models` before any request; answers are parsed into its API models.

Behaviour shared by every call (see :mod:`.transport`, :mod:`.pacing`, :mod:`.retry`): one cached
``requests.Session`` per hook, created on first use; ``Authorization: Bearer``, ``Version`` and
``Accept`` headers; (connect, read) timeouts; pacing from the rate-limit headers through a limiter
shared per (base URL, location); bounded retries; a 401 retried once after a token refresh.
Creates (contact, task, note) are never repeated blindly: after an ambiguous failure the hook looks
for the record the first attempt may have created.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from airflow.sdk import BaseHook

from airflow_provider_contacts import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_contacts.auth import (
    OAuthSettings,
    forget_process_tokens,
    OAuthTokenSource,
    PrivateTokenSource,
    TokenSource,
    build_token_store,
)
from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLValidationError,
)
from airflow_provider_contacts.hooks.fanout import fetch_activity
from airflow_provider_contacts.hooks.pacing import DEFAULT_DAILY_RESERVE, RateLimiter, get_limiter, reset_limiters
from airflow_provider_contacts.hooks.pagination import (
    MAX_LEGACY_LIMIT,
    MAX_SEARCH_PAGE_LIMIT,
    CursorGuard,
    batched,
)
from airflow_provider_contacts.hooks.retry import RetryPolicy
from airflow_provider_contacts.hooks.settings import ConnectionSettings
from airflow_provider_contacts.hooks.transport import AmbiguousWrite, HookStats, Transport
from airflow_provider_contacts.models import (
    Appointment,
    BulkBusinessBody,
    BulkBusinessResult,
    BulkTagsBody,
    BulkTagsResult,
    Contact,
    ContactActivity,
    ContactSearchPage,
    ContactsPage,
    CreateContact,
    CreateNote,
    CreateTask,
    CustomField,
    FollowersBody,
    FollowersResult,
    Note,
    SearchContactsBody,
    SearchFilter,
    SearchFilterGroup,
    SearchSort,
    TagsBody,
    Task,
    TaskCompleted,
    TaskSearchBody,
    TaskSearchPage,
    UpdateContact,
    UpdateNote,
    UpdateTask,
    UpsertContact,
    UpsertResult,
    WorkflowBody,
    validate_body,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_current_operation: contextvars.ContextVar[str] = contextvars.ContextVar("ghl_operation", default="request")

#: How far before the first attempt a record's ``dateAdded`` may lie and still count as created by
#: that attempt (clock skew between this machine and HighLevel).
CREATE_MATCH_SKEW = timedelta(minutes=2)

#: Longest wait after a timed-out create before looking for the record it may have made.
MAX_SETTLE_S = 10.0

READ, WRITE = "contacts.readonly", "contacts.write"
TASKS_READ, FIELDS_READ = "locations/tasks.readonly", "locations/customFields.readonly"


def operation(operation_id: str, scope: str) -> Callable[[F], F]:
    """Mark a hook method as wrapping contacts.json ``operation_id`` that needs OAuth ``scope``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _current_operation.set(operation_id)
            try:
                return fn(*args, **kwargs)
            finally:
                _current_operation.reset(token)

        wrapper.operation_id = operation_id  # type: ignore[attr-defined]
        wrapper.required_scope = scope  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _segment(value: str, name: str) -> str:
    """A URL path segment from an id; empty ids fail before any request, naming the parameter."""
    if not isinstance(value, str) or not value.strip():
        raise GHLValidationError(
            f"parameter '{name}' must be a non-empty id string, got {value!r}",
            operation=_current_operation.get(),
        )
    return quote(value.strip(), safe="")


def _ids(values: Sequence[str] | None, name: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    cleaned = [v for v in (values or []) if isinstance(v, str) and v.strip()]
    if not cleaned:
        raise GHLValidationError(
            f"parameter '{name}' must be a non-empty list of ids", operation=_current_operation.get()
        )
    return cleaned


def _flatten(items: Any) -> Iterator[Any]:
    """Tasks of a task search: contacts.json documents them as an array of arrays."""
    for item in items or []:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


class ContactsHook(BaseHook):
    """Hook for the HighLevel (LeadConnector) Contacts API.

    :param ghl_conn_id: id of a connection of type ``ghl``.
    :param location_id: location (sub-account) to work in; overrides the connection's
        ``location_id`` extra.
    :param retry: retry bounds (default :class:`RetryPolicy()`: 5 retries, 10 for 429, 120 s).
    :param daily_reserve: requests of the daily budget this hook never uses; it raises
        :class:`GHLDailyLimitError` instead.
    :param task_batch_size: contact ids per location task search request.
    :param task_page_limit: tasks per location task search page.
    """

    conn_name_attr = "ghl_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "HighLevel Contacts"

    def __init__(
        self,
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        daily_reserve: int = DEFAULT_DAILY_RESERVE,
        task_batch_size: int = 100,
        task_page_limit: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ghl_conn_id = ghl_conn_id
        self._location_override = location_id
        self.retry = retry or RetryPolicy()
        self.daily_reserve = daily_reserve
        self.task_batch_size = task_batch_size
        self.task_page_limit = task_page_limit
        self.stats = HookStats()
        self._init_lock = threading.RLock()
        self._settings: ConnectionSettings | None = None
        self._session: requests.Session | None = None
        self._token_source: TokenSource | None = None
        self._transport: Transport | None = None
        self._task_search_allowed = True
        self._fallback_logged = False

    # ------------------------------------------------------------------------------------------
    # Connection, session, auth
    # ------------------------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings (read once)."""
        with self._init_lock:
            if self._settings is None:
                conn = self.get_connection(self.ghl_conn_id)
                self._settings = ConnectionSettings.from_connection(conn, self.ghl_conn_id)
            return self._settings

    @property
    def base_url(self) -> str:
        """API base URL, e.g. ``https://services.leadconnectorhq.com``."""
        return self.settings.base_url

    @property
    def location_id(self) -> str | None:
        """The location the hook works in (constructor argument, else the connection extra)."""
        return self._location_override or self.settings.location_id

    def require_location_id(self) -> str:
        """The location id, or :class:`GHLConfigError` naming ``location_id`` and where to set it."""
        location = self.location_id
        if not location:
            raise GHLConfigError(
                f"location_id is not set: pass ContactsHook(location_id=...) or set the extra "
                f"'location_id' on connection {self.ghl_conn_id!r}"
            )
        return location

    @property
    def token_source(self) -> TokenSource:
        """The token source of the connection (private token or OAuth)."""
        with self._init_lock:
            if self._token_source is None:
                s = self.settings
                if s.auth_type == "oauth":
                    oauth = OAuthSettings(
                        conn_id=s.conn_id,
                        base_url=s.base_url,
                        client_id=s.client_id or "",
                        client_secret=s.client_secret or "",
                        user_type=s.user_type,
                        company_id=s.company_id,
                        location_id=self.location_id,
                        seed_refresh_token=s.refresh_token,
                        seed_access_token=s.access_token,
                        api_version=s.api_version,
                        timeout=s.timeout,
                    )
                    source = OAuthTokenSource(oauth, build_token_store(s.token_store, s.conn_id), http=self._new_session)
                    source.on_refresh = lambda: self.stats.add("refreshes")
                    self._token_source = source
                else:
                    self._token_source = PrivateTokenSource(s.access_token or "", s.conn_id)
            return self._token_source

    @property
    def limiter(self) -> RateLimiter:
        """The process-wide limiter of (base URL, location), shared with triggers and threads."""
        return get_limiter(self.base_url, self.location_id)

    def _base_headers(self) -> dict[str, str]:
        return {"Version": self.settings.api_version, "Accept": "application/json"}

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(self._base_headers())
        return session

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (created on first use, then reused).

        It carries ``Version``, ``Accept`` and the current ``Authorization`` header; the hook's
        own calls set a fresh ``Authorization`` on every request (tokens rotate).
        """
        with self._init_lock:
            if self._session is None:
                self._session = self._new_session()
                self._session.headers["Authorization"] = f"Bearer {self.token_source.get_access_token()}"
            return self._session

    def get_headers(self) -> dict[str, str]:
        """The headers of an API call (for code doing its own HTTP, e.g. with httpx)."""
        return {**self._base_headers(), "Authorization": f"Bearer {self.token_source.get_access_token()}"}

    async def aget_headers(self) -> dict[str, str]:
        """Async :meth:`get_headers` (for triggers)."""
        token = await self.token_source.aget_access_token()
        return {**self._base_headers(), "Authorization": f"Bearer {token}"}

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts in seconds."""
        return self.settings.timeout

    @property
    def transport(self) -> Transport:
        """The request loop (pacing, retries, auth) of this hook."""
        with self._init_lock:
            if self._transport is None:
                self._transport = Transport(
                    session=self.get_conn,
                    base_url=self.base_url,
                    token_source=self.token_source,
                    limiter=self.limiter,
                    retry=self.retry,
                    timeout=self.timeout,
                    daily_reserve=self.daily_reserve,
                    stats=self.stats,
                )
            return self._transport

    def close(self) -> None:
        """Close the cached session (a new one is created if the hook is used again)."""
        with self._init_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        scope: str = READ,
        replay_safe: bool = True,
    ) -> Any:
        return self.transport.request(
            method,
            path,
            operation=_current_operation.get(),
            params=params,
            json_body=json_body,
            scope=scope,
            replay_safe=replay_safe,
        )

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (a one-contact search) explaining what is wrong, if anything."""
        try:
            location = self.require_location_id()
            self._call(
                "POST",
                "/contacts/search",
                json_body={"locationId": location, "page": 1, "pageLimit": 1},
            )
        except GHLAuthError as exc:
            if exc.status == 403:
                return False, (
                    f"HighLevel refused the call (403): the token lacks the '{READ}' scope. Add the "
                    f"scope to the Private Integration / OAuth app and re-authorise. ({exc.message})"
                )
            return False, (
                "HighLevel rejected the token (401): it is invalid or expired. Put a valid Private "
                "Integration token in the connection's password, or re-authorise the OAuth app and "
                f"update the 'refresh_token' extra. ({exc.message})"
            )
        except GHLConfigError as exc:
            return False, str(exc)
        except GHLAPIError as exc:
            if exc.status is None:
                return False, (
                    f"Could not reach {self.base_url}: {exc.message}. Check the host, proxy and "
                    "firewall settings."
                )
            return False, f"HighLevel answered with an error: {exc}"
        return True, f"Connected to {self.base_url} (location {location})."

    # ------------------------------------------------------------------------------------------
    # Contacts: search and pagination
    # ------------------------------------------------------------------------------------------

    @operation("search-contacts-advanced", READ)
    def search_contacts(
        self,
        filters: Sequence[SearchFilter | SearchFilterGroup | dict[str, Any]] | None = None,
        sort: Sequence[SearchSort | dict[str, Any]] | None = None,
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
        body: dict[str, Any] = {"locationId": self.require_location_id(), "pageLimit": page_limit}
        if search_after is not None:
            body["searchAfter"] = search_after
        elif page is not None:
            body["page"] = page
        if filters:
            body["filters"] = [f.payload() if isinstance(f, (SearchFilter, SearchFilterGroup)) else f for f in filters]
        if sort:
            body["sort"] = [s.payload() if isinstance(s, SearchSort) else s for s in sort]
        if query:
            body["query"] = query
        payload = validate_body(SearchContactsBody, body, "search-contacts-advanced").payload()
        return ContactSearchPage.model_validate(self._call("POST", "/contacts/search", json_body=payload))

    def iter_search_contacts(
        self,
        filters: Sequence[SearchFilter | SearchFilterGroup | dict[str, Any]] | None = None,
        sort: Sequence[SearchSort | dict[str, Any]] | None = None,
        query: str | None = None,
        page_limit: int = MAX_SEARCH_PAGE_LIMIT,
    ) -> Iterator[Contact]:
        """Every contact matching the search, page by page (constant memory).

        The first page is requested with ``page=1``; every later page with ``searchAfter`` (the
        cursor of the last contact), so the 10,000-result cap of page-based search never applies.
        """
        guard = CursorGuard("search-contacts-advanced")
        cursor: list[Any] | None = None
        while True:
            result = self.search_contacts(
                filters=filters, sort=sort, query=query, page=1, page_limit=page_limit, search_after=cursor
            )
            yield from result.contacts
            if len(result.contacts) < page_limit:
                return
            cursor = result.contacts[-1].searchAfter
            if not cursor:
                raise GHLAPIError(
                    "the search answer carries no 'searchAfter' on its contacts; cannot page further",
                    operation="search-contacts-advanced",
                )
            guard.check(tuple(map(str, cursor)))

    @operation("get-duplicate-contact", READ)
    def get_duplicate_contact(self, email: str | None = None, number: str | None = None) -> Contact | None:
        """The contact HighLevel's duplicate rules match for ``email`` / phone ``number``, or None."""
        if not email and not number:
            raise GHLValidationError(
                "give 'email' or 'number' (phone) to look for a duplicate", operation="get-duplicate-contact"
            )
        data = self._call(
            "GET",
            "/contacts/search/duplicate",
            params={"locationId": self.require_location_id(), "email": email, "number": number},
        )
        contact = data.get("contact") if isinstance(data, dict) else None
        return Contact.model_validate(contact) if contact else None

    @operation("get-contacts", READ)
    def get_contacts(
        self,
        query: str | None = None,
        limit: int = MAX_LEGACY_LIMIT,
        start_after: int | str | None = None,
        start_after_id: str | None = None,
    ) -> ContactsPage:
        """One page of the legacy ``GET /contacts/`` (``limit`` <= 100; cursor in ``.meta``)."""
        if not 1 <= limit <= MAX_LEGACY_LIMIT:
            raise GHLValidationError(f"parameter 'limit' must be 1..{MAX_LEGACY_LIMIT}, got {limit}", operation="get-contacts")
        params = {
            "locationId": self.require_location_id(),
            "query": query,
            "limit": limit,
            "startAfter": start_after,
            "startAfterId": start_after_id,
        }
        return ContactsPage.model_validate(self._call("GET", "/contacts/", params=params))

    def iter_contacts_legacy(self, query: str | None = None, limit: int = MAX_LEGACY_LIMIT) -> Iterator[Contact]:
        """Every contact through the legacy ``GET /contacts/`` (``startAfter`` + ``startAfterId``).

        :raises GHLPaginationError: if the API hands back a cursor it already returned.
        """
        guard = CursorGuard("get-contacts")
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

    @operation("get-contacts-by-businessId", READ)
    def get_contacts_by_business(
        self, business_id: str, limit: int = 100, skip: int = 0, query: str | None = None
    ) -> ContactsPage:
        """One page of ``GET /contacts/business/{businessId}`` (``limit``/``skip``)."""
        if limit < 1 or skip < 0:
            raise GHLValidationError(
                "parameters 'limit' must be >= 1 and 'skip' >= 0", operation="get-contacts-by-businessId"
            )
        params = {"locationId": self.require_location_id(), "limit": str(limit), "skip": str(skip), "query": query}
        path = f"/contacts/business/{_segment(business_id, 'business_id')}"
        return ContactsPage.model_validate(self._call("GET", path, params=params))

    def iter_contacts_by_business(self, business_id: str, query: str | None = None, limit: int = 100) -> Iterator[Contact]:
        """Every contact of a business, page by page."""
        skip = 0
        while True:
            page = self.get_contacts_by_business(business_id, limit=limit, skip=skip, query=query)
            yield from page.contacts
            if len(page.contacts) < limit:
                return
            skip += len(page.contacts)

    # ------------------------------------------------------------------------------------------
    # Contacts: single records
    # ------------------------------------------------------------------------------------------

    @operation("get-contact", READ)
    def get_contact(self, contact_id: str) -> Contact:
        """``GET /contacts/{contactId}``. :raises GHLNotFoundError: if it does not exist."""
        data = self._call("GET", f"/contacts/{_segment(contact_id, 'contact_id')}")
        return Contact.model_validate(data.get("contact", data))

    @operation("create-contact", WRITE)
    def create_contact(self, body: CreateContact | dict[str, Any]) -> Contact:
        """``POST /contacts/``; ``locationId`` defaults to the hook's.

        Not repeated blindly: after a timeout, 5xx or the 422-after-create quirk, the hook looks the
        contact up (duplicate lookup by email/phone, else a search on name and ``dateAdded``) and
        returns it if the failed attempt created it; otherwise it retries (bounded).
        """
        model = validate_body(CreateContact, body, "create-contact")
        if not model.locationId:
            model = model.model_copy(update={"locationId": self.require_location_id()})
        payload = model.payload()
        payload["locationId"] = model.locationId
        started = datetime.now(timezone.utc)
        return self._create_once(
            lambda: self._call("POST", "/contacts/", json_body=payload, scope=WRITE, replay_safe=False),
            parse=lambda data: Contact.model_validate(data["contact"]),
            lookup=lambda: self._find_created_contact(payload, started),
            check_422=True,
        )

    def _find_created_contact(self, payload: dict[str, Any], started: datetime) -> Contact | None:
        """The contact a failed create made, if any: added since ``started`` and matching ``payload``.

        The duplicate lookup (consistent, by email/phone) comes first; it returns the *oldest*
        match, so when duplicates are allowed the search (by ``dateAdded`` since the first attempt
        and the email or the names) settles it.
        """
        since = started - CREATE_MATCH_SKEW
        email, phone = payload.get("email"), payload.get("phone")
        if email or phone:
            found = self.get_duplicate_contact(email=email or None, number=phone or None)
            if found is not None and (found.dateAdded is None or found.dateAdded >= since):
                return found
        filters = [SearchFilter(field="dateAdded", operator="range", value={"gte": since})]
        if email:
            filters.append(SearchFilter(field="email", operator="eq", value=email))
        page = self.search_contacts(filters=filters, sort=[SearchSort(field="dateAdded", direction="desc")], page_limit=100)
        keys = ("email", "firstName", "lastName", "name", "companyName")
        for contact in page.contacts:
            values = contact.model_dump()
            if all(str(values.get(k) or "").lower() == str(payload[k]).lower() for k in keys if payload.get(k)):
                return contact
        return None

    def _create_once(
        self,
        send: Callable[[], Any],
        *,
        parse: Callable[[Any], T],
        lookup: Callable[[], T | None],
        check_422: bool = False,
    ) -> T:
        """Send a create; after an ambiguous failure return what ``lookup`` finds, else retry."""
        attempts = 0
        started = time.monotonic()
        while True:
            try:
                return parse(send())
            except AmbiguousWrite as ambiguous:
                error = ambiguous.error
                if ambiguous.timed_out:
                    # The server may still be processing the request: give it as long again
                    # before looking for its result.
                    time.sleep(min(self.timeout[1], MAX_SETTLE_S))
            except GHLValidationError as exc:
                if not (check_422 and exc.status == 422):
                    raise
                found = lookup()
                if found is not None:
                    log.warning("%s: HTTP 422 although the record was created; using it", exc.operation)
                    return found
                raise
            found = lookup()
            if found is not None:
                log.warning("%s: %s, but the record was created; not sending it again", error.operation, error.message)
                return found
            attempts += 1
            wait = self.retry.backoff_s(attempts)
            if attempts > self.retry.max_retries or time.monotonic() - started + wait > self.retry.max_elapsed_s:
                raise type(error)(
                    f"{error.message} (gave up after {attempts} attempts; the record was not created)",
                    status=error.status,
                    trace_id=error.trace_id,
                    operation=error.operation,
                )
            self.stats.add("retries")
            log.warning("%s: %s and the record is not there; retry %d in %.2f s", error.operation, error.message, attempts, wait)
            time.sleep(wait)

    @operation("update-contact", WRITE)
    def update_contact(self, contact_id: str, body: UpdateContact | dict[str, Any]) -> Contact:
        """``PUT /contacts/{contactId}`` with only the fields to change."""
        payload = validate_body(UpdateContact, body, "update-contact").payload()
        data = self._call("PUT", f"/contacts/{_segment(contact_id, 'contact_id')}", json_body=payload, scope=WRITE)
        return Contact.model_validate(data["contact"])

    @operation("upsert-contact", WRITE)
    def upsert_contact(self, body: UpsertContact | dict[str, Any]) -> UpsertResult:
        """``POST /contacts/upsert``: create or update by the location's duplicate rules."""
        model = validate_body(UpsertContact, body, "upsert-contact")
        payload = model.payload()
        payload["locationId"] = model.locationId or self.require_location_id()
        return UpsertResult.model_validate(self._call("POST", "/contacts/upsert", json_body=payload, scope=WRITE))

    @operation("delete-contact", WRITE)
    def delete_contact(self, contact_id: str) -> bool:
        """``DELETE /contacts/{contactId}``; ``True`` if HighLevel confirmed (``succeded``)."""
        data = self._call("DELETE", f"/contacts/{_segment(contact_id, 'contact_id')}", scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    @operation("add-remove-contact-from-business", WRITE)
    def bulk_update_business(self, contact_ids: Sequence[str], business_id: str | None) -> BulkBusinessResult:
        """``POST /contacts/bulk/business``: attach contacts to a business (``None`` detaches)."""
        body = {"locationId": self.require_location_id(), "ids": _ids(contact_ids, "contact_ids"), "businessId": business_id}
        payload = validate_body(BulkBusinessBody, body, "add-remove-contact-from-business").payload()
        return BulkBusinessResult.model_validate(self._call("POST", "/contacts/bulk/business", json_body=payload, scope=WRITE))

    @operation("create-association", WRITE)
    def bulk_update_tags(
        self,
        type: Literal["add", "remove"],
        contact_ids: Sequence[str],
        tags: Sequence[str],
        remove_all_tags: bool = False,
    ) -> BulkTagsResult:
        """``POST /contacts/bulk/tags/update/{type}``: add or remove tags on many contacts."""
        if type not in ("add", "remove"):
            raise GHLValidationError(f"parameter 'type' must be 'add' or 'remove', got {type!r}", operation="create-association")
        if remove_all_tags and type != "remove":
            raise GHLValidationError("'remove_all_tags' only works with type='remove'", operation="create-association")
        body: dict[str, Any] = {
            "contacts": _ids(contact_ids, "contact_ids"),
            "tags": list(tags),
            "locationId": self.require_location_id(),
        }
        if remove_all_tags:
            body["removeAllTags"] = True
        payload = validate_body(BulkTagsBody, body, "create-association").payload()
        return BulkTagsResult.model_validate(
            self._call("POST", f"/contacts/bulk/tags/update/{type}", json_body=payload, scope=WRITE)
        )

    # ------------------------------------------------------------------------------------------
    # Tasks
    # ------------------------------------------------------------------------------------------

    def _tasks_path(self, contact_id: str, task_id: str | None = None) -> str:
        path = f"/contacts/{_segment(contact_id, 'contact_id')}/tasks"
        return f"{path}/{_segment(task_id, 'task_id')}" if task_id is not None else path

    @staticmethod
    def _with_contact(items: list[dict[str, Any]], contact_id: str, model: type[T]) -> list[T]:
        return [model.model_validate({"contactId": contact_id, **item}) for item in items]  # type: ignore[attr-defined]

    @operation("get-all-tasks", READ)
    def list_tasks(self, contact_id: str) -> list[Task]:
        """All tasks of a contact (each carries ``contactId``)."""
        data = self._call("GET", self._tasks_path(contact_id))
        return self._with_contact(data.get("tasks") or [], contact_id, Task)

    @operation("get-task", READ)
    def get_task(self, contact_id: str, task_id: str) -> Task:
        """One task of a contact."""
        data = self._call("GET", self._tasks_path(contact_id, task_id))
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("create-task", WRITE)
    def create_task(self, contact_id: str, body: CreateTask | dict[str, Any]) -> Task:
        """``POST /contacts/{contactId}/tasks``; after an ambiguous failure the contact's tasks are
        checked for one with the same title, body and due date before any retry."""
        model = validate_body(CreateTask, body, "create-task")
        payload = model.payload()
        path = self._tasks_path(contact_id)
        started = datetime.now(timezone.utc)

        def lookup() -> Task | None:
            for task in self.list_tasks(contact_id):
                if (
                    task.title == model.title
                    and (model.body is None or task.body == model.body)
                    and task.dueDate == model.dueDate
                    and (task.dateAdded is None or task.dateAdded >= started - CREATE_MATCH_SKEW)
                ):
                    return task
            return None

        return self._create_once(
            lambda: self._call("POST", path, json_body=payload, scope=WRITE, replay_safe=False),
            parse=lambda data: self._with_contact([data["task"]], contact_id, Task)[0],
            lookup=lookup,
        )

    @operation("update-task", WRITE)
    def update_task(self, contact_id: str, task_id: str, body: UpdateTask | dict[str, Any]) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}`` with the fields to change."""
        payload = validate_body(UpdateTask, body, "update-task").payload()
        data = self._call("PUT", self._tasks_path(contact_id, task_id), json_body=payload, scope=WRITE)
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("update-task-completed", WRITE)
    def complete_task(self, contact_id: str, task_id: str, completed: bool = True) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}/completed``."""
        payload = validate_body(TaskCompleted, {"completed": completed}, "update-task-completed").payload()
        data = self._call("PUT", self._tasks_path(contact_id, task_id) + "/completed", json_body=payload, scope=WRITE)
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("delete-task", WRITE)
    def delete_task(self, contact_id: str, task_id: str) -> bool:
        """``DELETE /contacts/{contactId}/tasks/{taskId}``; ``True`` if confirmed."""
        data = self._call("DELETE", self._tasks_path(contact_id, task_id), scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    # ------------------------------------------------------------------------------------------
    # Notes
    # ------------------------------------------------------------------------------------------

    def _notes_path(self, contact_id: str, note_id: str | None = None) -> str:
        path = f"/contacts/{_segment(contact_id, 'contact_id')}/notes"
        return f"{path}/{_segment(note_id, 'note_id')}" if note_id is not None else path

    @operation("get-all-notes", READ)
    def list_notes(self, contact_id: str) -> list[Note]:
        """All notes of a contact (each carries ``contactId``)."""
        data = self._call("GET", self._notes_path(contact_id))
        return self._with_contact(data.get("notes") or [], contact_id, Note)

    @operation("get-note", READ)
    def get_note(self, contact_id: str, note_id: str) -> Note:
        """One note of a contact."""
        data = self._call("GET", self._notes_path(contact_id, note_id))
        return self._with_contact([data["note"]], contact_id, Note)[0]

    @operation("create-note", WRITE)
    def create_note(self, contact_id: str, body: CreateNote | dict[str, Any]) -> Note:
        """``POST /contacts/{contactId}/notes``; after an ambiguous failure the contact's notes are
        checked for one with the same body and title (added since the first attempt) before any retry."""
        model = validate_body(CreateNote, body, "create-note")
        payload = model.payload()
        path = self._notes_path(contact_id)
        started = datetime.now(timezone.utc)

        def lookup() -> Note | None:
            for note in self.list_notes(contact_id):
                if (
                    note.body == model.body
                    and (model.title is None or note.title == model.title)
                    and (note.dateAdded is None or note.dateAdded >= started - CREATE_MATCH_SKEW)
                ):
                    return note
            return None

        return self._create_once(
            lambda: self._call("POST", path, json_body=payload, scope=WRITE, replay_safe=False),
            parse=lambda data: self._with_contact([data["note"]], contact_id, Note)[0],
            lookup=lookup,
        )

    @operation("update-note", WRITE)
    def update_note(self, contact_id: str, note_id: str, body: UpdateNote | dict[str, Any]) -> Note:
        """``PUT /contacts/{contactId}/notes/{id}`` with the fields to change."""
        payload = validate_body(UpdateNote, body, "update-note").payload()
        data = self._call("PUT", self._notes_path(contact_id, note_id), json_body=payload, scope=WRITE)
        return self._with_contact([data["note"]], contact_id, Note)[0]

    @operation("delete-note", WRITE)
    def delete_note(self, contact_id: str, note_id: str) -> bool:
        """``DELETE /contacts/{contactId}/notes/{id}``; ``True`` if confirmed."""
        data = self._call("DELETE", self._notes_path(contact_id, note_id), scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    # ------------------------------------------------------------------------------------------
    # Tags, appointments, followers, campaigns, workflows
    # ------------------------------------------------------------------------------------------

    def _contact_sub(self, contact_id: str, *parts: tuple[str, str] | str) -> str:
        segments = [f"/contacts/{_segment(contact_id, 'contact_id')}"]
        for part in parts:
            segments.append(part if isinstance(part, str) else _segment(part[0], part[1]))
        return "/".join(segments)

    @operation("add-tags", WRITE)
    def add_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a contact; returns the contact's tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "add-tags").payload()
        data = self._call("POST", self._contact_sub(contact_id, "tags"), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("remove-tags", WRITE)
    def remove_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Remove tags from a contact; returns the contact's remaining tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "remove-tags").payload()
        data = self._call("DELETE", self._contact_sub(contact_id, "tags"), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("get-appointments-for-contact", READ)
    def get_appointments(self, contact_id: str) -> list[Appointment]:
        """The contact's appointments (calendar events)."""
        data = self._call("GET", self._contact_sub(contact_id, "appointments"))
        return [Appointment.model_validate(e) for e in data.get("events") or []]

    @operation("add-followers-contact", WRITE)
    def add_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Add followers (user ids) to a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "add-followers-contact").payload()
        data = self._call("POST", self._contact_sub(contact_id, "followers"), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("remove-followers-contact", WRITE)
    def remove_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Remove followers (user ids) from a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "remove-followers-contact").payload()
        data = self._call("DELETE", self._contact_sub(contact_id, "followers"), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("add-contact-to-campaign", WRITE)
    def add_contact_to_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Add a contact to a campaign; ``True`` if confirmed."""
        data = self._call(
            "POST", self._contact_sub(contact_id, "campaigns", (campaign_id, "campaign_id")), json_body={}, scope=WRITE
        )
        return bool(data.get("succeded", data.get("succeeded", True)))

    @operation("remove-contact-from-campaign", WRITE)
    def remove_contact_from_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Remove a contact from a campaign; ``True`` if confirmed."""
        data = self._call("DELETE", self._contact_sub(contact_id, "campaigns", (campaign_id, "campaign_id")), scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    @operation("remove-contact-from-every-campaign", WRITE)
    def remove_contact_from_all_campaigns(self, contact_id: str) -> bool:
        """Remove a contact from every campaign; ``True`` if confirmed."""
        data = self._call("DELETE", self._contact_sub(contact_id, "campaigns", "removeAll"), scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    def _workflow(self, method: str, contact_id: str, workflow_id: str, event_start_time: datetime | str | None) -> bool:
        body = {} if event_start_time is None else {"eventStartTime": event_start_time}
        payload = validate_body(WorkflowBody, body, _current_operation.get()).payload()
        path = self._contact_sub(contact_id, "workflow", (workflow_id, "workflow_id"))
        data = self._call(method, path, json_body=payload, scope=WRITE)
        return bool(data.get("succeded", data.get("succeeded", True)))

    @operation("add-contact-to-workflow", WRITE)
    def add_contact_to_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Add a contact to a workflow (optionally at ``event_start_time``); ``True`` if confirmed."""
        return self._workflow("POST", contact_id, workflow_id, event_start_time)

    @operation("delete-contact-from-workflow", WRITE)
    def remove_contact_from_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Remove a contact from a workflow; ``True`` if confirmed."""
        return self._workflow("DELETE", contact_id, workflow_id, event_start_time)

    # ------------------------------------------------------------------------------------------
    # Location: task search, custom fields
    # ------------------------------------------------------------------------------------------

    @operation("task-search", TASKS_READ)
    def search_location_tasks(
        self,
        contact_ids: Sequence[str] | None = None,
        completed: bool | None = None,
        assigned_to: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 100,
        skip: int = 0,
        business_id: str | None = None,
    ) -> TaskSearchPage:
        """One page of ``POST /locations/{locationId}/tasks/search`` (locations.json ``task-search``)."""
        body: dict[str, Any] = {"limit": limit, "skip": skip}
        for key, value in (
            ("contactId", list(contact_ids) if contact_ids is not None else None),
            ("completed", completed),
            ("assignedTo", list(assigned_to) if assigned_to is not None else None),
            ("query", query),
            ("businessId", business_id),
        ):
            if value is not None:
                body[key] = value
        payload = validate_body(TaskSearchBody, body, "task-search").payload()
        path = f"/locations/{_segment(self.require_location_id(), 'location_id')}/tasks/search"
        data = self._call("POST", path, json_body=payload, scope=TASKS_READ)
        return TaskSearchPage.model_validate({**data, "tasks": list(_flatten(data.get("tasks")))})

    def _page_location_tasks(self, contact_ids: list[str] | None, completed: bool | None, limit: int) -> Iterator[Task]:
        skip = 0
        while True:
            page = self.search_location_tasks(contact_ids=contact_ids, completed=completed, limit=limit, skip=skip)
            yield from page.tasks
            if len(page.tasks) < limit:
                return
            skip += len(page.tasks)

    def _task_search_denied(self, exc: GHLAuthError) -> bool:
        """After a 403 on task search: switch this hook to per-contact task calls (logged once)."""
        if exc.status != 403:
            return False
        self._task_search_allowed = False
        if not self._fallback_logged:
            self._fallback_logged = True
            log.warning(
                "The token lacks '%s' for the location task search; falling back to one "
                "GET /contacts/{id}/tasks per contact (slower, same result)",
                TASKS_READ,
            )
        return True

    def iter_location_tasks(
        self,
        contact_ids: Iterable[str] | None = None,
        completed: bool | None = None,
        batch_size: int | None = None,
        page_limit: int | None = None,
    ) -> Iterator[Task]:
        """Tasks of the location (or of ``contact_ids``, sent in batches), page by page.

        Falls back to per-contact ``GET /contacts/{id}/tasks`` (logged once) when the token lacks
        ``locations/tasks.readonly``; without ``contact_ids`` the contacts then come from the search.
        """
        size = batch_size or self.task_batch_size
        page_limit = page_limit or self.task_page_limit
        if contact_ids is None:
            if self._task_search_allowed:
                try:
                    yield from self._page_location_tasks(None, completed, page_limit)
                    return
                except GHLAuthError as exc:
                    if not self._task_search_denied(exc):
                        raise
            contact_ids = (c.id for c in self.iter_search_contacts())
        for batch in batched(contact_ids, size):
            grouped = self.tasks_for_contacts(batch, completed=completed, page_limit=page_limit)
            if grouped is None:
                grouped = {cid: self.list_tasks(cid) for cid in batch}
            for cid in batch:
                for task in grouped.get(cid, []):
                    if completed is None or task.completed == completed:
                        yield task

    def tasks_for_contacts(
        self, contact_ids: list[str], completed: bool | None = None, page_limit: int | None = None
    ) -> dict[str, list[Task]] | None:
        """Tasks of a batch of contacts from the location task search, grouped by ``contactId``.

        Returns ``None`` when the token lacks ``locations/tasks.readonly`` (callers then use
        :meth:`list_tasks` per contact).
        """
        if not self._task_search_allowed:
            return None
        page_limit = page_limit or self.task_page_limit
        grouped: dict[str, list[Task]] = {cid: [] for cid in contact_ids}
        seen: set[str] = set()
        try:
            for task in self._page_location_tasks(contact_ids, completed, page_limit):
                if task.id in seen:
                    continue
                seen.add(task.id)
                if task.contactId in grouped:
                    grouped[task.contactId].append(task)
        except GHLAuthError as exc:
            if self._task_search_denied(exc):
                return None
            raise
        return grouped

    @operation("get-custom-fields", FIELDS_READ)
    def get_custom_fields(self, model: Literal["contact", "opportunity", "all"] | None = None) -> list[CustomField]:
        """Custom field definitions of the location (``GET /locations/{locationId}/customFields``)."""
        path = f"/locations/{_segment(self.require_location_id(), 'location_id')}/customFields"
        data = self._call("GET", path, params={"model": model}, scope=FIELDS_READ)
        return [CustomField.model_validate(f) for f in data.get("customFields") or []]

    # ------------------------------------------------------------------------------------------
    # Fan-out
    # ------------------------------------------------------------------------------------------

    def fetch_tasks_and_notes(
        self,
        contact_ids: Iterable[str],
        max_workers: int = 8,
        tasks: bool = True,
        notes: bool = True,
    ) -> Iterator[ContactActivity]:
        """Tasks and notes of many contacts, fetched concurrently under the shared limiter.

        Yields one :class:`ContactActivity` per id as soon as it is complete (completion order).
        Tasks come from the location task search in batches of ``task_batch_size`` ids (or per
        contact without the scope); notes need one call per contact. Memory stays bounded.
        """
        return fetch_activity(
            self, contact_ids, max_workers=max_workers, tasks=tasks, notes=notes, batch_size=self.task_batch_size
        )


def forget_process_state() -> None:
    """Forget this process's limiters and cached OAuth tokens.

    For tests that start servers on reused ports or simulate separate workers; never needed in DAGs.
    """
    reset_limiters()
    forget_process_tokens()


__all__ = ["ContactsHook", "forget_process_state", "operation"]
