"""The rate limit shared across processes through Redis (hooks/shared_limits.py).

Several processes calling one location through one Redis never go past the burst window or the
daily budget (the sandbox counts every request and every 429 per (integration, location), with a
compressed limit: 20 requests per 2 s); the limiter falls back to the in-process one, with one
warning, when Redis is down; no token or secret is ever written to Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_contacts.errors import GHLConfigError
from airflow_provider_contacts.hooks.pacing import reset_limiters
from airflow_provider_contacts.hooks.shared_limits import (
    SharedRateLimiter,
    app_key,
    limit_scope,
    reset_shared_limiters,
)

REDIS_CONN_ID = "ghl_test_rate_limit_redis"

#: One worker process: ``threads`` threads (or coroutines, mode "async") each call get_contact
#: ``per_thread`` times (0: until the daily budget stops them); prints what it did as JSON.
CHILD = r"""
import asyncio, json, sys, threading
from airflow_provider_contacts.errors import GHLDailyLimitError
from airflow_provider_contacts.hooks.contacts import GHLContactsHook

mode, threads, per_thread, ids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
hook = GHLContactsHook("ghl_default", daily_reserve=int(sys.argv[5]))
hook.settings  # read the connection, then wait for the word: every worker starts at once
import airflow.providers.redis.hooks.redis  # noqa: F401 - imported before the clock starts
print("ready", flush=True)
sys.stdin.readline()
done, stops, lock = [0], [0], threading.Lock()

def one(i, j):
    return ids[(i * 7 + j) % len(ids)]

def work(i):
    j = 0
    try:
        while per_thread == 0 or j < per_thread:
            hook.get_contact(one(i, j))
            j += 1
            with lock:
                done[0] += 1
    except GHLDailyLimitError:
        with lock:
            stops[0] += 1

async def awork(i):
    j = 0
    try:
        while per_thread == 0 or j < per_thread:
            await hook.aget_contact(one(i, j))
            j += 1
            done[0] += 1
    except GHLDailyLimitError:
        stops[0] += 1

if mode == "async":
    async def main():
        await asyncio.gather(*(awork(i) for i in range(threads)))
    asyncio.run(main())
else:
    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool: t.start()
    for t in pool: t.join()
lim = hook.limiter
print(json.dumps({"done": done[0], "daily_stops": stops[0], "throttled": hook.stats.throttled,
                  "shared": getattr(lim, "shared_admissions", None), "local": getattr(lim, "local_admissions", None)}))
"""


def _redis_conn_json(url: str) -> str:
    parts = urlsplit(url)
    db = int((parts.path or "/0").strip("/") or 0)
    return json.dumps({"conn_type": "redis", "host": parts.hostname or "127.0.0.1", "port": parts.port or 6379,
                       **({"password": parts.password} if parts.password else {}), "extra": {"db": db}})


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("GHL_TEST_REDIS_URL")
    if not url:
        pytest.skip("GHL_TEST_REDIS_URL is not set: the shared rate limit tests need a Redis server (.ci/run sets it)")
    return url


@pytest.fixture
def key_prefix(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis connection for the limiter and a key prefix of this test's own (deleted after)."""
    import redis

    monkeypatch.setenv(f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}", _redis_conn_json(redis_url))
    prefix = f"ghl-test-rl-{uuid.uuid4().hex[:10]}"
    reset_shared_limiters()
    reset_limiters()
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
    reset_shared_limiters()
    reset_limiters()


