"""The limiter learns HighLevel's budget from headers and never lets a process exceed it."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_contacts.errors import GHLDailyLimitError
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.hooks.pacing import RateLimiter, get_limiter
from airflow_provider_contacts.hooks.retry import RetryPolicy, retry_after_s


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def _headers(max_: int = 10, interval_ms: int = 1000, remaining: int = 10, daily: int = 5000) -> dict[str, str]:
    return {
        "X-RateLimit-Max": str(max_),
        "x-ratelimit-interval-milliseconds": str(interval_ms),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Daily-Remaining": str(daily),
        "X-RateLimit-Limit-Daily": "200000",
    }


def test_budget_is_learned_from_headers_and_defaults_apply_before() -> None:
    limiter = RateLimiter()
    before = limiter.snapshot()
    assert (before.max_requests, before.interval_s, before.daily_limit) == (100, 10.0, 200_000)
    limiter.update_from_headers(_headers(max_=20, interval_ms=2000, remaining=20, daily=1234))
    after = limiter.snapshot()
    assert (after.max_requests, after.interval_s, after.daily_remaining) == (20, 2.0, 1234)
    assert after.own_capacity == 19 and after.own_window_s > 2.0


def test_own_window_blocks_when_full_and_frees_after_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(max_requests=10, interval_s=1.0, clock=clock)
    for _ in range(9):  # capacity: 98 % of 10
        assert limiter._try_take(0) == 0  # noqa: SLF001
    wait = limiter._try_take(0)  # noqa: SLF001
    assert 1.0 < wait <= 1.05
    clock.now += wait
    assert limiter._try_take(0) == 0  # noqa: SLF001


def test_unused_server_budget_is_spent_but_a_shared_budget_holds_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(max_requests=10, interval_s=1.0, clock=clock)
    for _ in range(9):
        limiter._try_take(0)  # noqa: SLF001
        limiter.release()
    limiter.update_from_headers(_headers(remaining=10))  # the server counts nothing (e.g. limit lifted)
    assert limiter._try_take(0) == 0  # noqa: SLF001
    limiter.update_from_headers(_headers(remaining=0))  # others used the window up
    assert limiter._try_take(0) > 0  # noqa: SLF001


def test_daily_reserve_stops_before_the_limit() -> None:
    limiter = RateLimiter()
    limiter.update_from_headers(_headers(daily=12))
    limiter.acquire(daily_reserve=10)
    limiter.acquire(daily_reserve=10)
    with pytest.raises(GHLDailyLimitError, match="10 of 200000 requests left today and 10 are kept in reserve"):
        limiter.acquire(daily_reserve=10)


def test_a_429_holds_every_thread() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.hold(2.5)
    assert limiter._try_take(0) == pytest.approx(2.5)  # noqa: SLF001
    clock.now += 2.5
    assert limiter._try_take(0) == 0  # noqa: SLF001


def test_retry_after_is_honoured_in_seconds_or_from_the_interval() -> None:
    assert retry_after_s({"Retry-After": "3"}, 9.0) == 3.0
    assert retry_after_s({"X-RateLimit-Interval-Milliseconds": "1500"}, 9.0) == 1.5
    assert retry_after_s({}, 9.0) == 9.0
    policy = RetryPolicy(base_s=1.0, cap_s=4.0)
    assert all(0 <= policy.backoff_s(n) <= min(4.0, 2 ** (n - 1)) for n in range(1, 8) for _ in range(20))


def test_one_retry_policy_counts_failures_and_429s_of_each_call() -> None:
    policy = RetryPolicy(max_retries=2, max_throttled=3, max_elapsed_s=5.0, base_s=0.01, cap_s=0.01)
    attempts = policy.begin()
    assert attempts.failed() is not None and attempts.failed() is not None and attempts.failed() is None
    assert attempts.throttled(0.5) == 0.5 and attempts.throttled(0.5) == 0.5 and attempts.throttled(0.5) == 0.5
    assert attempts.throttled(0.5) is None  # the fourth 429
    assert (attempts.failures, attempts.throttles) == (3, 4)
    assert policy.begin().throttled(6.0) is None  # a wait past max_elapsed_s gives up at once


def test_the_oauth_token_calls_use_the_hooks_retry_policy(sandbox, monkeypatch, tmp_path) -> None:
    from test_auth_oauth import install_app, oauth_conn

    policy = RetryPolicy(max_retries=2, base_s=0.01)
    conn_id = oauth_conn(sandbox, install_app(sandbox), monkeypatch, rotation_store=f"file:{tmp_path}/t.json")
    assert ContactsHook(conn_id, retry=policy).token_source.retry is policy


def test_retry_after_as_an_http_date_with_or_without_a_zone() -> None:
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    for zone in ("GMT", "-0000"):  # "-0000" parses to a naive datetime
        wait = retry_after_s({"Retry-After": later.strftime(f"%a, %d %b %Y %H:%M:%S {zone}")}, 9.0)
        assert 25 < wait <= 30


def test_threads_sharing_a_limiter_never_exceed_its_window() -> None:
    limiter = RateLimiter(max_requests=10, interval_s=0.2)
    starts: list[float] = []
    lock = threading.Lock()

    def take(_: int) -> None:
        limiter.acquire(0)
        with lock:
            starts.append(time.monotonic())
        limiter.release()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(take, range(40)))

    starts.sort()
    assert len(starts) == 40
    for i, start in enumerate(starts):
        in_window = [s for s in starts[i:] if s - start < 0.2]
        assert len(in_window) <= 10


def test_async_acquire_waits_without_blocking_the_loop() -> None:
    limiter = RateLimiter(max_requests=4, interval_s=0.2)

    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        for _ in range(6):
            await limiter.aacquire(0)
            limiter.release()
        task.cancel()
        return ticks, limiter.snapshot().in_flight

    ticks, in_flight = asyncio.run(main())
    assert ticks >= 5 and in_flight == 0  # the loop kept running while the limiter waited


def test_one_limiter_per_base_url_and_location_shared_by_hooks(sandbox, ghl_conn) -> None:
    first, second = ContactsHook(ghl_conn), ContactsHook(ghl_conn)
    other_location = ContactsHook(ghl_conn, location_id="anotherLocation")
    assert first.limiter is second.limiter is get_limiter(sandbox.base_url + "/", sandbox.location_id)
    assert other_location.limiter is not first.limiter
    first.get_contacts(limit=1)
    assert second.limiter.snapshot().daily_remaining is not None
