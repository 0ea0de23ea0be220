"""The request loop of the hook: auth header, pacing, retries and error mapping.

One :meth:`Transport.request` call is one logical API call. It

1. takes a slot from the shared :class:`~airflow_provider_contacts.hooks.pacing.RateLimiter`
   (which may raise :class:`GHLDailyLimitError` before the daily limit),
2. sends the request with ``Authorization: Bearer <token>`` and the (connect, read) timeouts,
3. feeds the ``X-RateLimit-*`` headers back to the limiter,
4. retries per :class:`~airflow_provider_contacts.hooks.retry.RetryPolicy`: 429 after
   ``Retry-After`` (holding every thread of the process), 5xx / network errors / broken bodies with
   jittered backoff, a 401 once after the token source refreshed the token,
5. maps other errors to the :mod:`airflow_provider_contacts.errors` hierarchy.

Writes that must not be repeated blindly (creates) pass ``replay_safe=False``: an ambiguous failure
(the request may have been processed) raises :class:`AmbiguousWrite` instead of being retried, so
the caller can look for the created record first.

:class:`Transport` does this with ``requests`` (the hook), :class:`AsyncTransport` with an
``httpx.AsyncClient`` (triggers); both follow the same rules (``_RequestRules``).
"""

from __future__ import annotations

import asyncio
import json
import logging
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
    GHLRateLimitError,
    GHLServerError,
    GHLTransportError,
    api_error_message,
    error_class_for_status,
)
from airflow_provider_contacts.hooks.pacing import RateLimiter
from airflow_provider_contacts.hooks.retry import RETRYABLE_STATUSES, RetryPolicy, retry_after_s

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

    def __getitem__(self, name: str) -> int:
        return self.as_dict()[name]


class AmbiguousWrite(Exception):
    """A non-replay-safe write failed in a way that may have left it processed on the server.

    ``timed_out`` is true when no answer came within the read timeout: the server may still be
    working on the request.
    """

    def __init__(self, error: GHLAPIError, timed_out: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.timed_out = timed_out


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
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    throttles: int = 0
    refreshed: bool = False


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

    def _on_no_answer(self, call: _Call, exc: BaseException) -> _Step:
        error = GHLTransportError(
            f"no usable answer from {self.base_url} ({type(exc).__name__})", operation=call.operation
        )
        return self._retryable(call, error, reached=not _connection_never_reached(exc), timed_out=_timed_out(exc))

    def _on_answer(
        self, call: _Call, status: int, headers: Mapping[str, str], content: bytes, reason: str | None
    ) -> _Step:
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
        if status == 401 and not call.refreshed:
            call.refreshed = True
            return _Step("refresh", error=self._client_error(status, message, trace_id, call.operation, call.scope))
        if status == 429:
            call.throttles += 1
            self.stats.add("throttled")
            wait = retry_after_s(headers, self.limiter.retry_after_default())
            self.limiter.hold(wait)  # every thread and coroutine of the process waits
            if call.throttles > self.retry.max_throttled or time.monotonic() - call.started + wait > self.retry.max_elapsed_s:
                raise GHLRateLimitError(
                    f"{message}; still rate limited after {call.throttles} attempts - lower the "
                    "concurrency or spread the work over more time",
                    status=429,
                    trace_id=trace_id,
                    operation=call.operation,
                )
            self.stats.add("retries")
            log.info("%s: 429, waiting %.2f s (attempt %d)", call.operation, wait, call.throttles)
            return _Step("wait", wait_s=0.0)  # the limiter's hold does the waiting
        if status in RETRYABLE_STATUSES:
            error = GHLServerError(message, status=status, trace_id=trace_id, operation=call.operation)
            return self._retryable(call, error, reached=True, timed_out=False)
        raise self._client_error(status, message, trace_id, call.operation, call.scope)

    def _retryable(self, call: _Call, error: GHLAPIError, *, reached: bool, timed_out: bool) -> _Step:
        """A 5xx, no answer, or a broken body: back off and resend, or give up."""
        if not call.replay_safe and reached:
            raise AmbiguousWrite(error, timed_out=timed_out)
        call.failures += 1
        wait = self.retry.next_wait_s(call.failures, call.started)
        if wait is None:
            raise error.with_message(f"{error.message} (gave up after {call.failures} attempts)")
        self.stats.add("retries")
        log.warning("%s: %s; retry %d in %.2f s", call.operation, error.message, call.failures, wait)
        return _Step("wait", wait_s=wait)

    @staticmethod
    def _client_error(
        status: int, message: str, trace_id: str | None, operation: str, scope: str | None
    ) -> GHLAPIError:
        if status == 401:
            message = (
                f"{message}: the token is invalid or expired; put a valid Private Integration token "
                "in the connection's password, or re-authorise the OAuth app"
            )
        elif status == 403:
            needed = f"'{scope}'" if scope else "the scope this call needs"
            message = f"{message}: the token lacks the {needed} scope; add it to the app/integration and re-authorise"
        return error_class_for_status(status)(message, status=status, trace_id=trace_id, operation=operation)


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
    ) -> Any:
        """Send one API call and return its parsed JSON body (``{}`` for an empty body).

        :param operation: contacts.json ``operationId`` (for errors and logs).
        :param scope: the OAuth scope the call needs (named in 403 errors).
        :param replay_safe: ``False`` for creates: ambiguous failures raise :class:`AmbiguousWrite`.
        :raises GHLAPIError: (a subclass) for errors that are not retried or outlast the retries.
        """
        call = _Call(operation, scope, replay_safe)
        clean_params = _query_params(params)
        while True:
            token = self.token_source.get_access_token()
            self.limiter.acquire(self.daily_reserve)
            try:
                self.stats.add("requests")
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


class AsyncTransport(_RequestRules):
    """The same request loop for asyncio code (triggers), on an ``httpx.AsyncClient``.

    Shares the process-wide limiter (``aacquire``), the token source (``aget_access_token`` /
    ``aon_unauthorized``) and the retry rules with :class:`Transport`; waits never block the loop.

    :param client: an ``httpx.AsyncClient`` whose ``base_url``, timeouts and ``Version``/``Accept``
        headers are set (see ``ContactsHook.async_transport()``).
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
    ) -> Any:
        """Async :meth:`Transport.request` (same parameters, same errors)."""
        call = _Call(operation, scope, replay_safe)
        clean_params = _query_params(params)
        while True:
            token = await self.token_source.aget_access_token()
            await self.limiter.aacquire(self.daily_reserve)
            try:
                self.stats.add("requests")
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


__all__ = ["AmbiguousWrite", "AsyncTransport", "HookStats", "Transport", "api_error_message"]
