"""One rate limit per (app, location) shared by every process and machine, through Redis.

HighLevel counts requests per Marketplace app (client) per location: a burst budget (100 requests
per 10 s) and a daily budget (200,000 per day) (ghl-oauth/Authorization.md, "What are current rate
limits for API 2.0?"). The in-process :class:`~airflow_provider_contacts.hooks.pacing.RateLimiter`
only knows the requests of its own process; two Celery workers (or Kubernetes pods) syncing one
location learn of each other through 429s and ``X-RateLimit-Remaining``. When the ``ghl``
connection names an Airflow Redis connection (extra ``rate_limit_redis_conn_id``, read with the
redis provider's :class:`~airflow.providers.redis.hooks.redis.RedisHook`), every process draws
from :class:`SharedRateLimiter` instead:

* **burst**: a sliding-window log per (base URL, app, location) in a Redis sorted set, checked and
  appended atomically by one Lua script, timed by the Redis server's clock (``TIME``; the
  machines' clocks may disagree). It admits ``utilisation x max`` requests per ``interval x (1 +
  pad) + slack`` (98 per 10.22 s by default), the same padded window as the in-process limiter, so
  a server counting in a strict sliding window never sees more than ``max``;
* **daily budget**: one counter per (base URL, app, location) and UTC day, raised to the server's
  own count whenever an answer's ``X-RateLimit-Daily-Remaining`` says more was used (another
  deployment, a webhook handler); a request that would eat into the caller's ``daily_reserve``
  raises :class:`~airflow_provider_contacts.errors.GHLDailyLimitError`, in whichever process;
* **limits learnt from the headers** (``X-RateLimit-Max``, ``-Interval-Milliseconds``,
  ``-Limit-Daily``) are shared too, so a process that starts late paces by them from its first
  request;
* **429**: ``Retry-After`` holds every process of that (app, location), not only the one that met it.

If Redis cannot be reached (not installed, connection missing, server down or too slow), the
limiter logs **one** warning per Redis connection and process and falls back to the in-process
limiter plus the response headers (it never fails the task for it); it tries Redis again after
:data:`REDIS_RETRY_AFTER_S`. The in-process limiter also counts every request the shared one
admitted, so a fall-back starts from what was really sent.

Keys (``<prefix>`` is the extra ``rate_limit_key_prefix``, default ``ghl:ratelimit``; the braces
keep a key set in one Redis Cluster hash slot)::

    <prefix>:{<host[:port]>|<app>|<location>}:window   sorted set: admission times (ms), expires
    <prefix>:{<host[:port]>|<app>|<location>}:daily    hash: day (days since epoch, UTC), used
    <prefix>:{<host[:port]>|<app>|<location>}:hold     string: hold-until (ms, Redis clock)
    <prefix>:{<host[:port]>|<app>|<location>}:conf     hash: max, interval_ms, daily_limit

``<app>`` is the connection's ``app_id`` extra, else its OAuth ``client_id``, else ``private``
(private integration tokens of one location share a bucket: conservative). No token, secret or
Authorization header is ever written to Redis: only times, counts and the limits.

Select it with :func:`limiter_for` (what :class:`~airflow_provider_contacts.hooks.contacts.GHLContactsHook`
does). Times are in seconds unless named ``_ms``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_contacts.errors import GHLDailyLimitError
from airflow_provider_contacts.hooks.pacing import (
    DEFAULT_DAILY_RESERVE,
    WINDOW_PAD,
    WINDOW_SLACK_S,
    LimiterSnapshot,
    RateLimiter,
    _header,
    get_limiter,
)

log = logging.getLogger(__name__)

#: Default prefix of every key (extra ``rate_limit_key_prefix``).
DEFAULT_KEY_PREFIX = "ghl:ratelimit"
#: Seconds the limiter uses the in-process fall-back after a Redis failure before trying Redis again.
REDIS_RETRY_AFTER_S = 30.0
#: Seconds to wait for Redis (connect and each command) before falling back.
REDIS_SOCKET_TIMEOUT_S = 2.0
#: Longest single sleep between two tries for a slot (a hold or a full window is re-checked then).
MAX_WAIT_S = 1.0
#: Learnt limits stay in Redis this long after the last answer that reported them (ms).
CONF_TTL_MS = 86_400_000

# KEYS: window, daily, hold, conf
# ARGV: member, max, interval_ms, daily_limit, utilisation, pad, slack_ms, reserve
# -> {1, used_today, daily_limit} admitted | {0, wait_ms, 0} wait | {-1, used_today, daily_limit} daily
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[3]) or '0')
if hold > now then return {0, hold - now, 0} end
local conf = redis.call('HMGET', KEYS[4], 'max', 'interval_ms', 'daily_limit')
local max = tonumber(conf[1]) or tonumber(ARGV[2])
local interval = tonumber(conf[2]) or tonumber(ARGV[3])
local daily_limit = tonumber(conf[3]) or tonumber(ARGV[4])
local capacity = math.max(1, math.floor(max * tonumber(ARGV[5])))
local window = math.floor(interval * (1 + tonumber(ARGV[6])) + tonumber(ARGV[7]))
local day = math.floor(now / 86400000)
local d = redis.call('HMGET', KEYS[2], 'day', 'used')
local used = 0
if tonumber(d[1]) == day then used = tonumber(d[2]) or 0 end
if daily_limit - used <= tonumber(ARGV[8]) then return {-1, used, daily_limit} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= capacity then
  local freeing = redis.call('ZRANGE', KEYS[1], n - capacity, n - capacity, 'WITHSCORES')
  return {0, math.max(1, tonumber(freeing[2]) + window - now), 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], window + 1000)
if tonumber(d[1]) == day then
  used = redis.call('HINCRBY', KEYS[2], 'used', 1)
else
  redis.call('HSET', KEYS[2], 'day', day, 'used', 1)
  used = 1
end
redis.call('PEXPIRE', KEYS[2], 2 * 86400000)
return {1, used, daily_limit}
"""

