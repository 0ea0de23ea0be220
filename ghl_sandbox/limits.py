"""Rate limits per (integration, location), as on HighLevel (ghl-oauth/Authorization.md).

- Burst: a true sliding window. A request is admitted when fewer than ``max`` requests were
  admitted in the last ``window`` seconds; ``X-RateLimit-Remaining`` is what is left of it.
  Rejected requests (429) do not use up the window.
- Daily: a fixed window per UTC calendar day.
Every API response carries ``X-RateLimit-Limit-Daily``, ``X-RateLimit-Daily-Remaining``,
``X-RateLimit-Interval-Milliseconds``, ``X-RateLimit-Max`` and ``X-RateLimit-Remaining``; a 429 also
carries ``Retry-After`` (seconds until a slot frees). A limit switched off (``None``) is reported
with HighLevel's published value (100 per 10 s, 200,000 a day) and a remaining count that never
runs down, so header-driven clients never wait for it.

:meth:`RateLimiter.stats` reports, per key, the requests admitted and rejected and the **peak**:
the most requests admitted in any sliding window of the burst window's length (HighLevel's 10 s
when the burst limit is off), which a client that paces itself right keeps at or under ``max``.
The admin surface shows it under ``limits`` in ``GET /_sandbox/counters``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from .config import parse_rate_limit

DEFAULT_BURST = (100, 10.0)  # what HighLevel publishes; reported in headers when the burst limit is off
DEFAULT_DAILY = 200_000  # likewise for the daily limit


@dataclass
class _Bucket:
    times: deque[float] = field(default_factory=deque)
    day: int = -1
    day_count: int = 0


@dataclass
class _Usage:
    """What one key did since the last :meth:`RateLimiter.reset_stats` (for ``stats()``)."""

    admitted: int = 0
    throttled: int = 0
    peak: int = 0
    first_at: float | None = None
    last_at: float | None = None
    recent: deque[float] = field(default_factory=deque)  # admissions in the last window


@dataclass
class Decision:
    """The outcome of one request against the limits, with the headers to send."""

    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Sliding-window burst limit plus daily limit, per key."""

    def __init__(self, rate_limit: str | None, daily_limit: int | None) -> None:
        self.configure(rate_limit, daily_limit)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._usage: dict[tuple[str, str], _Usage] = {}

    def configure(self, rate_limit: str | None, daily_limit: int | None) -> None:
        """Change the limits (buckets keep their history)."""
        self.burst = parse_rate_limit(rate_limit)
        self.daily = daily_limit

    def reset(self) -> None:
        """Forget all usage."""
        self._buckets.clear()

    def check(self, key: tuple[str, str], now: float | None = None) -> Decision:
        """Admit or reject one request for ``key``; admitted requests are counted."""
        now = time.monotonic() if now is None else now
        day = int(time.time() // 86_400)
        b = self._buckets.setdefault(key, _Bucket())
        if b.day != day:
            b.day, b.day_count = day, 0
        limit, window = self.burst or DEFAULT_BURST
        while b.times and b.times[0] <= now - window:
            b.times.popleft()
        allowed = True
        retry_after = 0.0
        if self.daily is not None and b.day_count >= self.daily:
            allowed = False
            retry_after = (day + 1) * 86_400 - time.time()
        elif self.burst is not None and len(b.times) >= limit:
            allowed = False
            retry_after = b.times[0] + window - now
        if allowed:
            b.times.append(now)
            b.day_count += 1
            if self.burst is None and len(b.times) > limit:
                b.times.popleft()
        self._count(key, now, window, allowed)
        daily = self.daily if self.daily is not None else DEFAULT_DAILY
        headers = {
            "X-RateLimit-Limit-Daily": str(daily),
            "X-RateLimit-Daily-Remaining": str(max(daily - b.day_count, 0) if self.daily is not None else daily),
            "X-RateLimit-Interval-Milliseconds": str(int(window * 1000)),
            "X-RateLimit-Max": str(limit),
            "X-RateLimit-Remaining": str(max(limit - len(b.times), 0) if self.burst is not None else limit),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return Decision(allowed, headers)

    # -- statistics (admin) ------------------------------------------------------------------------
    def _count(self, key: tuple[str, str], now: float, window: float, allowed: bool) -> None:
        u = self._usage.setdefault(key, _Usage())
        if not allowed:
            u.throttled += 1
            return
        u.admitted += 1
        u.first_at = now if u.first_at is None else u.first_at
        u.last_at = now
        u.recent.append(now)
        while u.recent and u.recent[0] <= now - window:
            u.recent.popleft()
        if len(u.recent) > u.peak:
            u.peak = len(u.recent)

    def reset_stats(self) -> None:
        """Zero the statistics of :meth:`stats` (the limits' own history is kept)."""
        self._usage.clear()

    def stats(self) -> list[dict[str, object]]:
        """Per (integration, location) key since the last :meth:`reset_stats`: ``integration_id``,
        ``location_id`` (or company id), ``admitted`` and ``throttled`` (429) requests, ``peak`` (most
        requests admitted in any sliding ``window_s``), ``max`` (the burst budget of that window, the
        published 100 when the burst limit is off), ``active_s`` (first to last admission, seconds)
        and ``rate_per_s`` (admitted / active_s; 0 for a single request)."""
        limit, window = self.burst or DEFAULT_BURST
        out: list[dict[str, object]] = []
        for (integration, location), u in self._usage.items():
            active = (u.last_at - u.first_at) if u.first_at is not None and u.last_at is not None else 0.0
            out.append({
                "integration_id": integration, "location_id": location, "admitted": u.admitted,
                "throttled": u.throttled, "peak": u.peak, "window_s": window, "max": limit,
                "active_s": round(active, 3), "rate_per_s": round(u.admitted / active, 3) if active > 0 else 0.0,
            })
        return out
