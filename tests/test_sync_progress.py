"""Progress lines of long reconciliation runs (:mod:`airflow_provider_contacts.sync.progress`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_provider_contacts.sync.progress import ProgressReporter, format_duration, limiter_rate
from test_sync_live_location import LiveHook, Target, _contact

LOGGER = "airflow_provider_contacts.sync.engine"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter(clock: FakeClock, requests: list[int], interval_s: float = 30.0, rate: float = 10.0) -> ProgressReporter:
    return ProgressReporter(
        logging.getLogger("test.progress"),
        requests=lambda: requests[0],
        rate_limit=lambda: rate,
        interval_s=interval_s,
        clock=clock,
        label="location=L1",
    )


def test_logs_at_most_and_at_least_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock, requests = FakeClock(), [0]
    reporter = _reporter(clock, requests)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        reporter.phase("contacts")  # a phase start always logs
        emitted = []
        for step in range(1, 301):  # a call every second for five minutes
            clock.now += 1.0
            requests[0] += 10
            emitted.append(reporter.tick(step * 100, {"contacts": step * 100, "tasks": 0, "notes": 0}))
    times = [i + 1 for i, line in enumerate(emitted) if line is not None]
    assert times == list(range(30, 301, 30))  # exactly one line per 30 s
    assert len(caplog.records) == 1 + len(times)
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_rare_calls_log_every_time_and_frequent_calls_within_the_interval_never() -> None:
    clock, requests = FakeClock(), [0]
    reporter = _reporter(clock, requests)
    reporter.phase("sweep", total=10)
    clock.now += 29.9
    assert reporter.tick(1) is None
    clock.now += 0.1
    assert reporter.tick(2) is not None
    clock.now += 45
    assert reporter.tick(3) is not None  # late call: logged at once


def test_rate_and_eta() -> None:
    clock, requests = FakeClock(), [0]
    reporter = _reporter(clock, requests, rate=9.6)
    reporter.phase("contacts", total=20_000, per_record=1.0 + 1 / 500 + 1 / 200, records={"contacts": 0})
    clock.now += 30
    requests[0] = 288  # 9.6 requests per second over the interval
    line = reporter.tick(280, {"contacts": 280, "tasks": 40, "notes": 120})
    assert line is not None
    assert "phase=contacts done=280/20000 contacts=280 tasks=40 notes=120 requests=288 rate=9.6/s" in line
    expected = (20_000 - 280) * (1.0 + 1 / 500 + 1 / 200) / 9.6
    assert reporter.eta_s() == pytest.approx(expected)
    assert line.endswith(f"eta={format_duration(expected)}")
    assert format_duration(expected) == "34m29s"  # 19,720 contacts x 1.007 requests at 9.6/s
    # The rate is over the last interval only.
    clock.now += 60
    requests[0] += 120
    assert "rate=2.0/s" in (reporter.tick(400) or "")


def test_unknown_total_says_so() -> None:
    clock, requests = FakeClock(), [0]
    line = _reporter(clock, requests).phase("deletion scan")
    assert "done=0/unknown" in line and line.endswith("eta=unknown")


def test_limiter_rate_follows_the_limiter_and_defaults_to_100_per_10s() -> None:
    from airflow_provider_contacts.hooks.pacing import RateLimiter

    class Hook:
        limiter = RateLimiter(max_requests=100, interval_s=10.0)

    snap = Hook.limiter.snapshot()
    assert limiter_rate(Hook()) == pytest.approx(snap.own_capacity / snap.own_window_s)
    assert 9.0 < limiter_rate(Hook()) <= 10.0
    assert limiter_rate(object()) == 10.0
    assert format_duration(3725) == "1h02m" and format_duration(12) == "12s"


def test_engine_logs_progress_for_each_phase(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hook = LiveHook([_contact(f"c{n:019d}", n) for n in range(1, 6)])
    hook.notes["c0000000000000000001"] = [{"id": "n1", "body": "hello", "dateAdded": "2025-01-01T10:00:00.000Z"}]
    target = Target(tmp_path / "p.sqlite")
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            target.run(hook, progress_interval_s=0, batch_size=2)  # first run: full
            first = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress ")]
            caplog.clear()
            target.run(hook, progress_interval_s=0, batch_size=2)  # incremental: scan and sweep
            second = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress ")]
    finally:
        target.sink.close()
    assert any("phase=contacts done=0/unknown" in line for line in first)
    assert any("phase=contacts done=5/unknown contacts=5 tasks=0 notes=1" in line for line in first)
    assert any("phase=deletion scan done=0/5" in line for line in first)
    assert any("phase=deletion scan done=5/unknown" in line for line in second)
    assert any("phase=sweep done=0/" in line for line in second)
    assert all("location=liveLoc0000000000001" in line and "requests=" in line and "rate=" in line
               for line in first + second)
