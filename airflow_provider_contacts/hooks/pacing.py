"""Client-side pacing from HighLevel's rate-limit headers.

HighLevel limits each app per location (or company) to a burst budget (default 100 requests per
10 s) and a daily budget (default 200,000). Every answer reports the budget in headers:

* ``X-RateLimit-Max`` / ``X-RateLimit-Interval-Milliseconds``: the burst budget and its window;
* ``X-RateLimit-Remaining``: what is left of the current window;
* ``X-RateLimit-Daily-Remaining`` / ``X-RateLimit-Limit-Daily``: the daily budget.

:class:`RateLimiter` lets a request start when either

1. **its own sliding window** allows it: fewer than ``utilisation x max`` requests started in the
   last ``interval x (1 + pad) + slack_s`` seconds. The padding absorbs the delay between a
   request leaving this process and the server counting it, so a server with a sliding window
   (the strictest kind) never sees more than ``max`` in any window, and a fixed-window server
   never does either, whatever its alignment; or
2. **the server says so**: the last ``X-RateLimit-Remaining``, minus the requests sent since, is
   still above a quarter of the budget (a server that counts less than the own window does - a
   shorter or lifted limit - is used at its real pace; near the end of a window ``Remaining`` is
   not trusted, as answers arrive out of order).

It holds every caller back after a 429 (``Retry-After``) and for one slot when ``Remaining`` shows
that others share the budget (``Remaining`` below the requests in flight). It refuses to start a
request that would eat into the daily reserve (:class:`~airflow_provider_contacts.errors.GHLDailyLimitError`).

There is one limiter per (base URL, location) per process (:func:`get_limiter`), shared by every
hook instance, thread and coroutine of that process. Times are in seconds unless named ``_ms``.
Processes and machines share one budget per (app, location) when the connection names a Redis
connection (extra ``rate_limit_redis_conn_id``): see
:mod:`~airflow_provider_contacts.hooks.shared_limits`, which falls back to this limiter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from airflow_provider_contacts.errors import GHLDailyLimitError

#: HighLevel's documented defaults, assumed until the first answer's headers are seen.
DEFAULT_MAX_REQUESTS = 100
DEFAULT_INTERVAL_S = 10.0
DEFAULT_DAILY_LIMIT = 200_000
#: Requests of the daily budget left untouched unless the caller says otherwise.
DEFAULT_DAILY_RESERVE = 1_000
#: Fraction of the burst budget the limiter's own window uses.
DEFAULT_UTILISATION = 0.98
#: The limiter's own window is the server's window x (1 + pad) + slack (transit and scheduling jitter).
WINDOW_PAD = 0.02
WINDOW_SLACK_S = 0.02
#: Fraction of the burst budget that the server-reported ``Remaining`` (minus what was sent since)
#: must still exceed before the limiter spends it beyond its own window. Near the end of a window,
#: answers arrive out of order and ``Remaining`` is stale by a request or two: don't trust it there.
REMAINING_TRUST_FRACTION = 0.25


def _header(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric header, looked up case-insensitively; ``None`` if absent or not a number."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                value = val
                break
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class LimiterSnapshot:
    """What the limiter currently believes about the budget (for logs and benchmarks)."""

    max_requests: int
    interval_s: float
    remaining: int | None
    daily_remaining: int | None
    daily_limit: int
    own_window_s: float
    own_capacity: int
    in_flight: int


class RateLimiter:
    """Thread-safe (and asyncio-friendly) pacer for one (base URL, location).

    :param max_requests: burst budget per window until headers say otherwise.
    :param interval_s: window length in seconds until headers say otherwise.
    :param daily_limit: daily budget until headers say otherwise.
    :param utilisation: fraction of the burst budget the own window may use (0 < u <= 1).
    :param clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        interval_s: float = DEFAULT_INTERVAL_S,
        daily_limit: int = DEFAULT_DAILY_LIMIT,
        utilisation: float = DEFAULT_UTILISATION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < utilisation <= 1:
            raise ValueError("utilisation must be in (0, 1]")
        self._lock = threading.Lock()
        self._clock = clock
        self._utilisation = utilisation
        self._max = max_requests
        self._interval = interval_s
        self._daily_limit = daily_limit
        self._daily_remaining: int | None = None
        self._remaining: int | None = None
        self._server_budget = 0  # Remaining (last answer) minus requests started since
        self._sent: deque[float] = deque()  # start times of own requests in the own window
        self._hold_until = 0.0
        self._in_flight = 0

    # -- state -------------------------------------------------------------------------------

    @property
    def own_window_s(self) -> float:
        """Length of the limiter's own sliding window in seconds."""
        return self._interval * (1 + WINDOW_PAD) + WINDOW_SLACK_S

    @property
    def own_capacity(self) -> int:
        """Requests the own window admits."""
        return max(1, int(self._max * self._utilisation))

    def snapshot(self) -> LimiterSnapshot:
        """The current view of the budget."""
        with self._lock:
            return LimiterSnapshot(
                max_requests=self._max,
                interval_s=self._interval,
                remaining=self._remaining,
                daily_remaining=self._daily_remaining,
                daily_limit=self._daily_limit,
                own_window_s=self.own_window_s,
                own_capacity=self.own_capacity,
                in_flight=self._in_flight,
            )

    # -- acquiring a slot --------------------------------------------------------------------

    def _try_take(self, daily_reserve: int) -> float:
        """Take a slot now (return 0) or return how long to wait before trying again."""
        with self._lock:
            if self._daily_remaining is not None and self._daily_remaining <= daily_reserve:
                raise GHLDailyLimitError(
                    f"stopped before HighLevel's daily request limit: {self._daily_remaining} of "
                    f"{self._daily_limit} requests left today and {daily_reserve} are kept in "
                    "reserve; resume after the daily window resets (UTC midnight), or lower "
                    "'daily_reserve' on the hook"
                )
            now = self._clock()
            if now < self._hold_until:
                return self._hold_until - now
            window = self._prune_sent(now)
            trusted = max(2, int(self._max * REMAINING_TRUST_FRACTION))
            if len(self._sent) >= self.own_capacity and self._server_budget <= trusted:
                return max(0.001, self._sent[0] + window - now)
            self._record_start(now)
            return 0.0

    def _prune_sent(self, now: float) -> float:
        """Drop the own-window start times older than the window; return the window. Under the lock."""
        window = self.own_window_s
        while self._sent and self._sent[0] <= now - window:
            self._sent.popleft()
        return window

    def _record_start(self, now: float) -> None:
        """Count one request starting at ``now``: own window, server budget, in flight, daily view.
        Under the lock."""
        self._prune_sent(now)
        self._sent.append(now)
        self._server_budget -= 1
        self._in_flight += 1
        if self._daily_remaining is not None:
            self._daily_remaining -= 1

    def acquire(self, daily_reserve: int = DEFAULT_DAILY_RESERVE) -> None:
        """Block until the next request may start. Pair every call with :meth:`release`.

        :raises GHLDailyLimitError: when the daily budget left is at or below ``daily_reserve``.
        """
        while (wait := self._try_take(daily_reserve)) > 0:
            time.sleep(wait)

    async def aacquire(self, daily_reserve: int = DEFAULT_DAILY_RESERVE) -> None:
        """Async :meth:`acquire`: waits with ``asyncio.sleep`` instead of blocking the loop."""
        while (wait := self._try_take(daily_reserve)) > 0:
            await asyncio.sleep(wait)

    def note_started(self) -> None:
        """Count a request whose slot another limiter granted (the Redis-shared one of
        :mod:`~airflow_provider_contacts.hooks.shared_limits`): it joins the own window, the requests
        in flight and the daily view, so a fall-back to this limiter starts from what was really
        sent. Pair every call with :meth:`release`."""
        with self._lock:
            self._record_start(self._clock())

    def release(self) -> None:
        """Mark one acquired request as finished (answered or failed)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    # -- learning from the server ------------------------------------------------------------

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from an answer's ``X-RateLimit-*`` headers (absent ones are ignored).

        Call it before :meth:`release` of the same request.
        """
        max_requests = _header(headers, "X-RateLimit-Max")
        interval_ms = _header(headers, "X-RateLimit-Interval-Milliseconds")
        remaining = _header(headers, "X-RateLimit-Remaining")
        daily_remaining = _header(headers, "X-RateLimit-Daily-Remaining")
        daily_limit = _header(headers, "X-RateLimit-Limit-Daily")
        with self._lock:
            if max_requests and max_requests > 0:
                self._max = int(max_requests)
            if interval_ms and interval_ms > 0:
                self._interval = interval_ms / 1000.0
            if daily_limit and daily_limit > 0:
                self._daily_limit = int(daily_limit)
            if daily_remaining is not None:
                seen = int(daily_remaining)
                # Answers arrive out of order under concurrency: keep the lower (fresher) count,
                # unless the server's count jumped up (a new day began).
                if self._daily_remaining is None or seen < self._daily_remaining or (
                    seen > self._daily_remaining + 2 * self._max
                ):
                    self._daily_remaining = seen
            if remaining is not None:
                self._remaining = int(remaining)
                # Requests still in flight (other than this one) will be counted against it.
                others = max(0, self._in_flight - 1)
                self._server_budget = self._remaining - others
                if self._server_budget <= 0 and self._remaining < self._max:
                    # Someone else shares the budget: give the window one slot's time to free up.
                    self._hold_until = max(self._hold_until, self._clock() + self._interval / self._max)

    def hold(self, seconds: float) -> None:
        """Stop every caller from starting a request for ``seconds`` (after a 429)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))
            self._server_budget = 0

    def retry_after_default(self) -> float:
        """Seconds to wait after a 429 without ``Retry-After``: one window."""
        with self._lock:
            return self._interval


_registry: dict[tuple[str, str], RateLimiter] = {}
_registry_lock = threading.Lock()


def get_limiter(base_url: str, location_id: str | None) -> RateLimiter:
    """The process-wide limiter of (base URL, location); created on first use."""
    key = (base_url.rstrip("/"), location_id or "")
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = RateLimiter()
        return limiter


def reset_limiters() -> None:
    """Forget every limiter of this process (tests that restart a server on the same URL)."""
    with _registry_lock:
        _registry.clear()


__all__ = [
    "DEFAULT_DAILY_RESERVE",
    "LimiterSnapshot",
    "RateLimiter",
    "get_limiter",
    "reset_limiters",
]
