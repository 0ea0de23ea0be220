"""The request loop of the hook: auth header, pacing, retries and error mapping.

One :meth:`Transport.request` call is one logical API call. It

1. takes a slot from the shared :class:`~airflow_provider_contacts.hooks.pacing.RateLimiter`
   (which may raise :class:`GHLDailyLimitError` before the daily limit),
2. sends the request with ``Authorization: Bearer <token>`` and the (connect, read) timeouts,
3. feeds the ``X-RateLimit-*`` headers back to the limiter,
4. retries per :class:`~airflow_provider_contacts.hooks.retry.RetryPolicy` (one
   :class:`~airflow_provider_contacts.hooks.retry.Attempts` per call): 429 after
   ``Retry-After`` (holding every thread of the process), 5xx / network errors / broken bodies with
   jittered backoff, a plain 401 (expired or invalid token) once after the token source refreshed
   the token,
5. maps other errors to the :mod:`airflow_provider_contacts.errors` hierarchy, by status *and* the
   API's message where the live API overloads a status (ghl-live-notes.md, "Statuses and error
   bodies"; :func:`~airflow_provider_contacts.errors.error_class_for_status`):

   * 404, and 400 (or 422) whose message says the record was not found (``Contact not found``:
     how the live API and contacts.json, which lists no 404, answer an unknown or deleted contact,
     task or note) -> :class:`~airflow_provider_contacts.errors.GHLNotFoundError` (``status`` keeps
     400 or 404);
   * 401 ``The token is not authorized for this scope.`` or ``This authClass type is not allowed
     to access this scope`` -> :class:`~airflow_provider_contacts.errors.GHLScopeError` naming the
     scope the operation needs (``scope=``) and the fix, **without** a token refresh: no refresh
     cures it, and with OAuth each one spends a single-use refresh token;
   * 403 ``The token does not have access to this location.`` ->
     :class:`~airflow_provider_contacts.errors.GHLLocationAccessError` (check ``location_id``);
   * other 401/403 -> :class:`~airflow_provider_contacts.errors.GHLAuthError`; 429 ->
     ``GHLRateLimitError``; other 400/422 -> ``GHLValidationError``; 5xx -> ``GHLServerError``.

   Any 2xx is a success (HighLevel answers some writes with 201 where the spec says 200).

Writes that must not be repeated blindly (creates) pass ``replay_safe=False``: an ambiguous failure
(the request may have been processed) raises :class:`AmbiguousWrite` instead of being retried, so
the caller can look for the created record first. ``AmbiguousWrite.sent_at`` is when that attempt
was sent, and every answer's ``Date`` header feeds the transport's
:class:`~airflow_provider_contacts.hooks.creates.ServerClock` (``clock``), so the look-up can
compare ``dateAdded`` with the send time on the server's clock (see :mod:`.creates`).

A caller that must know whether an earlier attempt of its call may have been applied passes a
:class:`CallReport` (``report=``): the loop notes there when it resends a request after an attempt
that reached the server without a usable answer (5xx, read timeout, dropped connection, broken
body). A resend's answer then describes the state *after* that attempt, not before the call: a
``DELETE`` resent after its record was deleted meets ``... not found``
(:meth:`~airflow_provider_contacts.hooks.operations.OperationsBase._delete` reports it as deleted),
an upsert resent after it created the contact answers ``new: false``
(:meth:`~airflow_provider_contacts.hooks.contact_ops.ContactOperations.upsert_contact` corrects it).

Before any request, the path is checked by
:func:`~airflow_provider_contacts.hooks.paths.check_request_path`: only ``/`` and plain segments
(letters, digits, ``_``, ``-``) are sent, so no id can smuggle in ``..``, ``/``, ``?``, ``#`` or
``%`` (ids are checked, with the parameter named, by
:func:`~airflow_provider_contacts.hooks.paths.api_path`). A base URL never carries credentials
(:class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings` strips them), and every
message naming it goes through :func:`~airflow_provider_contacts.hooks.urls.redact_url_secrets`.

:class:`Transport` does this with ``requests`` (the hook), :class:`AsyncTransport` with an
``httpx.AsyncClient`` (triggers); both follow the same rules (``_RequestRules``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import requests

from airflow_provider_contacts.auth import TokenSource
from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLLocationAccessError,
    GHLRateLimitError,
    GHLScopeError,
    GHLServerError,
    GHLTransportError,
    api_error_message,
    error_class_for_status,
    explain,
)
from airflow_provider_contacts.hooks.creates import ServerClock
from airflow_provider_contacts.hooks.pacing import RateLimiter
from airflow_provider_contacts.hooks.paths import check_request_path
from airflow_provider_contacts.hooks.retry import RETRYABLE_STATUSES, Attempts, RetryPolicy, retry_after_s
from airflow_provider_contacts.hooks.urls import redact_url_secrets

log = logging.getLogger(__name__)


@dataclass
class HookStats:
    """Counters of one hook instance (thread-safe). ``throttled`` counts 429 answers."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    refreshes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Increment counter ``name`` by ``n``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for XCom and run reports)."""
        with self._lock:
            return {
                "requests": self.requests,
                "throttled": self.throttled,
                "retries": self.retries,
                "refreshes": self.refreshes,
            }


