"""Database-backed OAuth token stores: SQL (``rotation_store: "sql:<conn_id>"``) and Redis
(``rotation_store: "redis:<conn_id>"``).

Both keep one :class:`~airflow_provider_contacts.auth.TokenSet` per HighLevel connection and
serialise refreshes with a lock their own backend provides, so that exactly one worker refreshes per
expiry, on any number of machines (see :mod:`airflow_provider_contacts.auth` for the protocol).
``<conn_id>`` names an Airflow connection of the database; it is read like any connection (the Task
SDK inside tasks). The stores are built by :func:`~airflow_provider_contacts.auth.build_token_store`;
``key`` is the HighLevel connection id.

The stores keep the tokens in clear text (like a ``file:`` store): give the table or the Redis
database to Airflow alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from airflow_provider_contacts.auth import (
    DEFAULT_LEASE_S,
    TokenSet,
    TokenStoreError,
    _owner_id,
    _poll_sleep,
    _short_error,
)
from airflow_provider_contacts.errors import GHLConfigError

#: Table of :class:`SqlTokenStore` (created on first use when the user may create tables).
SQL_TABLE = "ghl_oauth_tokens"

#: SQL of the table, for a DBA who creates it by hand (PostgreSQL / MySQL)::
SQL_TABLE_DDL = (
    f"CREATE TABLE {SQL_TABLE} (store_key VARCHAR(250) NOT NULL PRIMARY KEY, tokens TEXT, "
    "updated_at TIMESTAMP NULL)"
)

_ENGINES: dict[tuple[str, int], Any] = {}
_READY_TABLES: set[tuple[str, int, str]] = set()
_GUARD = threading.Lock()


def _airflow_connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and Task SDK errors alike
        raise GHLConfigError(
            f"rotation_store: the Airflow connection {conn_id!r} of the token store cannot be read "
            f"({_short_error(exc)}); create it (e.g. AIRFLOW_CONN_{conn_id.upper()})"
        ) from None


class SqlTokenStore:
    """One row per HighLevel connection in table ``ghl_oauth_tokens`` of a PostgreSQL or MySQL
    database, reached through an Airflow connection (``rotation_store: "sql:<conn_id>"``, any
    common-sql connection whose hook builds a SQLAlchemy engine, e.g. ``postgres``).

    **Shape**: ``store_key`` (the HighLevel connection id, primary key), ``tokens`` (text,
    ``TokenSet.to_json()``), ``updated_at`` (UTC timestamp of the last save). The table is created
    on first use; without ``CREATE`` privilege create it with :data:`SQL_TABLE_DDL` and grant
    ``SELECT, INSERT, UPDATE``.

    **Refresh lock** (:meth:`lock`): ``SELECT ... FOR UPDATE`` of the row, in a transaction that stays
    open while the token source re-reads, refreshes and saves (the save commits, which releases the
    lock). This is the database's own row lock: exclusion holds across processes and machines with
    no lease and no timing assumption; a holder that dies releases it when its connection closes.
    Waiters give up after ``lock_wait_s`` seconds (``lock_timeout`` / ``innodb_lock_wait_timeout``)
    with :class:`TokenStoreError`.

    **Writes**: the lock inserts the row if missing and runs a no-op ``UPDATE`` of it before the
    refresh, so a read-only replica, a missing privilege or a full database fails with
    :class:`TokenStoreError` before the refresh token is spent. A commit that fails after a
    successful refresh (the connection drops at that moment) cannot be undone: the token source
    retries the save and then reports it.

    SQLite is refused (no row locks; use ``file:<path>`` on one host).
    """

    lease_s: float | None = None

    def __init__(self, sql_conn_id: str, key: str, *, lock_wait_s: float = DEFAULT_LEASE_S + 30,
                 table: str = SQL_TABLE) -> None:
        if not sql_conn_id:
            raise GHLConfigError("rotation_store: 'sql:' needs an Airflow connection id, e.g. 'sql:postgres_default'")
        self.sql_conn_id = sql_conn_id
        self.key = key
        self.table_name = table
        self.lock_wait_s = float(lock_wait_s)
        self._local = threading.local()
        self._table_obj: Any = None

    def __repr__(self) -> str:
        return f"SqlTokenStore(conn_id={self.sql_conn_id!r}, table={self.table_name!r}, key={self.key!r})"

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def _table(self) -> Any:
        if self._table_obj is None:
            from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

            self._table_obj = Table(
                self.table_name, MetaData(),
                Column("store_key", String(250), primary_key=True),
                Column("tokens", Text),
                Column("updated_at", DateTime(timezone=True)),
            )
        return self._table_obj

    def _fail(self, what: str, exc: BaseException | None = None) -> TokenStoreError:
        cause = f" ({_short_error(exc)})" if exc is not None else ""
        return TokenStoreError(
            f"token store {self!r}: {what}{cause}. No refresh was attempted, so the stored refresh "
            f"token is still valid. Fix: point connection {self.sql_conn_id!r} at a writable primary "
            f"and grant its user SELECT, INSERT, UPDATE on {self.table_name} (or CREATE, for the first "
            "use), or set the HighLevel connection's 'rotation_store' extra to another store"
        )

    def _engine(self) -> Any:
        key = (self.sql_conn_id, os.getpid())  # engines (and their pools) are not shared across forks
        with _GUARD:
            engine = _ENGINES.get(key)
        if engine is not None:
            return engine
        conn = _airflow_connection(self.sql_conn_id)
        try:
            hook = conn.get_hook()
            engine = hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True, "pool_size": 2})
        except Exception as exc:  # noqa: BLE001 - provider missing, no SQLAlchemy URL, ...
            raise GHLConfigError(
                f"rotation_store 'sql:{self.sql_conn_id}': cannot build a SQLAlchemy engine from the "
                f"connection ({_short_error(exc)}); use a PostgreSQL or MySQL connection whose provider "
                "is installed"
            ) from None
        if engine.dialect.name not in ("postgresql", "mysql", "mariadb"):
            raise GHLConfigError(
                f"rotation_store 'sql:{self.sql_conn_id}': {engine.dialect.name} is not supported (no "
                "SELECT ... FOR UPDATE row locks); use PostgreSQL or MySQL, or 'file:<path>' on one host"
            )
        with _GUARD:
            return _ENGINES.setdefault(key, engine)

    def _ensure_table(self, engine: Any) -> None:
        ready = (self.sql_conn_id, os.getpid(), self.table_name)
        if ready in _READY_TABLES:
            return
        from sqlalchemy import inspect

        try:
            if not inspect(engine).has_table(self.table_name):
                try:
                    self._table.metadata.create_all(engine, checkfirst=True)
                except Exception:  # noqa: BLE001 - another worker created it at the same moment
                    if not inspect(engine).has_table(self.table_name):
                        raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"cannot create table {self.table_name} (DDL: {SQL_TABLE_DDL})", exc) from None
        _READY_TABLES.add(ready)

    def _select(self) -> Any:
        from sqlalchemy import select

        return select(self._table.c.tokens).where(self._table.c.store_key == self.key)

    # -- TokenStore ----------------------------------------------------------------------------

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` if there is no row or it is empty (inside :meth:`lock`:
        read in the locking transaction)."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            row = held.execute(self._select()).first()
        else:
            engine = self._engine()
            self._ensure_table(engine)
            with engine.connect() as conn:
                row = conn.execute(self._select()).first()
        if row is None or not row[0]:
            return None
        try:
            return TokenSet.from_json(row[0])
        except (ValueError, TypeError):
            raise GHLConfigError(
                f"token store {self!r}: the row does not hold a token set; delete it to re-seed it from "
                "the connection's 'refresh_token' extra"
            ) from None

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens`` and commit (inside :meth:`lock` this also releases the row lock)."""
        from sqlalchemy import insert, update
        from sqlalchemy.exc import IntegrityError

        values = {"tokens": tokens.to_json(), "updated_at": datetime.now(timezone.utc)}
        stmt = update(self._table).where(self._table.c.store_key == self.key).values(**values)
        held = getattr(self._local, "conn", None)
        if held is not None:
            held.execute(stmt)  # the row exists: lock() inserted it
            held.commit()
            return
        engine = self._engine()
        self._ensure_table(engine)
        for _ in range(2):
            try:
                with engine.begin() as conn:
                    if conn.execute(stmt).rowcount == 0:
                        conn.execute(insert(self._table).values(store_key=self.key, **values))
                return
            except IntegrityError:  # inserted by another worker meanwhile: update it
                continue

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the row lock (``SELECT ... FOR UPDATE``) of this connection's row.

        :raises TokenStoreError: the database cannot be reached or written, or the lock was not
            granted within ``lock_wait_s`` seconds.
        """
        from sqlalchemy import insert, update
        from sqlalchemy.exc import DBAPIError, IntegrityError

        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError(f"{self!r}: lock() is not re-entrant")
        engine = self._engine()
        self._ensure_table(engine)
        try:
            conn = engine.connect()
        except Exception as exc:  # noqa: BLE001
            raise self._fail("cannot connect", exc) from None
        try:
            try:
                with conn.begin():
                    if conn.execute(self._select()).first() is None:
                        conn.execute(insert(self._table).values(store_key=self.key, tokens=None, updated_at=None))
            except IntegrityError:
                pass  # another worker inserted the row first
            except Exception as exc:  # noqa: BLE001
                raise self._fail("cannot insert its row", exc) from None
            conn.begin()
            try:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.lock_wait_s * 1000)}ms'")
                else:
                    conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(self.lock_wait_s))}")
                conn.execute(self._select().with_for_update()).first()
                # Probe: the refreshed token will be written by an UPDATE of this row.
                conn.execute(update(self._table).where(self._table.c.store_key == self.key)
                             .values(updated_at=self._table.c.updated_at))
            except DBAPIError as exc:
                conn.rollback()
                text = str(exc.orig).lower()
                if "lock timeout" in text or "lock wait timeout" in text or "canceling statement" in text:
                    raise TokenStoreError(
                        f"token store {self!r}: timed out after {self.lock_wait_s:.0f} s waiting for the "
                        "refresh lock (another worker holds the row). No refresh was attempted"
                    ) from None
                raise self._fail("cannot lock and update its row", exc) from None
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                if conn.in_transaction():
                    conn.rollback()
        finally:
            conn.close()


_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Under the lock (checked atomically), rewrite the token key with its own value: proves this client
# may write it (ACLs, read-only replica) without changing anything.
_PROBE_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local value = redis.call('GET', KEYS[1])
if value then redis.call('SET', KEYS[1], value, 'KEEPTTL') return 1 end
return 0
"""


