"""``GHLContactsHook``: the one place that talks to the HighLevel Contacts API, sync and async.

Usage::

    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

    hook = GHLContactsHook()  # connection "ghl_default"
    for contact in hook.iter_search_contacts(filters=[{"field": "dateUpdated", "operator": "range",
                                                       "value": {"gte": "2024-05-01T00:00:00Z"}}]):
        ...
    for activity in hook.fetch_tasks_and_notes(ids):
        ...

    # asyncio code (triggers): no other setup; the connection is read with
    # ``BaseHook.aget_connection`` and the requests go through an ``httpx.AsyncClient``.
    hook = GHLContactsHook("ghl_default", location_id="...")
    task = await hook.aget_task(contact_id, task_id)
    async for task in hook.aiter_location_tasks(completed=False):
        ...

``ContactsHook`` is the same class under its former name.

Every public operation method carries the contacts.json ``operationId`` it wraps
(``GHLContactsHook.get_contact.operation_id == "get-contact"``) and the OAuth scope it needs
(``.required_scope``). Bodies are validated with the request models of
:mod:`airflow_provider_contacts.models` before any request; answers are parsed into its API models.
The operations live in mixins by subject: :mod:`.contact_ops` (contacts, custom fields),
:mod:`.task_ops` (tasks, the location task search), :mod:`.note_ops` (notes),
:mod:`.appointment_ops` (appointments), :mod:`.membership_ops` (tags, followers, campaigns,
workflows) and :mod:`.fanout` (tasks and notes of many contacts at once). This module holds the
connection, session and auth.

Agency connections (OAuth, ``user_type="Company"``): :meth:`installed_locations` (and
``ainstalled_locations``; :mod:`.agency_ops`) lists the locations the app is installed on with the
agency token; a hook given a ``location_id`` works with that location's token, minted through
``POST /oauth/locationToken`` and shared by every worker through the connection's token store
(:mod:`airflow_provider_contacts.auth`).

The reads have async twins with the same parameters, operationId, request, pacing, retries,
fallbacks and models: ``asearch_contacts``, ``aiter_search_contacts``, ``aget_contact``,
``aget_custom_fields``, ``alist_tasks``, ``aget_task``, ``asearch_location_tasks``,
``aiter_location_tasks``, ``alist_notes``, ``aget_note``. Each request is built once (a
:class:`~.specs.RequestSpec` of an :class:`~.operations.Endpoint`) and sent by either transport;
each async twin reads the connection without blocking the event loop (:meth:`aload_settings`) and
opens its own ``httpx.AsyncClient`` (one per call, or per iteration of an ``aiter_`` method).

Behaviour shared by every call (see :mod:`.transport`, :mod:`.pacing`, :mod:`.retry`): one cached
``requests.Session`` per hook, created on first use; ``Authorization: Bearer``, ``Version`` and
``Accept`` headers; (connect, read) timeouts; pacing from the rate-limit headers through a limiter
shared per (base URL, location), by sync and async calls alike; bounded retries; a plain 401
retried once after a token refresh (never a 401 that says the token lacks a scope or is of the
wrong class: :class:`GHLScopeError`); a 400 ``... not found`` raised as :class:`GHLNotFoundError`
like a 404 (ghl-live-notes.md). Creates (contact, task, note) are sent exactly once: after an
ambiguous failure the hook looks for the record the failed attempt made - never one that was there
before or that another create returned (:mod:`.creates`) - before it sends the create again.

Every id the hook puts into a URL path is checked by one path builder
(:func:`~.paths.api_path`, sync and async): letters, digits, ``_`` and ``-`` only, else
:class:`GHLValidationError` naming the parameter before any request (issue #14: a ``note_id`` of
``..`` used to delete the contact). The base URL never carries credentials (they are dropped with a
warning: HighLevel takes a Bearer token only), and URLs in logs and errors show no password
(:func:`~.urls.redact_url_secrets`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter

from airflow.sdk import BaseHook

from airflow_provider_contacts import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_contacts.auth import (
    OAuthSettings,
    OAuthTokenSource,
    PrivateTokenSource,
    TokenSource,
    agency_private_token_error,
    build_location_token_store,
    build_token_store,
    forget_process_tokens,
)
from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLError,
    GHLLocationAccessError,
    GHLNotFoundError,
    GHLRateLimitError,
    GHLScopeError,
    GHLTransportError,
    GHLValidationError,
)
from airflow_provider_contacts.hooks.agency_ops import AgencyOperations
from airflow_provider_contacts.hooks.appointment_ops import AppointmentOperations
from airflow_provider_contacts.hooks.contact_ops import ContactOperations
from airflow_provider_contacts.hooks.creates import CLAIMS, DATED
from airflow_provider_contacts.hooks.fanout import FanoutOperations
from airflow_provider_contacts.hooks.membership_ops import MembershipOperations
from airflow_provider_contacts.hooks.note_ops import NoteOperations
from airflow_provider_contacts.hooks.operations import READ
from airflow_provider_contacts.hooks.pacing import DEFAULT_DAILY_RESERVE, RateLimiter, reset_limiters
from airflow_provider_contacts.hooks.paths import is_highlevel_id, not_an_id
from airflow_provider_contacts.hooks.retry import RetryPolicy
from airflow_provider_contacts.hooks.settings import ConnectionSettings
from airflow_provider_contacts.hooks.task_access import TaskSearchAccess
from airflow_provider_contacts.hooks.task_ops import TaskOperations
from airflow_provider_contacts.hooks.transport import AsyncTransport, HookStats, Transport, async_tls_context
from airflow_provider_contacts.hooks.urls import redact_url_secrets


class GHLContactsHook(
    ContactOperations,
    TaskOperations,
    NoteOperations,
    AppointmentOperations,
    MembershipOperations,
    FanoutOperations,
    AgencyOperations,
    BaseHook,
):
    """Hook for the HighLevel (LeadConnector) Contacts API (sync methods and their async twins).

    :param ghl_conn_id: id of a connection of type ``ghl``.
    :param location_id: location (sub-account) to work in; overrides the connection's
        ``location_id`` extra (``None`` or ``""``: the extra). A HighLevel id, checked here with the
        path builder's rule: anything else raises :class:`GHLValidationError` (``status`` None)
        naming the parameter, before any request.
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
        for name, value, low in (("daily_reserve", daily_reserve, 0), ("task_batch_size", task_batch_size, 1),
                                 ("task_page_limit", task_page_limit, 1)):
            if not isinstance(value, int) or value < low:
                raise GHLConfigError(f"GHLContactsHook: parameter '{name}' must be an integer >= {low}, got {value!r}")
        self.ghl_conn_id = ghl_conn_id
        if location_id not in (None, "") and not is_highlevel_id(location_id):
            raise GHLValidationError(
                f"GHLContactsHook: parameter 'location_id': {not_an_id(location_id)}; pass the location's id, "
                "or None to use the connection's 'location_id' extra"
            )
        self._location_override = location_id or None
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
        #: Whether this hook's token may use the location task search (shared by sync and async).
        self.task_search_access = TaskSearchAccess()

    # -- connection, session, auth -----------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings (read once)."""
        with self._init_lock:
            if self._settings is None:
                conn = self.get_connection(self.ghl_conn_id)
                self._settings = ConnectionSettings.from_connection(conn, self.ghl_conn_id)
            return self._settings

    async def aload_settings(self) -> ConnectionSettings:
        """Read the connection without blocking the event loop (``BaseHook.aget_connection``) and
        keep it as :attr:`settings`. The async methods and :meth:`async_transport` call it first."""
        if self._settings is None:
            conn = await BaseHook.aget_connection(self.ghl_conn_id)
            settings = ConnectionSettings.from_connection(conn, self.ghl_conn_id)
            with self._init_lock:
                if self._settings is None:
                    self._settings = settings
        return self._settings

    def _request_rules(
        self, token_source: TokenSource | None = None, limiter: RateLimiter | None = None
    ) -> dict[str, Any]:
        """What the sync and the async transports share: auth, the limiter, retries, counters.

        ``token_source`` / ``limiter`` replace the hook's own (the agency transports); the hook's
        are only looked up when not given (an agency Private Integration token raises from
        :attr:`token_source`)."""
        return {
            "token_source": token_source if token_source is not None else self.token_source,
            "limiter": limiter if limiter is not None else self.limiter,
            "retry": self.retry,
            "daily_reserve": self.daily_reserve,
            "stats": self.stats,
        }

    @property
    def base_url(self) -> str:
        """API base URL, e.g. ``https://services.leadconnectorhq.com``."""
        return self.settings.base_url

    @property
    def location_id(self) -> str | None:
        """The location the hook works in (constructor argument, else the connection extra)."""
        return self._location_override or self.settings.location_id

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
                    # An agency's location tokens are shared by the workers through the same kind of
                    # store as its own tokens, one key per location (auth.build_location_token_store).
                    location_store = None
                    if s.user_type == "Company":
                        def location_store(location_id: str, s: ConnectionSettings = s) -> Any:
                            return build_location_token_store(s.token_store, s.conn_id, location_id)
                    source = OAuthTokenSource(
                        oauth, build_token_store(s.token_store, s.conn_id), http=self._new_session, retry=self.retry,
                        location_store=location_store,
                    )
                    source.on_refresh = lambda: self.stats.add("refreshes")
                    self._token_source = source
                elif s.user_type == "Company":
                    # An agency Private Integration token reaches no location endpoint and cannot be
                    # exchanged for a location token: say so before any request.
                    raise agency_private_token_error(
                        s.conn_id, f"location {self.location_id}'s data" if self.location_id else "location data"
                    )
                else:
                    self._token_source = PrivateTokenSource(s.access_token or "", s.conn_id)
            return self._token_source

    @property
    def limiter(self) -> RateLimiter:
        """The limiter of (base URL, location): process-wide, shared with triggers and threads; and
        across processes and machines per (app, location) through Redis when the connection has the
        extra ``rate_limit_redis_conn_id`` (:mod:`~airflow_provider_contacts.hooks.shared_limits`)."""
        from airflow_provider_contacts.hooks.shared_limits import limiter_for

        return limiter_for(self.settings, self.location_id)  # type: ignore[return-value]

    def _base_headers(self) -> dict[str, str]:
        return {"Version": self.settings.api_version, "Accept": "application/json"}

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(self._base_headers())
        return session

    def _shared_session(self) -> requests.Session:
        """The cached session without touching the token (what :class:`Transport` sends with)."""
        with self._init_lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (created on first use, then reused).

        It carries ``Version``, ``Accept`` and the current ``Authorization`` header (set on each
        call); the hook's own calls set a fresh ``Authorization`` on every request (tokens rotate).
        """
        # The token is fetched outside the hook's lock: an OAuth refresh takes the token source's
        # lock and may build its own session (which reads the settings under the hook's lock).
        token = self.token_source.get_access_token()
        session = self._shared_session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    @contextlib.asynccontextmanager
    async def async_transport(
        self, token_source: TokenSource | None = None, limiter: RateLimiter | None = None
    ) -> AsyncIterator[AsyncTransport]:
        """An :class:`AsyncTransport` on its own ``httpx.AsyncClient``: what the async methods
        send through (each opens one).

        Same base URL, headers, timeouts, token source, shared limiter, retry rules and ``stats``
        as the hook's sync calls. The connection is read first with :meth:`aload_settings` (never
        a sync lookup inside the event loop). Prefer the async methods (``await
        hook.aget_contact(...)``); this is for requests the hook has no method for.

        ``token_source`` / ``limiter`` replace the hook's own (see :meth:`_request_rules`).
        """
        await self.aload_settings()
        connect_s, read_s = self.timeout
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(read_s, connect=connect_s), headers=self._base_headers(),
            verify=await async_tls_context(),
        ) as client:
            yield AsyncTransport(client=client, **self._request_rules(token_source=token_source, limiter=limiter))

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
                    session=self._shared_session, base_url=self.base_url, timeout=self.timeout, **self._request_rules()
                )
            return self._transport

    def close(self) -> None:
        """Close the cached session (a new one is created if the hook is used again)."""
        with self._init_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (a one-contact search) explaining what is wrong, if anything.

        Airflow's UI calls it when the user presses *Test* and waits for it, so it answers within
        :data:`TEST_DEADLINE_S` whatever the host does: the call runs on a copy of this hook with
        short timeouts (:data:`TEST_TIMEOUT_S`, capped by the connection's own) and no retries
        (:data:`TEST_RETRY`), in a worker thread that is given up on at the deadline (a host that
        accepts the connection and never answers, trickles bytes, or a DNS look-up that hangs).
        This hook's own session, retries and token source are not touched.

        :returns: ``(ok, message)``; the message names the problem and the fix, and never shows a
            token, a client secret or a URL's password.
        """
        try:
            settings = self.settings
        except GHLError as exc:  # a broken connection: the message names the field
            return False, self._scrub(str(exc))
        connect_s = min(settings.connect_timeout_s, TEST_TIMEOUT_S[0])
        read_s = min(settings.read_timeout_s, TEST_TIMEOUT_S[1])
        probe = GHLContactsHook(
            self.ghl_conn_id, self._location_override, retry=TEST_RETRY, daily_reserve=self.daily_reserve
        )
        # Airflow's Test button runs this hook under a throwaway connection id: an OAuth test must
        # use (and rotate in) the token store of the saved connection it stands for, or it would
        # spend the single-use refresh token into a store nobody reads again.
        # Not saved yet (the form's Test before Save): a refresh would spend the refresh token the
        # user is about to save. Only the client id and secret are checked then.
        twin, unsaved = self._oauth_test_identity(settings)
        probe._settings = dataclasses.replace(
            settings, conn_id=twin or settings.conn_id, connect_timeout_s=connect_s, read_timeout_s=read_s
        )
        outcome: list[tuple[bool, str]] = []

        def run() -> None:
            try:
                outcome.append(probe._test_oauth_client() if unsaved else probe._test_connection())
            except Exception as exc:  # noqa: BLE001 - the UI gets a message, never a traceback
                outcome.append((False, f"The connection test failed: {type(exc).__name__}: {exc}"))

        worker = threading.Thread(target=run, name=f"ghl-test-connection-{self.ghl_conn_id}", daemon=True)
        worker.start()
        worker.join(TEST_DEADLINE_S)
        if outcome:
            ok, message = outcome[0]
        else:
            with contextlib.suppress(Exception):  # unblocks the worker's socket where it can
                probe.close()
            ok, message = False, (
                f"No answer from {settings.base_url} within {TEST_DEADLINE_S:g} s (the test does not "
                "retry). The host or a proxy in between accepted the request but did not answer in "
                "time, or the name look-up hangs. Check that the connection's Base URL is the "
                f"HighLevel API ({DEFAULT_TEST_BASE_URL}) with the right port, and the proxy and "
                "firewall settings."
            )
        return ok, self._scrub(message)

    def _saved_oauth_twin(self, settings: ConnectionSettings) -> str | None:
        """Id of the saved OAuth connection this hook's connection is a copy of, when the hook runs
        under another id; ``None`` when there is none (or it cannot be looked up).

        Airflow's *Test* button (``POST /api/v2/connections/test``) copies the stored connection,
        merged with the form, under a random id. HighLevel refresh tokens are single-use and the
        default token stores are keyed by connection id, so a test refresh under that id would spend
        the connection's ``refresh_token`` into a store no task reads: the connection would fail
        afterwards with ``invalid_grant``, and a second test too. The twin is the one saved ``ghl``
        connection (metadata DB) with the same base URL, client id and refresh token extra; the test
        then reads and rotates that connection's tokens. Looked up outside task processes only (the
        api-server, scripts); an error in the look-up means no twin.
        """
        return self._oauth_test_identity(settings)[0]

    def _oauth_test_identity(self, settings: ConnectionSettings) -> tuple[str | None, bool]:
        """``(twin, unsaved)`` of an OAuth connection under test, from one read of the metadata DB.

        ``twin``: :meth:`_saved_oauth_twin`. ``unsaved``: the connection is not saved anywhere -
        Airflow's *Test* pressed on a connection form before *Save* (the api-server runs the hook
        under a throwaway id, from an environment variable) with no saved connection holding the
        same refresh token. ``False`` wherever that cannot be told for sure (no metadata DB, a task
        process, a connection saved under its own id, not under Airflow's API server): the full
        test runs then.
        """
        if settings.auth_type != "oauth" or not settings.refresh_token:
            return None, False
        from airflow_provider_contacts.auth import _in_task_process

        if _in_task_process():
            return None, False
        try:
            from sqlalchemy import select

            from airflow.models import Connection
            from airflow.utils.session import create_session

            with create_session() as session:
                saved = list(session.scalars(select(Connection).where(Connection.conn_type == CONN_TYPE)))
                if any(conn.conn_id == self.ghl_conn_id for conn in saved):
                    return None, False  # the hook runs under the saved connection's own id
                twins = []
                for conn in saved:
                    try:
                        other = ConnectionSettings.from_connection(conn, conn.conn_id)
                    except Exception:  # noqa: BLE001 - another broken connection is not ours to judge
                        continue
                    if (other.auth_type, other.base_url, other.client_id, other.refresh_token) == (
                        "oauth", settings.base_url, settings.client_id, settings.refresh_token
                    ):
                        twins.append(conn.conn_id)
        except Exception as exc:  # noqa: BLE001 - no metadata DB here: test under this hook's own id
            self.log.debug("No saved twin of connection %r looked up: %s", self.ghl_conn_id, type(exc).__name__)
            return None, False
        if len(twins) > 1:
            self.log.warning(
                "Connections %s share one OAuth refresh token; they spend each other's single-use "
                "tokens. Testing with the token store of %r.", sorted(twins), min(twins)
            )
        if twins:
            return min(twins), False
        return None, _called_from_airflow_api()

    def _test_oauth_client(self) -> tuple[bool, str]:
        """The test of an OAuth connection that is not saved yet: the token endpoint (oauth.json
        ``get-access-token``) is sent the connection's client id and secret with a refresh token
        that cannot exist, so that HighLevel checks the client and refuses the grant
        (``invalid_grant``) without rotating anything. The connection's own refresh token is
        single-use: spent by a test under a throwaway id, it would leave the saved connection with
        a spent token (``invalid_grant`` at its first use, the app to re-authorise).
        """
        settings = self.settings
        url = f"{settings.base_url}/oauth/token"
        data = {
            "client_id": settings.client_id, "client_secret": settings.client_secret,
            "grant_type": "refresh_token", "refresh_token": _PROBE_REFRESH_TOKEN, "user_type": settings.user_type,
        }
        try:
            resp = requests.post(url, data=data, timeout=settings.timeout,
                                 headers={"Accept": "application/json", "Version": settings.api_version})
        except requests.RequestException as exc:
            error = GHLTransportError(f"no answer from {url} ({type(exc).__name__})", operation="get-access-token")
            error.__cause__ = exc
            return False, self._explain_no_answer(error)
        try:
            body = resp.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        said = " ".join(str(body.get(k, "")) for k in ("error", "error_description", "message")).strip()
        detail = f"HTTP {resp.status_code}" + (f": {said}" if said else "")
        if "invalid_grant" in said.lower().replace(" ", "_") or resp.ok:
            return True, (
                f"Reached HighLevel's OAuth token endpoint at {settings.base_url}: the client id and "
                "secret are accepted. The refresh token and the location were not tried: this "
                "connection is not saved yet, and testing them would spend the single-use refresh "
                "token under a throwaway copy (the saved connection would then fail with "
                "invalid_grant). Save the connection, then press Test again for the full check."
            )
        if resp.status_code == 401 or "invalid_client" in said.lower():
            return False, (
                f"HighLevel refused the OAuth client ({detail}). Check the connection's client_id "
                "and client_secret extras: the Client ID and a Client Secret of the Marketplace "
                "app (Advanced Settings > Auth). The refresh token was not used."
            )
        if resp.status_code == 404:
            return False, (
                f"{settings.base_url} has no HighLevel OAuth endpoint ({detail} for POST /oauth/token). "
                f"Check that the connection's Base URL is the HighLevel API ({DEFAULT_TEST_BASE_URL}), "
                "without a path."
            )
        return False, f"HighLevel's OAuth token endpoint answered {detail}. The refresh token was not used."

    def _scrub(self, message: str) -> str:
        """``message`` without a URL's password, the connection's secrets or any bearer token."""
        message = redact_url_secrets(message)
        message = _BEARER.sub("Bearer ***", message)
        settings = self._settings
        if settings is not None:
            for secret in (settings.access_token, settings.client_secret, settings.refresh_token):
                if secret and len(secret) >= 4:
                    message = message.replace(secret, "***")
        return message

    def _test_connection(self) -> tuple[bool, str]:
        location = self._location_override or (self._settings.location_id if self._settings else None)
        try:
            location = self.require_location_id()
            self.search_contacts(page_limit=1)  # errors then name the operation
        except GHLScopeError as exc:  # 401 scope / token class: its message names the scope and the fix
            return False, f"HighLevel refused the token (401): {exc.message}"
        except GHLLocationAccessError as exc:
            where = "the hook's location_id" if self._location_override else "the connection's 'location_id' extra"
            return False, (
                f"HighLevel refused the location {location!r} (403): the token was issued for another "
                f"location. Set {where} to the token's location, or use a token issued for this one."
            )
        except GHLAuthError as exc:
            if exc.status == 403:
                return False, (
                    f"HighLevel refused the call (403): the token lacks the '{READ}' scope (HighLevel: "
                    f"{_api_said(exc)!r}). Add it to the Private Integration / OAuth app and re-authorise."
                )
            if exc.status != 401:  # e.g. the OAuth refresh failed: its message says what to re-authorise
                return False, str(exc)
            return False, (
                f"HighLevel rejected the token (401): it is invalid or expired (HighLevel: {_api_said(exc)!r}). "
                "Put a valid Private Integration token in the connection's password, or re-authorise the "
                "OAuth app and update the 'refresh_token' extra."
            )
        except GHLConfigError as exc:
            return False, str(exc)
        except GHLRateLimitError as exc:
            return False, (
                f"HighLevel is rate limiting this token (429): {exc.message}. The token and the host "
                "work; test again in a minute, or lower the concurrency of the DAGs using it."
            )
        except GHLNotFoundError as exc:
            return False, (
                f"{self.base_url} has no HighLevel contacts API (HTTP {exc.status} for POST /contacts/search: "
                f"{exc.message}). Check that the connection's Base URL is the HighLevel API "
                f"({DEFAULT_TEST_BASE_URL}), without a path."
            )
        except GHLAPIError as exc:
            return False, self._explain_no_answer(exc)
        except GHLError as exc:  # e.g. the daily reserve is reached: its message says so
            return False, str(exc)
        return True, f"Connected to {self.base_url} (location {location})."

    def _explain_no_answer(self, exc: GHLAPIError) -> str:
        """The message of a failed test call that got no usable answer (or a 5xx)."""
        base_url, fix = self.base_url, (
            f"Check that the connection's Base URL is the HighLevel API ({DEFAULT_TEST_BASE_URL}) "
            "with the right port, and the proxy and firewall settings."
        )
        cause = _requests_cause(exc)
        connect_s, read_s = self.timeout
        if exc.status is not None and 200 <= exc.status < 300:  # answered, but not with JSON
            return (
                f"{base_url} answered HTTP {exc.status} with a body that is not JSON: it does not "
                f"look like the HighLevel API. {fix}"
            )
        if exc.status is not None and exc.status >= 500:  # not retried here
            return (
                f"HighLevel answered with a server error: {exc}. The host is reachable; test again "
                "in a few minutes (HighLevel's status: https://status.gohighlevel.com)."
            )
        if exc.status is not None:  # another 4xx: the API's message says what it did not like
            return f"HighLevel answered with an error: {exc}"
        if isinstance(cause, requests.exceptions.ReadTimeout):
            return (
                f"Could not reach {base_url}: it accepted the connection but did not answer within "
                f"{read_s:g} s ({exc.message}). {fix}"
            )
        if isinstance(cause, requests.exceptions.ConnectTimeout):
            return (
                f"Could not reach {base_url}: no connection within {connect_s:g} s ({exc.message}). {fix}"
            )
        text = repr(cause) if cause is not None else ""
        if "refused" in text.lower():
            return f"Could not reach {base_url}: the connection was refused ({exc.message}). {fix}"
        if any(hint in text for hint in ("BadStatusLine", "RemoteDisconnected", "ProtocolError", "LineTooLong")):
            return (
                f"Could not reach {base_url}: the host answered, but not with HTTP the API speaks "
                f"({exc.message}). Is the scheme right (https:// vs http://)? {fix}"
            )
        if isinstance(cause, requests.exceptions.SSLError):
            return f"Could not reach {base_url}: the TLS handshake failed ({exc.message}). {fix}"
        return f"Could not reach {base_url}: {exc.message}. {fix}"