def _redis_dump(redis_url: str, prefix: str) -> str:
    """Every key under ``prefix`` with its value, as one text."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    parts = []
    for key in client.scan_iter(match=f"{prefix}:*"):
        kind = client.type(key)
        value: Any = {"string": client.get, "hash": client.hgetall, "zset": lambda k: client.zrange(k, 0, -1),
                      "list": lambda k: client.lrange(k, 0, -1), "set": client.smembers}[kind](key)
        parts.append(f"{key} {kind} {value}")
    client.close()
    return "\n".join(parts)


def _run_workers(specs: list[tuple[str, int, int]], ids: list[str], env: dict[str, str],
                 daily_reserve: int = 1000) -> tuple[list[dict[str, Any]], float]:
    """Run one child process per ``(mode, threads, per_thread)``, started together once all have
    imported Airflow; their JSON reports and the seconds from the start to the last one's end."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, mode, str(n), str(per), ",".join(ids), str(daily_reserve)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for mode, n, per in specs]
    try:
        for proc in procs:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            while line and line.strip() != "ready":
                line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, proc.stderr.read()[-3000:]  # type: ignore[union-attr]
        started = time.monotonic()
        reports = []
        for proc in procs:
            out, err = proc.communicate("go\n", timeout=180)
            assert proc.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports, time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def _child_env(sandbox: Any, prefix: str, **extra: Any) -> dict[str, str]:
    conn = sandbox.conn_json(rate_limit_redis_conn_id=REDIS_CONN_ID, rate_limit_key_prefix=prefix, **extra)
    return {**os.environ, "AIRFLOW_CONN_GHL_DEFAULT": conn}


def _usage(sandbox: Any, location_id: str) -> dict[str, Any]:
    rows = [r for r in sandbox.admin.counters()["limits"] if r["location_id"] == location_id]
    assert len(rows) == 1, rows
    return rows[0]


def test_three_processes_share_one_window_without_a_429(sandbox_factory: Any, redis_url: str, key_prefix: str) -> None:
    """3 processes x 4 callers (one process async) on one location through one Redis: the sandbox
    (a strict sliding window of 20 requests per 2 s) rejects none, and the window is used."""
    sb = sandbox_factory(contacts=30, rate_limit="20/2")
    ids = [c["id"] for c in sb.truth()["contacts"]]
    reports, _ = _run_workers([("sync", 4, 6), ("sync", 4, 6), ("async", 4, 6)], ids, _child_env(sb, key_prefix))
    usage = _usage(sb, sb.location_id)
    counters = sb.admin.counters()
    assert [r["done"] for r in reports] == [24, 24, 24]
    # Unshared, the 3 processes would each send 19 per 2.06 s: ~3 times the limit, some 35 429s a
    # window. Shared, none on an idle machine; the window leaves 60 ms for a request to travel from
    # Redis to the sandbox, so a machine too busy to schedule a process for that long (the suite's
    # other workers beside it) sees a few, each retried.
    assert counters["status_429"] == usage["throttled"] <= 6, (counters, reports)
    assert sum(r["throttled"] for r in reports) == usage["throttled"], reports
    # Every request (a 429's resend included) went through Redis, none through the fall-back.
    assert [r["shared"] for r in reports] == [r["done"] + r["throttled"] for r in reports], reports
    assert all(r["local"] == 0 for r in reports), reports
    assert usage["admitted"] == 72 and usage["peak"] <= 20 and usage["max"] == 20
    # Paced, not stalled: 72 requests at 19 per 2.06 s need about 3 windows after the first burst.
    assert usage["peak"] >= 15, usage
    dump = _redis_dump(redis_url, key_prefix)
    assert sb.token not in dump and "Bearer" not in dump, dump
    assert limit_scope(sb.base_url, "private", sb.location_id) in dump


def test_the_daily_budget_is_shared_and_learns_the_servers_count(
    sandbox_factory: Any, redis_url: str, key_prefix: str
) -> None:
    """A daily limit of 60 with a reserve of 10 and 8 requests already spent by another client:
    3 processes stop together at the server's 50th request, each with GHLDailyLimitError."""
    sb = sandbox_factory(contacts=10, daily_limit=60)
    ids = [c["id"] for c in sb.truth()["contacts"]]
    with sb.client() as client:  # another consumer of the same app and location, not on our Redis
        for contact_id in ids[:8]:
            assert client.get(f"/contacts/{contact_id}").status_code == 200
    reports, _ = _run_workers([("sync", 2, 0)] * 3, ids, _child_env(sb, key_prefix), daily_reserve=10)
    usage = _usage(sb, sb.location_id)
    assert sb.admin.counters()["status_429"] == 0
    assert all(r["daily_stops"] == 2 for r in reports), reports
    # The first answers (at most one per caller in flight) come before anyone knows the limit.
    assert 50 - 6 <= usage["admitted"] <= 50, (usage, reports)
    assert sum(r["done"] for r in reports) == usage["admitted"] - 8