@dataclass
class CallReport:
    """What the request loop learnt about one logical call (pass one as ``request(report=...)``).

    :ivar attempts: requests sent for the call (429 and token-refresh resends included).
    :ivar maybe_applied_at: local epoch seconds at which the first attempt that *may have been
        applied* was sent: one that reached the server but got no usable answer (5xx, read timeout,
        dropped connection, a broken body) and that the loop then resent or gave up on. ``None``
        when no such attempt happened: every earlier attempt was certainly not applied (429,
        plain 401 before a refresh, connection refused) or the first attempt was answered.
    """

    attempts: int = 0
    maybe_applied_at: float | None = None

    @property
    def maybe_applied(self) -> bool:
        """Whether an earlier attempt of the call may have been applied (its answer was lost)."""
        return self.maybe_applied_at is not None


class AmbiguousWrite(Exception):
    """A non-replay-safe write failed in a way that may have left it processed on the server.

    ``timed_out`` is true when no answer came within the read timeout: the server may still be
    working on the request. ``sent_at`` is when the attempt was sent (epoch seconds, this
    machine's clock; ``None`` when unknown).
    """

    def __init__(self, error: GHLAPIError, timed_out: bool = False, sent_at: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.timed_out = timed_out
        self.sent_at = sent_at


def _connection_never_reached(exc: BaseException) -> bool:
    """True when the request certainly did not reach the server (safe to resend a write)."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, httpx.ConnectError, httpx.ConnectTimeout)):
        return True
    text = repr(exc)
    return isinstance(exc, requests.exceptions.ConnectionError) and (
        "NewConnectionError" in text or "Connection refused" in text
    )


def _query_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The query parameters to send: those whose value is not ``None`` (``None`` if none is left)."""
    return {k: v for k, v in (params or {}).items() if v is not None} or None


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, (requests.exceptions.ReadTimeout, httpx.ReadTimeout))


@dataclass
class _Call:
    """State of one logical API call across its attempts."""

    operation: str
    scope: str | None
    replay_safe: bool
    attempts: Attempts
    report: CallReport = field(default_factory=CallReport)
    sent_at: float | None = None  # epoch seconds when the current attempt was sent
    refreshed: bool = False

    def sending(self) -> None:
        """An attempt goes out now."""
        self.sent_at = time.time()
        self.report.attempts += 1


@dataclass(frozen=True)
class _Step:
    """What the request loop does next: return ``body``, refresh the token, or wait and resend."""

    action: Literal["return", "refresh", "wait"]
    body: Any = None
    wait_s: float = 0.0
    error: GHLAPIError | None = None