def _api_said(exc: GHLAPIError) -> str:
    """HighLevel's own words in ``exc``: its message without the explanation the transport appends
    (``"<HighLevel's message>: the token ..."``, or ``". The token ..."`` after a full stop), which
    the test's message gives in its own words."""
    said = _EXPLANATION.split(exc.message, 1)[0].strip()
    return said.rstrip(".") or "no message"


#: The API's base URL, named in test_connection's messages about a wrong host.
DEFAULT_TEST_BASE_URL = "https://services.leadconnectorhq.com"
#: ``(connect, read)`` timeouts of :meth:`GHLContactsHook.test_connection` (the connection's own
#: timeouts still apply when they are shorter).
TEST_TIMEOUT_S = (5.0, 8.0)
#: :meth:`GHLContactsHook.test_connection` answers within this many seconds, whatever the host does.
TEST_DEADLINE_S = 12.0
#: No retries for the test call: the user is waiting for it, and a second try only repeats the first.
TEST_RETRY = RetryPolicy(max_retries=0, max_throttled=0, max_elapsed_s=TEST_DEADLINE_S)
_EXPLANATION = re.compile(r"(?:[.!?]|:)\s+(?=[Tt]he token )")
_BEARER = re.compile(r"Bearer\s+[^\s'\",;)]+", re.IGNORECASE)