class RedisTokenStore:
    """One Redis string per HighLevel connection (``rotation_store: "redis:<conn_id>"``), key
    ``ghl_oauth_tokens:{<ghl conn id>}``, value ``TokenSet.to_json()``.

    The Airflow connection ``<conn_id>`` gives ``host``, ``port`` (6379), ``login`` (ACL user),
    ``password``, the database number (extra ``db``, else a numeric ``schema``, else 0) and extra
    ``ssl`` (true/false). Needs the ``redis`` package (``pip install redis``).

    **Refresh lock** (:meth:`lock`): ``SET <key>:lock <owner> NX PX <lease_s*1000>``, released with a
    Lua compare-and-delete, so a worker never deletes a lock it no longer owns. Both keys share a
    hash slot (``{...}``), so Redis Cluster works. Exclusion holds across processes and machines on
    one Redis primary as long as no holder stalls past ``lease_s`` (default
    :data:`~airflow_provider_contacts.auth.DEFAULT_LEASE_S`, seconds; the token source stops
    retrying the token endpoint before it). A failover to a replica that had not received the lock
    key (asynchronous replication) can admit a second holder: this is not Redlock.

    **Writes**: taking the lock is a write; then a Lua script (run only while the lock is ours)
    rewrites the token key with its own value, so a read-only replica or an ACL without write
    access to the key fails with :class:`TokenStoreError` before the refresh.
    """

    def __init__(self, redis_conn_id: str, key: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        if not redis_conn_id:
            raise GHLConfigError("rotation_store: 'redis:' needs an Airflow connection id, e.g. 'redis:redis_default'")
        self.redis_conn_id = redis_conn_id
        self.key = f"ghl_oauth_tokens:{{{key}}}"
        self.lock_key = f"{self.key}:lock"
        self.lease_s = float(lease_s)
        self._client: Any = None

    def __repr__(self) -> str:
        return f"RedisTokenStore(conn_id={self.redis_conn_id!r}, key={self.key!r})"

    @property
    def client(self) -> Any:
        """The ``redis.Redis`` client (built on first use)."""
        if self._client is None:
            try:
                import redis
            except ImportError:
                raise GHLConfigError(
                    f"rotation_store 'redis:{self.redis_conn_id}' needs the redis package: pip install redis"
                ) from None
            conn = _airflow_connection(self.redis_conn_id)
            extra = conn.extra_dejson if isinstance(getattr(conn, "extra_dejson", None), dict) else {}
            db = extra.get("db")
            if db is None:
                db = conn.schema if str(conn.schema or "").isdigit() else 0
            self._client = redis.Redis(
                host=conn.host or "localhost",
                port=int(conn.port or 6379),
                db=int(db),
                username=conn.login or None,
                password=conn.password or None,
                ssl=str(extra.get("ssl", "false")).lower() in ("1", "true", "yes"),
                socket_timeout=10,
                socket_connect_timeout=10,
                decode_responses=True,
            )
        return self._client

    def _fail(self, what: str, exc: BaseException | None = None) -> TokenStoreError:
        cause = f" ({_short_error(exc)})" if exc is not None else ""
        return TokenStoreError(
            f"token store {self!r}: {what}{cause}. No refresh was attempted, so the stored refresh "
            f"token is still valid. Fix: point connection {self.redis_conn_id!r} at the writable Redis "
            f"primary and let its user read and write {self.key!r} and {self.lock_key!r}, or set the "
            "HighLevel connection's 'rotation_store' extra to another store"
        )

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` if the key does not exist or is empty."""
        raw = self.client.get(self.key)
        if not raw:
            return None
        try:
            return TokenSet.from_json(raw)
        except (ValueError, TypeError):
            raise GHLConfigError(
                f"token store {self!r} does not hold a token set; delete the key to re-seed it from the "
                "connection's 'refresh_token' extra"
            ) from None

    def save(self, tokens: TokenSet) -> None:
        """``SET`` the key to ``tokens``."""
        self.client.set(self.key, tokens.to_json())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the refresh lease ``<key>:lock``.

        :raises TokenStoreError: Redis cannot be reached or written, or the lease was not free within
            ``lease_s`` + 30 s.
        """
        me = _owner_id()
        deadline = time.monotonic() + self.lease_s + 30
        try:
            while not self.client.set(self.lock_key, me, nx=True, px=int(self.lease_s * 1000)):
                if time.monotonic() > deadline:
                    raise TokenStoreError(
                        f"token store {self!r}: timed out after {self.lease_s + 30:.0f} s waiting for the "
                        f"refresh lock (held by {self.client.get(self.lock_key) or 'another worker'}). "
                        "No refresh was attempted"
                    )
                _poll_sleep(deadline)
        except TokenStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, READONLY, NOPERM, ...
            raise self._fail("cannot take the refresh lock", exc) from None
        try:
            try:
                if self.client.eval(_PROBE_LUA, 2, self.key, self.lock_key, me) == -1:
                    raise self._fail(f"lost the refresh lock within {self.lease_s:.0f} s")
            except TokenStoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._fail("cannot write the token key", exc) from None
            yield
        finally:
            try:
                self.client.eval(_RELEASE_LUA, 1, self.lock_key, me)
            except Exception:  # noqa: BLE001 - the lease ends by itself
                pass


__all__ = ["SQL_TABLE", "SQL_TABLE_DDL", "RedisTokenStore", "SqlTokenStore"]