def test_falls_back_to_the_process_limiter_with_one_warning_when_redis_is_down(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DOWN_REDIS", json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": port}))
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json(rate_limit_redis_conn_id="ghl_down_redis"))
    reset_shared_limiters()
    reset_limiters()
    ids = [c["id"] for c in sandbox.truth()["contacts"][:5]]
    handler = logging.Handler(logging.INFO)
    try:
        records: list[logging.LogRecord] = []
        handler.emit = records.append  # type: ignore[method-assign]
        module_log = logging.getLogger("airflow_provider_contacts.hooks.shared_limits")
        module_log.addHandler(handler)  # on the module's logger: Airflow may reconfigure the root's handlers
        module_log.setLevel(logging.INFO)
        hook = GHLContactsHook("ghl_default")
        for contact_id in ids:
            assert hook.get_contact(contact_id).id == contact_id
        contact = asyncio.run(hook.aget_contact(ids[0]))
        assert contact.id == ids[0]
        limiter = hook.limiter
        assert isinstance(limiter, SharedRateLimiter)
        assert limiter.local_admissions == 6 and limiter.shared_admissions == 0 and not limiter.shared
        warnings = [r for r in records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in records]
        message = warnings[0].getMessage()
        assert "ghl_down_redis" in message and "falling back" in message and sandbox.token not in message
    finally:
        logging.getLogger("airflow_provider_contacts.hooks.shared_limits").removeHandler(handler)
        reset_shared_limiters()
        reset_limiters()


def test_an_oauth_connection_keys_by_app_and_keeps_its_secrets_out_of_redis(
    sandbox: Any, redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

    app = sandbox.admin.install_oauth_app()
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.oauth_conn_json(
        app, rotation_store=f"file:{tmp_path / 'tokens.json'}", rate_limit_redis_conn_id=REDIS_CONN_ID,
        rate_limit_key_prefix=key_prefix))
    hook = GHLContactsHook("ghl_default")
    ids = [c["id"] for c in sandbox.truth()["contacts"][:3]]
    for contact_id in ids:
        hook.get_contact(contact_id)
    limiter = hook.limiter
    assert isinstance(limiter, SharedRateLimiter) and limiter.shared_admissions == 3
    dump = _redis_dump(redis_url, key_prefix)
    tokens = json.loads((tmp_path / "tokens.json").read_text())
    secrets = [app["client_secret"], app["refresh_token"], app.get("access_token") or "", *_token_values(tokens)]
    leaked = [s for s in secrets if len(s) >= 12 and s in dump]
    assert not leaked, "a secret was written to Redis"
    # The bucket is the app's (its app_id where the connection names it, else its client id), per location.
    assert app_key(hook.settings) in (app.get("app_id"), app["client_id"])
    assert f"|{app_key(hook.settings)}|{sandbox.location_id}" in dump


def _token_values(value: Any) -> list[str]:
    """Every string stored under a key naming a token or secret, at any depth."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in
                ([v] if isinstance(v, str) and ("token" in k.lower() or "secret" in k.lower()) else _token_values(v))]
    if isinstance(value, list):
        return [s for v in value for s in _token_values(v)]
    return []


def test_scope_and_settings() -> None:
    assert limit_scope("https://services.leadconnectorhq.com", "app-1", "loc {x}") == (
        "services.leadconnectorhq.com|app-1|loc__x_"
    )
    assert limit_scope("http://127.0.0.1:8765", "private", None) == "127.0.0.1:8765|private|"
    from airflow_provider_contacts.hooks.settings import ConnectionSettings

    class Conn:
        host, port, schema, password = "http://127.0.0.1:1", None, None, "tok"
        extra_dejson = {"location_id": "loc", "rate_limit_redis_conn_id": " redis_default "}

    settings = ConnectionSettings.from_connection(Conn(), "c")
    assert settings.rate_limit_redis_conn_id == "redis_default" and settings.rate_limit_key_prefix == "ghl:ratelimit"
    Conn.extra_dejson = {"rate_limit_redis_conn_id": 5}
    with pytest.raises(GHLConfigError, match="rate_limit_redis_conn_id"):
        ConnectionSettings.from_connection(Conn(), "c")