#: The refresh token sent by :meth:`GHLContactsHook._test_oauth_client`: no token HighLevel issues
#: looks like it, so the grant is refused after the client is checked.
_PROBE_REFRESH_TOKEN = "airflow-connection-test-probe-not-a-refresh-token"


def _called_from_airflow_api() -> bool:
    """Whether this thread runs under a request handler of Airflow's API server (its connection
    *Test* route calls ``Connection.test_connection`` in the request's thread)."""
    frame = sys._getframe(1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("airflow.api_fastapi."):
            return True
        frame = frame.f_back
    return False


def _requests_cause(exc: BaseException) -> BaseException | None:
    """The ``requests`` exception behind ``exc`` (its cause or context chain), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.RequestException):
            return current
        current = current.__cause__ or current.__context__
    return None


def forget_process_state() -> None:
    """Forget this process's limiters, cached OAuth tokens, claimed create ids and what was learnt
    about ``dateAdded`` (:mod:`.creates`).

    For tests that start servers on reused ports or simulate separate workers; never needed in DAGs.
    """
    reset_limiters()
    forget_process_tokens()
    CLAIMS.clear()
    DATED.clear()


#: The hook's former name (kept importable: ``from airflow_provider_contacts.hooks.contacts import ContactsHook``).
ContactsHook = GHLContactsHook

__all__ = ["ContactsHook", "GHLContactsHook", "forget_process_state"]
