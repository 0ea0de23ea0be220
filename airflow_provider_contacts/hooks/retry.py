"""Retry policy of the hook: what is retried, how often, and how long to wait.

One policy for every HTTP call the provider makes: the API calls of both transports
(:mod:`.transport`), the look-ups and resends of exactly-once creates
(:meth:`~.operations.OperationsBase._create_once`), and the OAuth token calls (``auth.py``). Each
call keeps its own :class:`Attempts` (``policy.begin()``), which says after every failure or 429
how long to wait before the next attempt, or that it is time to give up.

* Retried: 429 (after ``Retry-After`` or one rate-limit window), 5xx, connection errors, timeouts
  and broken answers (truncated body, invalid JSON on a 2xx).
* Not retried: other 4xx (a plain 401 - expired or invalid token - is retried once, after a token
  refresh, by the hook; a 401 saying the token lacks a scope or is of the wrong class is not).
* Bounded by ``max_retries`` (failures), ``max_throttled`` (429s) and ``max_elapsed_s`` (total
  time of one call, waits included).
* Waits: exponential backoff with full jitter, ``uniform(0, min(cap_s, base_s * 2**attempt))``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping

#: HTTP statuses that are retried with backoff (besides 429, which has its own rules).
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 523, 524})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and waits of the hook's retries.

    :param max_retries: retries after 5xx / network / broken answers (0 disables them).
    :param max_throttled: retries after 429 answers.
    :param max_elapsed_s: give up when the next wait would end later than this after the first try.
    :param base_s: first backoff ceiling in seconds; doubles each retry.
    :param cap_s: largest backoff ceiling in seconds.
    """

    max_retries: int = 5
    max_throttled: int = 10
    max_elapsed_s: float = 120.0
    base_s: float = 0.25
    cap_s: float = 20.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_throttled < 0:
            raise ValueError("max_retries and max_throttled must be >= 0")
        if self.max_elapsed_s <= 0 or self.base_s <= 0 or self.cap_s <= 0:
            raise ValueError("max_elapsed_s, base_s and cap_s must be > 0")

    def backoff_s(self, attempt: int) -> float:
        """Full-jitter wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        return random.uniform(0, ceiling)

    def begin(self) -> Attempts:
        """The retry bookkeeping of one call starting now."""
        return Attempts(self)


@dataclass
class Attempts:
    """The failures and 429s of one call under a :class:`RetryPolicy` (from ``policy.begin()``).

    After each failed attempt the caller asks how long to wait; ``None`` means give up::

        attempts = policy.begin()
        while True:
            ...
            wait = attempts.failed()  # a 5xx, no answer, a broken body
            # or: wait = attempts.throttled(retry_after_s(headers, default_s))  # a 429
            if wait is None:
                raise ...
            time.sleep(wait)
    """

    policy: RetryPolicy
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    throttles: int = 0

    def failed(self) -> float | None:
        """Count a failure (5xx, no answer, broken answer): the backoff before the next attempt,
        or ``None`` when the retries or the time budget are spent."""
        self.failures += 1
        wait = self.policy.backoff_s(self.failures)
        return wait if self.failures <= self.policy.max_retries and self._fits(wait) else None

    def throttled(self, wait_s: float) -> float | None:
        """Count a 429 whose answer asks for ``wait_s`` seconds: ``wait_s``, or ``None`` when the
        429 retries or the time budget are spent."""
        self.throttles += 1
        return wait_s if self.throttles <= self.policy.max_throttled and self._fits(wait_s) else None

    def _fits(self, wait_s: float) -> bool:
        """Whether waiting ``wait_s`` still ends within ``max_elapsed_s`` of the start."""
        return time.monotonic() - self.started + wait_s <= self.policy.max_elapsed_s


def retry_after_s(headers: Mapping[str, str], default_s: float) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else the rate-limit
    interval header, else ``default_s``. Always at least a few milliseconds, at most 10 minutes."""
    lowered = {k.lower(): v for k, v in headers.items()}
    wait: float | None = None
    raw = lowered.get("retry-after")
    if raw:
        try:
            wait = float(raw)
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
                if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are GMT
                    when = when.replace(tzinfo=timezone.utc)
                wait = (when - datetime.now(timezone.utc)).total_seconds()
            except (TypeError, ValueError):
                wait = None
    if wait is None:
        interval_ms = lowered.get("x-ratelimit-interval-milliseconds")
        try:
            wait = float(interval_ms) / 1000.0 if interval_ms else None
        except ValueError:
            wait = None
    if wait is None:
        wait = default_s
    return min(max(wait, 0.005), 600.0)


__all__ = ["RETRYABLE_STATUSES", "Attempts", "RetryPolicy", "retry_after_s"]
