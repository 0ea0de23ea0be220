"""Progress lines for long reconciliation runs (one INFO line at most every ``interval_s``).

A first load of 20,000 contacts at HighLevel's 100 requests / 10 s runs for over half an hour;
:class:`ProgressReporter` logs, from the engine's loops, one line at each phase start and then at
most (and, when called often enough, at least) once per ``interval_s``::

    progress location=loc1 phase=contacts done=4000/20000 contacts=4000 tasks=812 notes=3950
    requests=4120 rate=9.6/s limit=10.0/s eta=26m51s

``done`` is the records of the phase done so far over the phase's total: in the contacts phase
the ``total`` of HighLevel's search answer (``POST /contacts/search``; the engine hands it over
with :meth:`ProgressReporter.set_total` once the first page is read), ``unknown`` before that or
when the answer carries none. ``rate`` is the requests per second since the previous line,
``limit`` the limiter's request rate (its view of HighLevel's 100 requests per 10 s per location,
updated from the ``X-RateLimit-*`` headers); ``eta`` is the records left times the minimal
requests per record, divided by ``limit``, or by the phase's own average request rate when the
run is slower than the limit allows (measured after 60 s and 20 requests of the phase);
``unknown`` while the total is unknown. No token or record content is ever logged.

The engine calls :meth:`ProgressReporter.tick` after each committed batch, but one batch of a
first load (200 contacts: 200 notes requests at 10 requests/s) alone takes about 20 s, and a
request waiting out a 429 or a retry longer still. Between :meth:`ProgressReporter.start` and
:meth:`ProgressReporter.stop` a daemon thread therefore writes the line itself whenever
80 % of ``interval_s`` passes without one (with the counts of the last committed batch and the
requests sent so far), so the gap between two lines stays within ``interval_s`` even when the
thread is woken a few seconds late on a busy machine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["ProgressReporter", "format_duration", "hook_stat", "limiter_rate"]

#: HighLevel's documented burst budget (requests per second) when the hook has no limiter.
DEFAULT_RATE = 100 / 10.0


def hook_stat(hook: object, name: str) -> int:
    """The hook's ``stats`` counter ``name`` (``requests``, ``throttled``, ``retries``); 0 without stats."""
    stats = getattr(hook, "stats", None)
    if stats is None:
        return 0
    value = stats.get(name, 0) if isinstance(stats, Mapping) else getattr(stats, name, 0)
    return int(value or 0)


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
        self._phase_at = self._last_at
        self._phase_requests = self._last_requests
        self._lock = threading.RLock()
        self._stopping: threading.Event | None = None
        self._thread: threading.Thread | None = None

    # -- heartbeat ---------------------------------------------------------------------------
    def start(self) -> ProgressReporter:
        """Start the heartbeat thread (see the module docstring); a no-op when ``interval_s`` is
        not positive or it runs already. Always pair with :meth:`stop` (``try``/``finally``)."""
        if self.interval_s <= 0 or self._thread is not None:
            return self
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(self._stopping,), name="ghl-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the heartbeat thread (waits for it; idempotent)."""
        thread, stopping = self._thread, self._stopping
        self._thread = self._stopping = None
        if thread is not None and stopping is not None:
            stopping.set()
            thread.join(timeout=5)

    def __enter__(self) -> ProgressReporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    #: The heartbeat writes once this share of ``interval_s`` has passed without a line: a thread
    #: woken late on a busy machine (CPU, the GIL, a slow log handler) still keeps the gap within
    #: ``interval_s`` (0.9 left gaps of up to 31.8 s at a load average of 30 on 2 cores).
    HEARTBEAT_SHARE = 0.8

    def _beat(self, stopping: threading.Event) -> None:
        every = self.interval_s * self.HEARTBEAT_SHARE
        while True:
            with self._lock:
                due = self._last_at + every - self.clock()
            if stopping.wait(max(0.05, due)):
                return
            with self._lock:
                now = self.clock()
                if now - self._last_at >= every:
                    try:
                        self._emit(now)
                    except Exception:  # a callback failing must not kill the run's thread  # noqa: BLE001
                        self._last_at = now
                        self.logger.debug("progress heartbeat line failed", exc_info=True)

    def phase(self, name: str, *, total: int | None = None, per_record: float = 0.0,
              records: Mapping[str, int] | None = None) -> str:
        """Start a phase (always logs a line). ``per_record``: minimal requests per record left."""
        with self._lock:
            self.phase_name = name
            self.total = total
            self.per_record = per_record
            self.done = 0
            if records is not None:
                self.records = dict(records)
            self._phase_at = self.clock()
            self._phase_requests = self._requests()
            return self._emit(self._phase_at)

    def set_total(self, total: int | None) -> None:
        """The current phase's total, learnt after its start (e.g. the search answer's ``total``);
        no line is logged (the next :meth:`tick` shows it)."""
        with self._lock:
            self.total = None if total is None else max(0, int(total))

    def tick(self, done: int, records: Mapping[str, int] | None = None) -> str | None:
        """Record progress (``done`` records of the phase); log when ``interval_s`` has passed since
        the last line. Returns the line logged, if any."""
        with self._lock:
            self.done = done
            if records is not None:
                self.records = dict(records)
            now = self.clock()
            if now - self._last_at < self.interval_s:
                return None
            return self._emit(now)

    # -- the line --------------------------------------------------------------------------
    #: The phase's own request rate counts once it has run this long with this many requests.
    MEASURED_AFTER_S = 60.0
    MEASURED_AFTER_REQUESTS = 20

    def eta_rate(self) -> float:
        """Requests per second the time left is estimated at: the limiter's rate, or the phase's
        average rate so far when that is slower (latency, a slow target or CPU bound the run below
        the limit) and measured over at least :attr:`MEASURED_AFTER_S` seconds and
        :attr:`MEASURED_AFTER_REQUESTS` requests."""
        rate = self._rate_limit() or DEFAULT_RATE
        elapsed = self.clock() - self._phase_at
        sent = self._requests() - self._phase_requests
        if elapsed >= self.MEASURED_AFTER_S and sent >= self.MEASURED_AFTER_REQUESTS:
            rate = min(rate, sent / elapsed)
        return rate

    def eta_s(self) -> float | None:
        """Seconds left in the phase: records left x minimal requests per record / :meth:`eta_rate`;
        ``None`` when the total is unknown."""
        if self.total is None:
            return None
        left = max(0, self.total - self.done)
        return left * self.per_record / self.eta_rate()

    def _emit(self, now: float) -> str:
        requests = self._requests()
        elapsed = now - self._last_at
        rate = f"{(requests - self._last_requests) / elapsed:.1f}/s" if elapsed > 0 else "n/a"
        limit = self._rate_limit() or DEFAULT_RATE
        eta = self.eta_s()
        total = "unknown" if self.total is None else str(self.total)
        counts = " ".join(f"{name}={count}" for name, count in self.records.items())
        line = (
            f"progress {self.label + ' ' if self.label else ''}phase={self.phase_name} "
            f"done={self.done}/{total} {counts + ' ' if counts else ''}requests={requests} rate={rate} "
            f"limit={limit:.1f}/s eta={'unknown' if eta is None else format_duration(eta)}"
        )
        self.logger.info("%s", line)
        self._last_at = now
        self._last_requests = requests
        self.lines += 1
        return line