class _RequestRules:
    """The rules shared by the sync and the async request loop (what to retry, when to give up)."""

    def __init__(
        self,
        *,
        base_url: str,
        token_source: TokenSource,
        limiter: RateLimiter,
        retry: RetryPolicy,
        daily_reserve: int,
        stats: HookStats,
    ) -> None:
        self.base_url = base_url
        self.token_source = token_source
        self.limiter = limiter
        self.retry = retry
        self.daily_reserve = daily_reserve
        self.stats = stats
        #: The server's clock, from the ``Date`` header of every answer (for create look-ups).
        self.clock = ServerClock()

    def _start(
        self, method: str, path: str, operation: str, scope: str | None, replay_safe: bool, report: CallReport | None
    ) -> _Call:
        """Check the path (nothing is sent for a refused one) and start a call."""
        check_request_path(method, path, operation)
        return _Call(operation, scope, replay_safe, self.retry.begin(), report if report is not None else CallReport())

    def _on_no_answer(self, call: _Call, exc: BaseException) -> _Step:
        error = GHLTransportError(
            f"no usable answer from {redact_url_secrets(self.base_url)} ({type(exc).__name__})",
            operation=call.operation,
        )
        return self._retryable(call, error, reached=not _connection_never_reached(exc), timed_out=_timed_out(exc))

    def _on_answer(
        self, call: _Call, status: int, headers: Mapping[str, str], content: bytes, reason: str | None
    ) -> _Step:
        self.clock.observe(headers.get("Date") or headers.get("date"))
        if 200 <= status < 300:
            try:
                return _Step("return", body=json.loads(content) if content.strip() else {})
            except ValueError:
                error = GHLTransportError(
                    f"HTTP {status} with a body that is not valid JSON (truncated?)",
                    status=status,
                    operation=call.operation,
                )
                return self._retryable(call, error, reached=True, timed_out=False)
        try:
            body = json.loads(content) if content.strip() else None
        except ValueError:
            body = None
        message, trace_id = api_error_message(body, reason or f"HTTP {status}")
        if status == 401 and not call.refreshed and error_class_for_status(status, message) is not GHLScopeError:
            # A plain 401 (expired or invalid token): one refresh, then the call again. A scope or
            # token-class 401 is raised below at once: a refresh cannot cure it.
            call.refreshed = True
            return _Step("refresh", error=self._client_error(status, message, trace_id, call.operation, call.scope))
        if status == 429:
            self.stats.add("throttled")
            wait = retry_after_s(headers, self.limiter.retry_after_default())
            self.limiter.hold(wait)  # every thread and coroutine of the process waits
            if call.attempts.throttled(wait) is None:
                raise GHLRateLimitError(
                    f"{message}; still rate limited after {call.attempts.throttles} attempts - lower the "
                    "concurrency or spread the work over more time",
                    status=429,
                    trace_id=trace_id,
                    operation=call.operation,
                )
            self.stats.add("retries")
            log.info("%s: 429, waiting %.2f s (attempt %d)", call.operation, wait, call.attempts.throttles)
            return _Step("wait", wait_s=0.0)  # the limiter's hold does the waiting
        if status in RETRYABLE_STATUSES:
            error = GHLServerError(message, status=status, trace_id=trace_id, operation=call.operation)
            return self._retryable(call, error, reached=True, timed_out=False)
        raise self._client_error(status, message, trace_id, call.operation, call.scope)

    def _retryable(self, call: _Call, error: GHLAPIError, *, reached: bool, timed_out: bool) -> _Step:
        """A 5xx, no answer, or a broken body: back off and resend, or give up."""
        if not call.replay_safe and reached:
            raise AmbiguousWrite(error, timed_out=timed_out, sent_at=call.sent_at)
        if reached and call.report.maybe_applied_at is None:
            # This attempt reached the server and its answer was lost: it may have been applied,
            # and a resend's answer describes the state after it (see CallReport).
            call.report.maybe_applied_at = call.sent_at
        wait = call.attempts.failed()
        if wait is None:
            raise error.with_message(f"{error.message} (gave up after {call.attempts.failures} attempts)")
        self.stats.add("retries")
        log.warning("%s: %s; retry %d in %.2f s", call.operation, error.message, call.attempts.failures, wait)
        return _Step("wait", wait_s=wait)

    @staticmethod
    def _client_error(
        status: int, message: str, trace_id: str | None, operation: str, scope: str | None
    ) -> GHLAPIError:
        """The error of a 4xx answer that is not retried (see the module docstring).

        Auth errors say what to do: which scope to add, which token to use, which setting to check.
        """
        cls = error_class_for_status(status, message)
        needed = f"'{scope}'" if scope else "the scope this call needs"
        if cls is GHLScopeError:
            if "authclass" in message.lower():
                fix = (
                    "the token is of the wrong class: an agency (Company) token cannot call this "
                    "location endpoint. Use a location token, not an agency token: a location's Private "
                    "Integration token or an OAuth token of user_type 'Location'; or keep the agency app "
                    "and set the connection extras user_type='Company', company_id and location_id so "
                    f"the hook exchanges it for a location token (/oauth/locationToken). It needs {needed}"
                )
            else:
                lacks = f"the {needed} scope this operation needs" if scope else "the scope this operation needs"
                fix = (
                    f"the token lacks {lacks}. Add {needed} to the scopes of the Private Integration / "
                    "OAuth app, then re-authorise (issue a new token or reinstall the app): a refresh "
                    "keeps the old scopes"
                )
            return GHLScopeError(
                explain(message, f"{fix} (no token refresh was spent on it)"),
                scope=scope, status=status, trace_id=trace_id, operation=operation,
            )
        if cls is GHLLocationAccessError:
            message = explain(
                message, "the token was issued for another location (sub-account); set location_id "
                "(the connection's extra 'location_id', or ContactsHook(location_id=...)) to the token's location"
            )
        elif status == 401:
            message = explain(
                message, "the token is invalid or expired; put a valid Private Integration token "
                "in the connection's password, or re-authorise the OAuth app"
            )
        elif status == 403:
            lacks = f"the {needed} scope" if scope else needed
            message = explain(message, f"the token lacks {lacks}; add it to the app/integration and re-authorise")
        return cls(message, status=status, trace_id=trace_id, operation=operation)


