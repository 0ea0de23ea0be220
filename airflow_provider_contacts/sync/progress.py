"""Progress lines for long reconciliation runs (one INFO line at most every ``interval_s``).

A first load of 20,000 contacts at HighLevel's 100 requests / 10 s runs for over half an hour;
:class:`ProgressReporter` logs, from the engine's loops, one line at each phase start and then at
most (and, when called often enough, at least) once per ``interval_s``::

    progress location=loc1 phase=contacts done=4000/unknown contacts=4000 tasks=812 notes=3950
    requests=4120 rate=9.6/s eta=unknown

``rate`` is the requests per second since the previous line; ``eta`` is the records left times
the minimal requests per record, divided by the limiter's request rate (``unknown`` when the
phase's total is not known). No token or record content is ever logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

__all__ = ["ProgressReporter", "format_duration", "limiter_rate"]

#: HighLevel's documented burst budget (requests per second) when the hook has no limiter.
DEFAULT_RATE = 100 / 10.0


def limiter_rate(hook: object) -> float:
    """Requests per second the hook's limiter lets through on its own window (its current view of
    the limit, from the last rate-limit headers); HighLevel's 100 / 10 s when it has none."""
    limiter = getattr(hook, "limiter", None)
    snapshot = getattr(limiter, "snapshot", None)
    if snapshot is None:
        return DEFAULT_RATE
    try:
        snap = snapshot()
        rate = snap.own_capacity / snap.own_window_s
    except Exception:  # a stub or a limiter without the usual fields: the documented default
        return DEFAULT_RATE
    return rate if rate > 0 else DEFAULT_RATE


def format_duration(seconds: float) -> str:
    """``1h02m``, ``4m05s``, ``12s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressReporter:
    """Rate-limited progress lines for one run.

    :param logger: where the lines go (INFO).
    :param requests: returns the requests sent so far this run.
    :param rate_limit: returns the limiter's rate in requests per second.
    :param interval_s: minimal time between two lines (phase starts excepted).
    :param clock: monotonic seconds (injectable for tests).
    :param label: prefix naming the run (e.g. ``location=...``).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        requests: Callable[[], int],
        rate_limit: Callable[[], float] = lambda: DEFAULT_RATE,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
    ) -> None:
        self.logger = logger
        self._requests = requests
        self._rate_limit = rate_limit
        self.interval_s = interval_s
        self.clock = clock
        self.label = label
        self.phase_name = ""
        self.total: int | None = None
        self.per_record = 0.0
        self.done = 0
        self.records: dict[str, int] = {}
        self._last_at = clock()
        self._last_requests = requests()
        self.lines = 0

    def phase(self, name: str, *, total: int | None = None, per_record: float = 0.0,
              records: Mapping[str, int] | None = None) -> str:
        """Start a phase (always logs a line). ``per_record``: minimal requests per record left."""
        self.phase_name = name
        self.total = total
        self.per_record = per_record
        self.done = 0
        if records is not None:
            self.records = dict(records)
        return self._emit(self.clock())

    def tick(self, done: int, records: Mapping[str, int] | None = None) -> str | None:
        """Record progress (``done`` records of the phase); log when ``interval_s`` has passed since
        the last line. Returns the line logged, if any."""
        self.done = done
        if records is not None:
            self.records = dict(records)
        now = self.clock()
        if now - self._last_at < self.interval_s:
            return None
        return self._emit(now)

    # -- the line --------------------------------------------------------------------------
    def eta_s(self) -> float | None:
        """Seconds left in the phase at the limiter's rate, or ``None`` when the total is unknown."""
        if self.total is None:
            return None
        left = max(0, self.total - self.done)
        rate = self._rate_limit() or DEFAULT_RATE
        return left * self.per_record / rate

    def _emit(self, now: float) -> str:
        requests = self._requests()
        elapsed = now - self._last_at
        rate = f"{(requests - self._last_requests) / elapsed:.1f}/s" if elapsed > 0 else "n/a"
        eta = self.eta_s()
        total = "unknown" if self.total is None else str(self.total)
        counts = " ".join(f"{name}={count}" for name, count in self.records.items())
        line = (
            f"progress {self.label + ' ' if self.label else ''}phase={self.phase_name} "
            f"done={self.done}/{total} {counts + ' ' if counts else ''}requests={requests} rate={rate} "
            f"eta={'unknown' if eta is None else format_duration(eta)}"
        )
        self.logger.info("%s", line)
        self._last_at = now
        self._last_requests = requests
        self.lines += 1
        return line