# KEYS: daily, conf; ARGV: max, interval_ms, daily_limit, used_by_server ('' = unknown), conf_ttl_ms
# -> used today after the update
_OBSERVE = """
local t = redis.call('TIME')
local day = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 86400000)
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], 'max', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'interval_ms', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'daily_limit', ARGV[3]) end
if ARGV[1] ~= '' or ARGV[2] ~= '' or ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5])) end
local d = redis.call('HMGET', KEYS[1], 'day', 'used')
local used = 0
if tonumber(d[1]) == day then used = tonumber(d[2]) or 0 end
if ARGV[4] ~= '' and tonumber(ARGV[4]) > used then
  used = tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'day', day, 'used', used)
  redis.call('PEXPIRE', KEYS[1], 2 * 86400000)
end
return used
"""

# KEYS: hold; ARGV: wait_ms -> hold-until (ms)
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local target = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < target then
  redis.call('SET', KEYS[1], target, 'PX', tonumber(ARGV[1]) + 1000)
  return target
end
return current
"""

_KEY_UNSAFE = re.compile(r"[{}\s]")


class _RedisUnavailable(Exception):
    """Redis could not be used for this call (the caller falls back to the in-process limiter)."""


class _RedisLink:
    """One Redis client per Airflow Redis connection and process, with the fall-back bookkeeping."""

    def __init__(self, redis_conn_id: str) -> None:
        self.redis_conn_id = redis_conn_id
        self._lock = threading.Lock()
        self._client: Any = None
        self._connection: Any = None  # read ahead by aprepare() (triggers: no sync lookup in the loop)
        self._scripts: dict[str, Any] = {}
        self._down_until = 0.0
        self._warned = False
        self._failing = False

    def _connect(self) -> Any:
        from airflow.providers.redis.hooks.redis import RedisHook

        hook = RedisHook(redis_conn_id=self.redis_conn_id)
        if self._connection is not None:
            hook.get_connection = lambda _conn_id: self._connection  # type: ignore[method-assign]
        client = hook.get_conn()
        pool_kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
        if isinstance(pool_kwargs, dict):  # RedisHook sets no timeout: a hung Redis must not hang a task
            pool_kwargs.setdefault("socket_timeout", REDIS_SOCKET_TIMEOUT_S)
            pool_kwargs.setdefault("socket_connect_timeout", REDIS_SOCKET_TIMEOUT_S)
        self._scripts = {name: client.register_script(body)
                         for name, body in (("acquire", _ACQUIRE), ("observe", _OBSERVE), ("hold", _HOLD))}
        return client

    async def aprepare(self) -> None:
        """Read the Redis connection without blocking the event loop (``aget_connection``), once,
        so the first :meth:`run` (in a worker thread) does no synchronous connection look-up."""
        if self._client is not None or self._connection is not None or time.monotonic() < self._down_until:
            return
        try:
            from airflow.sdk import BaseHook

            self._connection = await BaseHook.aget_connection(self.redis_conn_id)
        except Exception as exc:  # noqa: BLE001 - a missing connection means fall back, as in run()
            self._note_down(exc)

    def run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of the scripts; raises :class:`_RedisUnavailable` (after noting the outage)."""
        if time.monotonic() < self._down_until:
            raise _RedisUnavailable()
        try:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                runner = self._scripts[script]
            result = runner(keys=keys, args=args)
        except Exception as exc:  # noqa: BLE001 - any failure (import, connection, server) means fall back
            self._note_down(exc)
            raise _RedisUnavailable() from exc
        if self._failing:
            self._failing = False
            log.info("Redis connection %r answers again: the rate limit is shared across processes again",
                     self.redis_conn_id)
        return result

    def _note_down(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            self._failing = True
            first, self._warned = not self._warned, True
            if isinstance(exc, (ImportError, ValueError, LookupError)) or "not defined" in str(exc):
                self._client = None  # a configuration problem: build the client afresh next time
                self._connection = None
        what = f"{type(exc).__name__}: {exc}"
        if first:
            log.warning(
                "the shared HighLevel rate limiter cannot use Redis connection %r (%s); falling back to "
                "this process's own limiter and the X-RateLimit-* headers (other workers calling the same "
                "location may then meet 429s, which are retried). Retrying Redis every %.0f s. Fix: check "
                "that the Airflow connection %r exists and its Redis answers, that "
                "apache-airflow-providers-redis is installed, or remove the ghl connection's extra "
                "'rate_limit_redis_conn_id'.",
                self.redis_conn_id, what, REDIS_RETRY_AFTER_S, self.redis_conn_id,
            )
        else:
            log.info("Redis connection %r still unusable (%s): pacing in-process", self.redis_conn_id, what)


_links: dict[str, _RedisLink] = {}
_links_lock = threading.Lock()


def _link(redis_conn_id: str) -> _RedisLink:
    with _links_lock:
        link = _links.get(redis_conn_id)
        if link is None:
            link = _links[redis_conn_id] = _RedisLink(redis_conn_id)
        return link


def limit_scope(base_url: str, app: str, location_id: str | None) -> str:
    """The part of the keys naming one rate bucket: ``<host[:port]>|<app>|<location>`` (no braces
    or blanks; the location is empty for company-level calls)."""
    netloc = urlsplit(base_url).netloc or base_url
    return "|".join(_KEY_UNSAFE.sub("_", part) for part in (netloc, app, location_id or ""))


class SharedRateLimiter:
    """The limiter of one (base URL, app, location) across processes, with the interface of
    :class:`~airflow_provider_contacts.hooks.pacing.RateLimiter` (what the transports call).

    :param local: the in-process limiter of (base URL, location): learns the headers, is the
        fall-back, and counts every request admitted here.
    :param redis_conn_id: Airflow connection id of the Redis server.
    :param scope: see :func:`limit_scope`.
    :param key_prefix: prefix of the Redis keys.
    """

    def __init__(self, local: RateLimiter, redis_conn_id: str, scope: str,
                 key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.local = local
        self.redis_conn_id = redis_conn_id
        self.scope = scope
        base = f"{key_prefix}:{{{scope}}}"
        self.keys = {name: f"{base}:{name}" for name in ("window", "daily", "hold", "conf")}
        self._link = _link(redis_conn_id)
        self._lock = threading.Lock()
        self._used_known = 0  # highest daily count seen in Redis
        self._conf_known: tuple[str, str, str] = ("", "", "")
        #: Requests admitted through Redis / through the fall-back, by this process (for tests, logs).
        self.shared_admissions = 0
        self.local_admissions = 0

    # -- what the transports and the progress reporter use --------------------------------------

    @property
    def own_window_s(self) -> float:
        """Length of the sliding window in seconds (the local limiter's view of the server's)."""
        return self.local.own_window_s

    @property
    def own_capacity(self) -> int:
        """Requests the window admits."""
        return self.local.own_capacity

    def snapshot(self) -> LimiterSnapshot:
        """The local view of the budget (limits learnt from the headers)."""
        return self.local.snapshot()

    def retry_after_default(self) -> float:
        """Seconds to wait after a 429 without ``Retry-After``: one window."""
        return self.local.retry_after_default()

    @property
    def shared(self) -> bool:
        """Whether the next request would be paced through Redis (not during a fall-back)."""
        return time.monotonic() >= self._link._down_until

    def _try_take(self, daily_reserve: int) -> float:
        """Take a slot now (0) or return the seconds to wait; Redis first, else the local limiter."""
        snap = self.local.snapshot()
        args = [uuid.uuid4().hex, snap.max_requests, int(snap.interval_s * 1000), snap.daily_limit,
                self.local._utilisation, WINDOW_PAD, int(WINDOW_SLACK_S * 1000), daily_reserve]
        k = self.keys
        try:
            status, value, daily_limit = self._link.run("acquire", [k["window"], k["daily"], k["hold"], k["conf"]], args)
        except _RedisUnavailable:
            wait = self.local._try_take(daily_reserve)
            if wait == 0:
                with self._lock:
                    self.local_admissions += 1
            return wait
        status, value = int(status), int(value)
        if status == 1:
            with self._lock:
                self._used_known = max(self._used_known, value)
                self.shared_admissions += 1
            self.local.note_started()
            return 0.0
        if status == -1:
            raise GHLDailyLimitError(
                f"stopped before HighLevel's daily request limit: {int(daily_limit) - value} of "
                f"{int(daily_limit)} requests left today for this app and location (counted across every "
                f"worker sharing Redis connection {self.redis_conn_id!r}) and {daily_reserve} are kept in "
                "reserve; resume after the daily window resets (UTC midnight), or lower 'daily_reserve' "
                "on the hook"
            )
        # Spread the waiters a little, so those woken by one freed slot do not all ask at once.
        return min(MAX_WAIT_S, value / 1000.0) + random.uniform(0.0, 0.005)

    def acquire(self, daily_reserve: int = DEFAULT_DAILY_RESERVE) -> None:
        """Block until the next request may start. Pair every call with :meth:`release`.

        :raises GHLDailyLimitError: when the daily budget left is at or below ``daily_reserve``.
        """
        while (wait := self._try_take(daily_reserve)) > 0:
            time.sleep(wait)

    async def aacquire(self, daily_reserve: int = DEFAULT_DAILY_RESERVE) -> None:
        """Async :meth:`acquire`: the Redis connection is read with ``aget_connection``, the Redis
        round trip runs in a worker thread, waits use ``asyncio.sleep`` (the event loop is never blocked)."""
        await self._link.aprepare()
        while (wait := await asyncio.to_thread(self._try_take, daily_reserve)) > 0:
            await asyncio.sleep(wait)

    def release(self) -> None:
        """Mark one acquired request as finished (answered or failed)."""
        self.local.release()

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from an answer's ``X-RateLimit-*`` headers, here and in Redis (the
        limits, and the daily count when the server's is ahead). Call it before :meth:`release`."""
        self.local.update_from_headers(headers)
        max_requests = _header(headers, "X-RateLimit-Max")
        interval_ms = _header(headers, "X-RateLimit-Interval-Milliseconds")
        daily_limit = _header(headers, "X-RateLimit-Limit-Daily")
        daily_remaining = _header(headers, "X-RateLimit-Daily-Remaining")
        conf = tuple(str(int(v)) if v and v > 0 else "" for v in (max_requests, interval_ms, daily_limit))
        used = ""
        if daily_limit and daily_limit > 0 and daily_remaining is not None:
            used_by_server = max(0, int(daily_limit) - int(daily_remaining))
            with self._lock:
                if used_by_server > self._used_known:
                    used = str(used_by_server)
        with self._lock:
            conf_changed = any(c and c != known for c, known in zip(conf, self._conf_known))
        if not used and not conf_changed:
            return
        try:
            now_used = self._link.run("observe", [self.keys["daily"], self.keys["conf"]],
                                      [*(conf if conf_changed else ("", "", "")), used, CONF_TTL_MS])
        except _RedisUnavailable:
            return
        with self._lock:
            self._used_known = max(self._used_known, int(now_used))
            if conf_changed:
                self._conf_known = tuple(c or known for c, known in zip(conf, self._conf_known))  # type: ignore[assignment]

    def hold(self, seconds: float) -> None:
        """Stop every caller of this (app, location), in every process, for ``seconds`` (after a 429)."""
        self.local.hold(seconds)
        try:
            self._link.run("hold", [self.keys["hold"]], [max(1, int(seconds * 1000))])
        except _RedisUnavailable:
            pass


_shared: dict[tuple[str, str, str, str, str], SharedRateLimiter] = {}
_shared_lock = threading.Lock()


def app_key(settings: Any) -> str:
    """The app part of the rate bucket: the ``app_id`` extra, else the OAuth ``client_id``, else
    ``private`` (a private integration token)."""
    for name in ("app_id", "client_id"):
        value = getattr(settings, name, None)
        if value:
            return str(value)
    return "private"


def get_shared_limiter(base_url: str, location_id: str | None, app: str, redis_conn_id: str,
                       key_prefix: str = DEFAULT_KEY_PREFIX) -> SharedRateLimiter:
    """The process-wide :class:`SharedRateLimiter` of (base URL, app, location) on that Redis."""
    base_url = base_url.rstrip("/")
    key = (base_url, app, location_id or "", redis_conn_id, key_prefix)
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = SharedRateLimiter(
                get_limiter(base_url, location_id), redis_conn_id, limit_scope(base_url, app, location_id), key_prefix
            )
        return limiter


def limiter_for(settings: Any, location_id: str | None) -> RateLimiter | SharedRateLimiter:
    """The limiter a hook with these :class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings`
    uses for ``location_id``: shared through Redis when the connection has the extra
    ``rate_limit_redis_conn_id``, else the in-process one of (base URL, location)."""
    redis_conn_id = getattr(settings, "rate_limit_redis_conn_id", None)
    if not redis_conn_id:
        return get_limiter(settings.base_url, location_id)
    prefix = getattr(settings, "rate_limit_key_prefix", None) or DEFAULT_KEY_PREFIX
    return get_shared_limiter(settings.base_url, location_id, app_key(settings), redis_conn_id, prefix)


def reset_shared_limiters() -> None:
    """Forget every shared limiter and Redis client of this process (tests)."""
    with _shared_lock:
        _shared.clear()
    with _links_lock:
        _links.clear()


__all__ = [
    "DEFAULT_KEY_PREFIX",
    "SharedRateLimiter",
    "app_key",
    "get_shared_limiter",
    "limit_scope",
    "limiter_for",
    "reset_shared_limiters",
]