class Transport(_RequestRules):
    """Sends API requests for one hook with ``requests``. See the module docstring for the rules.

    :param session: returns the hook's cached ``requests.Session``.
    :param base_url: API base URL without trailing slash.
    :param token_source: gives (and refreshes) the bearer token.
    :param limiter: the shared limiter of (base URL, location).
    :param retry: retry bounds.
    :param timeout: ``(connect, read)`` seconds.
    :param daily_reserve: daily requests to leave untouched.
    :param stats: the hook's counters.
    """

    def __init__(
        self,
        *,
        session: Callable[[], requests.Session],
        base_url: str,
        token_source: TokenSource,
        limiter: RateLimiter,
        retry: RetryPolicy,
        timeout: tuple[float, float],
        daily_reserve: int,
        stats: HookStats,
    ) -> None:
        super().__init__(
            base_url=base_url, token_source=token_source, limiter=limiter, retry=retry,
            daily_reserve=daily_reserve, stats=stats,
        )
        self._session = session
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        scope: str | None = None,
        replay_safe: bool = True,
        report: CallReport | None = None,
    ) -> Any:
        """Send one API call and return its parsed JSON body (``{}`` for an empty body).

        :param operation: contacts.json ``operationId`` (for errors and logs).
        :param scope: the OAuth scope the call needs (named in scope errors: 401 scope, 403).
        :param replay_safe: ``False`` for creates: ambiguous failures raise :class:`AmbiguousWrite`.
        :param report: filled in as the call goes (attempts; whether an earlier attempt may have
            been applied), also when the call raises. See :class:`CallReport`.
        :param path: ``/`` and plain segments only, as built by ``api_path`` (else
            :class:`GHLValidationError` before anything is sent).
        :raises GHLValidationError: a refused path (nothing sent); 400/422 from the API.
        :raises GHLNotFoundError: 404, or 400/422 whose message says not found.
        :raises GHLScopeError: 401 for a token without ``scope`` or of the wrong class (no refresh).
        :raises GHLLocationAccessError: 403, the token belongs to another location.
        :raises GHLAPIError: (a subclass) for other errors that are not retried or outlast the retries.
        """
        call = self._start(method, path, operation, scope, replay_safe, report)
        clean_params = _query_params(params)
        while True:
            token = self.token_source.get_access_token()
            self.limiter.acquire(self.daily_reserve)
            try:
                self.stats.add("requests")
                call.sending()
                resp = self._session().request(
                    method,
                    f"{self.base_url}{path}",
                    params=clean_params,
                    json=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
                self.limiter.update_from_headers(resp.headers)
            except requests.RequestException as exc:
                step = self._on_no_answer(call, exc)
            else:
                step = self._on_answer(call, resp.status_code, resp.headers, resp.content, resp.reason)
            finally:
                self.limiter.release()
            if step.action == "return":
                return step.body
            if step.action == "refresh":
                if not self.token_source.on_unauthorized(token):
                    raise step.error  # type: ignore[misc]
                log.info("%s: 401 with the current token; retrying with a refreshed token", operation)
            elif step.wait_s > 0:
                time.sleep(step.wait_s)


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR


async def async_tls_context() -> ssl.SSLContext:
    """The TLS context for ``httpx.AsyncClient(verify=...)``: httpx's default verification
    (certifi's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), built once per process
    in a worker thread and shared by every client.

    ``httpx.AsyncClient()`` builds a new context each time (reads and parses the CA bundle, about
    5-60 ms): the async methods open one client per call, so in a trigger polling every few seconds
    that work would block the triggerer's event loop on every poll.
    """
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    return await asyncio.to_thread(_tls_context, *key)


class AsyncTransport(_RequestRules):
    """The same request loop for asyncio code (triggers), on an ``httpx.AsyncClient``.

    Shares the process-wide limiter (``aacquire``), the token source (``aget_access_token`` /
    ``aon_unauthorized``) and the retry rules with :class:`Transport`; waits never block the loop.

    :param client: an ``httpx.AsyncClient`` whose ``base_url``, timeouts and ``Version``/``Accept``
        headers are set (see ``GHLContactsHook.async_transport()``).
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        token_source: TokenSource,
        limiter: RateLimiter,
        retry: RetryPolicy,
        daily_reserve: int,
        stats: HookStats,
    ) -> None:
        super().__init__(
            base_url=str(client.base_url).rstrip("/"), token_source=token_source, limiter=limiter,
            retry=retry, daily_reserve=daily_reserve, stats=stats,
        )
        self.client = client

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        scope: str | None = None,
        replay_safe: bool = True,
        report: CallReport | None = None,
    ) -> Any:
        """Async :meth:`Transport.request` (same parameters, same errors)."""
        call = self._start(method, path, operation, scope, replay_safe, report)
        clean_params = _query_params(params)
        while True:
            token = await self.token_source.aget_access_token()
            await self.limiter.aacquire(self.daily_reserve)
            try:
                self.stats.add("requests")
                call.sending()
                resp = await self.client.request(
                    method, path, params=clean_params, json=json_body, headers={"Authorization": f"Bearer {token}"}
                )
                self.limiter.update_from_headers(resp.headers)
            except httpx.HTTPError as exc:
                step = self._on_no_answer(call, exc)
            else:
                step = self._on_answer(call, resp.status_code, resp.headers, resp.content, resp.reason_phrase)
            finally:
                self.limiter.release()
            if step.action == "return":
                return step.body
            if step.action == "refresh":
                refresh = getattr(self.token_source, "aon_unauthorized", None)
                renewed = await refresh(token) if refresh else await asyncio.to_thread(self.token_source.on_unauthorized, token)
                if not renewed:
                    raise step.error  # type: ignore[misc]
                log.info("%s: 401 with the current token; retrying with a refreshed token", operation)
            elif step.wait_s > 0:
                await asyncio.sleep(step.wait_s)


__all__ = [
    "AmbiguousWrite", "AsyncTransport", "CallReport", "HookStats", "Transport", "api_error_message", "async_tls_context",
]
