"""Token sources (private integration token, OAuth 2.0) and OAuth token stores.

**Token sources** give the hook (and triggers) the bearer token to send:

* :class:`PrivateTokenSource` - a Private Integration token, used as is.
* :class:`OAuthTokenSource` - OAuth 2.0 access tokens, refreshed proactively before they expire and
  once after a 401. HighLevel refresh tokens are **single-use** (every refresh returns a new refresh
  token and kills the old one; HighLevel counts every reuse). So a refresh is a critical section:

  - within one process, refreshes of one connection are serialised by a lock;
  - across processes **and machines**, the refresh runs under the token store's ``lock()``, which
    each shipped store builds from what its own backend offers (see below). Under the lock the store
    is re-read: tokens another worker already rotated are adopted instead of spending an
    already-used refresh token. Exactly one refresh happens per expiry, however many workers find
    the token expired;
  - taking the lock also proves the store can be written: a store that cannot be written fails with
    :class:`TokenStoreError` **before** the refresh token is spent (a rotated token that cannot be
    stored would be lost, and the app would have to be re-authorised);
  - the new refresh token is saved before the new access token is used;
  - an ``invalid_grant`` answer re-reads the store once more (a custom store without a lock may race)
    and otherwise fails with :class:`GHLAuthError` saying what to re-authorise.

  Agency (``user_type="Company"``) tokens are exchanged for a location token through
  ``POST /oauth/locationToken`` (operationId ``get-location-access-token``; any 2xx answer is taken:
  HighLevel answers 201 live). **Location tokens** are minted once per location and kept until
  shortly before they expire, in this process and in the connection's token store under a key of
  their own (:func:`build_location_token_store`), so every task of that location on any worker
  uses the same token: a worker that finds no fresh one takes the location store's ``lock()``,
  re-reads it (adopting what another worker just minted), and only then mints and saves. A 401
  that says the token expired or is unknown (``Invalid JWT``) re-mints it once; a scope or
  token-class 401 never does (the transport raises those at once). A ``locationToken`` call
  answered with a plain 401 means the agency access token itself expired early: it is refreshed
  (rotating the refresh token through the store, exactly once across workers) and the mint is
  sent again once. An agency *Private Integration* token cannot mint location tokens (the
  endpoint takes agency OAuth tokens only): :func:`agency_private_token_error` says so and how to
  fix it.

  The token calls are retried under the hook's
  :class:`~airflow_provider_contacts.hooks.retry.RetryPolicy` (what is retried, how long to wait,
  when to give up: the same rules as API calls), within the store's refresh lease; see
  :meth:`OAuthTokenSource._post_form`.

**Token stores** (:class:`TokenStore`) persist the rotating tokens; the connection's
``rotation_store`` extra picks one (:func:`rotation_store_extra`, :func:`build_token_store`):

=====================  ===================================  =====================================
``rotation_store``     store                                exclusion across processes/machines
=====================  ===================================  =====================================
``variable`` (default) :class:`VariableTokenStore`,         Lamport's fast mutual exclusion over
``variable:<key>``     one Airflow Variable (metadata DB)   Variables (plain reads/writes, no CAS
                                                            needed) with a lease (default 180 s)
``file:<path>``        :class:`FileTokenStore`, a JSON      POSIX ``lockf`` on ``<path>.lock``:
                       file (0600, atomic replace)          one host, or a shared filesystem with
                                                            working POSIX locks (NFSv4)
``sql:<conn_id>``      ``token_stores.SqlTokenStore``,      ``SELECT ... FOR UPDATE`` row lock of
                       a table in a PostgreSQL/MySQL DB     an open transaction
``redis:<conn_id>``    ``token_stores.RedisTokenStore``,    ``SET NX PX`` lease + Lua
                       a Redis key                          compare-and-delete release
dotted path            your class (``conn_id=...``)         whatever its ``lock()`` provides
=====================  ===================================  =====================================

The extra was called ``token_store`` before: Airflow hides the value of every connection extra whose
name contains ``token`` (or ``secret``, ``password``, ...), so the UI showed and saved that one as
``***``. ``token_store`` (and ``extra__ghl__token_store``) is still read when ``rotation_store`` is
not set; a store extra holding ``***`` is refused with the fix.

Each store's class docstring states its guarantee and its limits. A custom store is any class taking
``conn_id`` with ``load()``/``save()`` and a ``lock()`` context manager that excludes other
processes on every machine and raises :class:`TokenStoreError` when the store cannot be written,
named in the ``rotation_store`` extra by dotted path, e.g. one keeping the tokens in a secrets manager
(without a ``lock()`` the source warns: concurrent workers can then spend one refresh token twice)::

    class SecretsManagerTokenStore:
        def __init__(self, conn_id: str) -> None:
            self.name = f"airflow/ghl-tokens/{conn_id}"
            self.client = boto3.client("secretsmanager")

        def load(self) -> TokenSet | None:
            try:
                return TokenSet.from_json(self.client.get_secret_value(SecretId=self.name)["SecretString"])
            except self.client.exceptions.ResourceNotFoundException:
                return None

        def save(self, tokens: TokenSet) -> None:
            self.client.put_secret_value(SecretId=self.name, SecretString=tokens.to_json())

        def lock(self):
            return my_distributed_lock(self.name)  # e.g. a DynamoDB conditional-write lease

Tokens and secrets are registered with Airflow's secrets masker and never put in log lines,
exception messages or reprs.

Variable stores and caching: the Variable store drops its keys from Airflow's secrets cache
(``[secrets] use_cache``) before each read, so re-reads see other workers' writes; a token Variable
that a secrets backend (e.g. an ``AIRFLOW_VAR_...`` environment variable) also defines shadows the
metadata DB and is refused with :class:`TokenStoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests

from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLRateLimitError,
    GHLScopeError,
    GHLServerError,
    GHLTransportError,
    api_error_message,
    explain,
    is_scope_message,
)
from airflow_provider_contacts.hooks.pacing import DEFAULT_INTERVAL_S
from airflow_provider_contacts.hooks.paths import is_highlevel_id
from airflow_provider_contacts.hooks.retry import RETRYABLE_STATUSES, RetryPolicy, retry_after_s

log = logging.getLogger(__name__)

#: Refresh an OAuth access token this long before it expires (capped at a fifth of its lifetime).
DEFAULT_REFRESH_MARGIN_S = 300.0

#: How long a refresh lease of the Variable and Redis stores lasts, seconds. The token source stops
#: retrying the token endpoint before its lease ends, so no refresh request is in flight after it; a
#: crashed holder blocks other workers' refreshes for at most this long.
DEFAULT_LEASE_S = 180.0


class TokenStoreError(GHLConfigError):
    """The token store cannot be used for a refresh: it cannot be written, its lock cannot be taken,
    or it is configured so that written tokens would not be read back.

    Raised *before* the single-use refresh token is spent wherever that can be known in advance; the
    message names the store and the fix, never a token.
    """


def mask_secret(value: str | None) -> None:
    """Register ``value`` with Airflow's secrets masker (no-op for empty values)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:  # pragma: no cover - older Task SDK layouts
        from airflow.sdk.execution_time.secrets_masker import mask_secret as _mask  # type: ignore
    with contextlib.suppress(Exception):
        _mask(value)


def fingerprint(secret: str | None) -> str | None:
    """A short, non-reversible fingerprint of a secret (to compare secrets without keeping them)."""
    if not secret:
        return None
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Token set
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """An OAuth token pair and what HighLevel said about it.

    :param access_token: bearer token for API calls (``None`` until the first refresh).
    :param refresh_token: single-use refresh token.
    :param expires_at: when the access token expires (aware, UTC); ``None`` = unknown.
    :param lifetime_s: lifetime the server granted (``expires_in``), seconds.
    :param seed: fingerprint of the connection's ``refresh_token`` extra this set descends from
        (a different extra later means the app was re-authorised and the store is re-seeded).
    """

    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None = None
    lifetime_s: float | None = None
    scope: str | None = None
    user_type: str | None = None
    location_id: str | None = None
    company_id: str | None = None
    seed: str | None = None

    def __post_init__(self) -> None:
        mask_secret(self.access_token)
        mask_secret(self.refresh_token)
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            # A store that wrote a naive time (HighLevel and to_json use UTC): take it as UTC, as
            # comparing it with the aware "now" of is_fresh() would raise TypeError.
            object.__setattr__(self, "expires_at", self.expires_at.replace(tzinfo=timezone.utc))

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={'***' if self.access_token else None}, "
            f"refresh_token={'***' if self.refresh_token else None}, expires_at={self.expires_at!r}, "
            f"scope={self.scope!r}, user_type={self.user_type!r}, location_id={self.location_id!r})"
        )

    __str__ = __repr__

    def is_fresh(self, margin_s: float = DEFAULT_REFRESH_MARGIN_S, now: datetime | None = None) -> bool:
        """True if there is an access token that will not expire within the refresh margin."""
        if not self.access_token:
            return False
        if self.expires_at is None:
            return True
        if self.lifetime_s:
            margin_s = min(margin_s, self.lifetime_s / 5)
        now = now or datetime.now(timezone.utc)
        return self.expires_at - timedelta(seconds=margin_s) > now

    @classmethod
    def from_token_response(cls, data: dict[str, Any], seed: str | None = None) -> TokenSet:
        """Build from the JSON of ``POST /oauth/token`` (``GetAccessCodeSuccessfulResponseDto``)."""
        expires_in = data.get("expires_in")
        expires_at = (
            datetime.now(timezone.utc) + timedelta(seconds=float(expires_in)) if expires_in else None
        )
        return cls(
            access_token=data.get("access_token"),
            refresh_token=data.get("refresh_token"),
            expires_at=expires_at,
            lifetime_s=float(expires_in) if expires_in else None,
            scope=data.get("scope"),
            user_type=data.get("userType"),
            location_id=data.get("locationId"),
            company_id=data.get("companyId"),
            seed=seed,
        )

    def to_json(self) -> str:
        """Serialise for a store (contains secrets: stores must keep it secret)."""
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> TokenSet:
        """Parse what :meth:`to_json` wrote."""
        data = dict(text) if isinstance(text, dict) else json.loads(text)
        expires = data.get("expires_at")
        data["expires_at"] = datetime.fromisoformat(expires) if expires else None
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------
# Token stores
# --------------------------------------------------------------------------------------------


@runtime_checkable
class TokenStore(Protocol):
    """Where rotating OAuth tokens live between task runs.

    ``load()`` returns the stored :class:`TokenSet` (``None`` when empty) and must read the backend,
    not a cache; ``save()`` replaces it durably. A store shared by several workers also offers
    ``lock()``, a context manager that

    * excludes every other holder of the same store, in any process on any machine, while the
      :class:`OAuthTokenSource` re-reads, refreshes and saves (``load``/``save`` are called inside);
    * raises :class:`TokenStoreError` on entry when the store cannot be written (so the refresh
      token is not spent);
    * may expose ``lease_s`` (float seconds or ``None``): how long the exclusion is guaranteed after
      entry. The source gives up on the token endpoint before that time is over.
    """

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


def _in_task_process() -> bool:
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _short_error(exc: BaseException) -> str:
    """``Type: message`` of an error from a store backend, trimmed (never called with token values)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _poll_sleep(deadline: float) -> None:
    time.sleep(max(0.0, min(random.uniform(0.02, 0.06), deadline - time.monotonic())))


def _owner_id() -> str:
    """A unique id for one lock attempt: ``<host>:<pid>:<random hex>`` (shown in lock diagnostics)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


class _VariableReadError(Exception):
    """A Variable could not be read (as opposed to: it does not exist)."""


class _Variables:
    """Plain Airflow Variable reads and writes, uncached and strict, in and outside task processes.

    In a task (and the triggerer) this is the Task SDK's channel to the API server's execution API;
    elsewhere (scripts, tests, the scheduler's helpers) the metadata database. Both end in the same
    ``variable`` table, where a committed write is seen by every later read, which is all the lock
    below relies on.

    Reads are strict: Airflow's own ``Variable.get`` answers "not found" (``None``) when the API
    server or the database fails, or when a value cannot be decrypted; for a token store that would
    mean "empty", and re-seeding it would overwrite the live refresh token with a spent one. So
    :meth:`get` reads the metadata DB / execution API directly and raises on anything but a value
    or "no such Variable".
    """

    DESCRIPTION = "HighLevel OAuth tokens (rotated by airflow-provider-contacts; keep secret)"

    @staticmethod
    def _uncache(key: str) -> None:
        with contextlib.suppress(Exception):
            from airflow.sdk.execution_time.cache import SecretCache

            SecretCache.invalidate_variable(key)

    @classmethod
    def get(cls, key: str) -> str | None:
        """The Variable's value, ``None`` if it does not exist.

        :raises _VariableReadError: the API server or database failed, or the value cannot be decrypted.
        """
        cls._uncache(key)
        if _in_task_process():
            return cls._get_in_task(key)
        from sqlalchemy import select

        from airflow.models import Variable as DBVariable
        from airflow.utils.session import create_session

        try:
            with create_session() as session:
                var = session.scalars(select(DBVariable).where(DBVariable.key == key).limit(1)).first()
                if var is None:
                    return None
                value = var.val
                if value is None and var._val is not None:  # noqa: SLF001 - decryption failed
                    raise _VariableReadError("the value cannot be decrypted (check [core] fernet_key)")
                return value
        except _VariableReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - database errors
            raise _VariableReadError(_short_error(exc)) from None

    @staticmethod
    def _get_in_task(key: str) -> str | None:
        try:
            from airflow.sdk.exceptions import ErrorType
            from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable, VariableResult
            from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS
        except ImportError:  # pragma: no cover - a Task SDK without these names: the public API
            from airflow.sdk import Variable

            return Variable.get(key, default=None)
        try:
            msg = SUPERVISOR_COMMS.send(GetVariable(key=key))
        except Exception as exc:  # noqa: BLE001 - AirflowRuntimeError (API server error), IPC errors
            raise _VariableReadError(_short_error(exc)) from None
        if isinstance(msg, VariableResult):
            return msg.value
        if isinstance(msg, ErrorResponse) and msg.error == ErrorType.VARIABLE_NOT_FOUND:
            return None
        detail = getattr(msg, "error", None) or type(msg).__name__
        raise _VariableReadError(f"the API server answered {detail}")

    @classmethod
    def set(cls, key: str, value: str, description: str = DESCRIPTION) -> None:
        if _in_task_process():
            from airflow.sdk import Variable

            Variable.set(key, value, description=description)
        else:
            from airflow.models import Variable as DBVariable

            DBVariable.set(key, value, description=description)
        cls._uncache(key)

    @classmethod
    def delete(cls, key: str) -> None:
        if _in_task_process():
            from airflow.sdk import Variable

            Variable.delete(key)
        else:
            from airflow.models import Variable as DBVariable

            DBVariable.delete(key)
        cls._uncache(key)

    @staticmethod
    def keys(prefix: str) -> list[str] | None:
        """Keys in the metadata DB starting with ``prefix``; ``None`` if this Airflow cannot list."""
        if _in_task_process():
            from airflow.sdk import Variable

            if not hasattr(Variable, "keys"):  # Task SDK before Variable.keys()
                return None
            return list(Variable.keys(prefix=prefix))
        from sqlalchemy import select

        from airflow.models import Variable as DBVariable
        from airflow.utils.session import create_session

        with create_session() as session:
            return list(session.scalars(select(DBVariable.key).where(DBVariable.key.startswith(prefix, autoescape=True))))

    @staticmethod
    def shadowing_backend(key: str) -> str | None:
        """Name of a secrets backend read *before* the metadata DB that defines ``key``, if any."""
        try:
            if _in_task_process():
                from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

                backends = list(ensure_secrets_backend_loaded())
            else:
                from airflow.configuration import ensure_secrets_loaded

                backends = list(ensure_secrets_loaded())
        except Exception:  # noqa: BLE001 - fall back to the environment, the usual culprit
            env = f"AIRFLOW_VAR_{key.upper()}"
            return "EnvironmentVariablesBackend" if os.environ.get(env) else None
        for backend in backends:
            name = type(backend).__name__
            if name in ("MetastoreBackend", "ExecutionAPISecretsBackend"):
                break  # the metadata DB itself: later backends are read after it
            try:
                if backend.get_variable(key=key) is not None:
                    return name
            except Exception:  # noqa: BLE001 - an unreachable backend does not shadow anything
                continue
        return None


class VariableTokenStore:
    """One Airflow Variable (JSON) per connection; default key ``ghl_oauth_tokens__<conn_id>``.

    **Shape**: the Variable holds ``TokenSet.to_json()`` (access/refresh token, ``expires_at`` ISO
    8601 UTC, ``lifetime_s`` seconds, scope, user type, ids, seed fingerprint), Fernet-encrypted in
    the metadata DB when ``[core] fernet_key`` is set. Inside a task (and the triggerer) it is read
    and written through the Task SDK (the API server's execution API); elsewhere through the
    metadata DB (``airflow.models.Variable``). Reads are strict: a failed read (API server or
    database error, a value the Fernet key cannot decrypt) raises :class:`TokenStoreError` and is
    never taken as "no tokens yet" (Airflow's ``Variable.get`` would answer ``None``, and re-seeding
    would overwrite the live refresh token with a spent one).

    **Refresh lock** (:meth:`lock`): Variables offer reads, writes (upserts), deletes and key
    listing, but no compare-and-swap. The lock is Lamport's *fast mutual exclusion* algorithm
    (ACM TOCS 5(1), 1987), which needs only atomic reads and writes, built from Variables next to
    the token Variable: ``<key>__lock_x`` (last contender), ``<key>__lock_y`` (holder + lease end)
    and one ``<key>__lock_b__<id>`` per contender ("I am trying"). Uncontended it costs five Variable
    calls to enter and three to leave. It holds across processes and machines with no timing
    assumption, as long as

    * every read sees the latest committed write: true for the metadata DB and the execution API;
      the store drops its keys from Airflow's secrets cache before each read;
    * no holder stalls longer than ``lease_s`` (default :data:`DEFAULT_LEASE_S`, seconds): a lease
      that ended (a crashed worker) is treated as free, so a holder frozen past it could overlap
      with the next one. The token source stops retrying the token endpoint before the lease ends.
      Lease ends are wall-clock times: keep the workers' clocks in sync (NTP);
    * (a Task SDK without ``Variable.keys()``) the contended path cannot list the contenders and
      waits ``unlisted_wait_s`` (2 s) instead, which assumes no lock write takes longer than that.

    Waiters give up with :class:`TokenStoreError` after ``wait_s`` seconds (``lease_s`` + 30). The
    lock Variables hold no secret; ``__lock_x`` stays, the others are deleted on release (expired
    contender flags when a contended acquisition finds them).

    **Writes**: the lock's first write is a Variable write, so a store that cannot be written (API
    server or database refusing writes) fails with :class:`TokenStoreError` before any refresh. A
    token Variable that a secrets backend read before the metadata DB also defines (e.g. an
    ``AIRFLOW_VAR_...`` environment variable) is refused too: written tokens would never be read back.
    """

    def __init__(self, key: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        if not key:
            raise GHLConfigError("rotation_store: the Variable key is empty; use 'variable:<key>'")
        self.key = key
        self.lease_s = float(lease_s)
        #: Seconds a worker waits for the lock before giving up (a crashed holder's lease ends first).
        self.wait_s = self.lease_s + 30
        #: Seconds to wait in the contended path when contenders cannot be listed (old Task SDK).
        self.unlisted_wait_s = 2.0
        self._x = f"{key}__lock_x"
        self._y = f"{key}__lock_y"
        self._b_prefix = f"{key}__lock_b__"

    def __repr__(self) -> str:
        return f"VariableTokenStore(key={self.key!r})"

    def load(self) -> TokenSet | None:
        """The stored tokens (read uncached), or ``None`` if the Variable does not exist or is empty.

        :raises TokenStoreError: the Variable cannot be read (never taken as "empty").
        """
        try:
            raw = _Variables.get(self.key)
        except _VariableReadError as exc:
            raise TokenStoreError(
                f"token store {self!r}: cannot read the Variable ({exc}). Fix: check that this worker "
                "reaches the API server / metadata database and that [core] fernet_key is the one the "
                "Variable was written with"
            ) from None
        if not raw:
            return None
        try:
            return TokenSet.from_json(raw)
        except (ValueError, TypeError) as exc:
            raise GHLConfigError(
                f"token store Variable {self.key!r} does not hold a token set ({type(exc).__name__}); "
                "delete the Variable to re-seed it from the connection's 'refresh_token' extra"
            ) from None

    def save(self, tokens: TokenSet) -> None:
        """Replace the Variable's value with ``tokens``."""
        _Variables.set(self.key, tokens.to_json())

    # -- the refresh lock --------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException | None = None) -> TokenStoreError:
        cause = f" ({_short_error(exc)})" if exc is not None else ""
        return TokenStoreError(
            f"token store {self!r}: {what}{cause}. No refresh was attempted, so the stored refresh "
            "token is still valid. Fix: let this worker write Airflow Variables (the API server / "
            "metadata database must accept writes), or set the connection's 'rotation_store' extra to "
            "another store ('file:<path>', 'sql:<conn_id>', 'redis:<conn_id>')"
        )

    def _lease(self, raw: str | None) -> tuple[str | None, float]:
        """``(owner, lease end in epoch seconds)`` of a ``__lock_y``/``__lock_b`` value."""
        if not raw:
            return None, 0.0
        try:
            data = json.loads(raw)
            return str(data["owner"]), float(data["until"])
        except (ValueError, TypeError, KeyError):
            return None, 0.0

    def _live_holder(self) -> str | None:
        owner, until = self._lease(_Variables.get(self._y))
        return owner if owner and until > time.time() else None

    def _stamp(self, owner: str) -> str:
        return json.dumps({"owner": owner, "until": time.time() + self.lease_s})

    def _await_free(self, deadline: float) -> None:
        """Wait until ``__lock_y`` is empty or its lease is over."""
        while self._live_holder() is not None:
            if time.monotonic() > deadline:
                raise self._timeout()
            _poll_sleep(deadline)

    def _await_no_contender(self, me: str, deadline: float) -> None:
        """Wait until no other live ``__lock_b__`` flag exists (expired ones are removed)."""
        while True:
            keys = _Variables.keys(self._b_prefix)
            if keys is None:  # cannot list contenders: wait out any write in flight instead
                time.sleep(self.unlisted_wait_s)
                return
            live = False
            for key in keys:
                if key == self._b_prefix + me.rsplit(":", 1)[-1]:
                    continue
                owner, until = self._lease(_Variables.get(key))
                if owner is None:
                    continue
                if until <= time.time():
                    with contextlib.suppress(Exception):
                        _Variables.delete(key)  # a crashed contender's flag
                    continue
                live = True
                break
            if not live:
                return
            if time.monotonic() > deadline:
                raise self._timeout()
            _poll_sleep(deadline)

    def _timeout(self) -> TokenStoreError:
        holder = self._live_holder()
        return TokenStoreError(
            f"token store {self!r}: timed out after {self.wait_s:.0f} s waiting for the refresh "
            f"lock (held by {holder or 'another worker'}). No refresh was attempted. If no worker is "
            f"refreshing, delete the Variables {self._y!r} and '{self._b_prefix}*'"
        )

    def _acquire(self, me: str, deadline: float) -> None:
        """Lamport's fast mutual exclusion (Algorithm 2), lock registers as Variables."""
        mine = self._b_prefix + me.rsplit(":", 1)[-1]
        first = True
        while True:
            try:
                _Variables.set(mine, self._stamp(me), "refresh lock flag (airflow-provider-contacts)")  # b[i] := true
            except Exception as exc:  # noqa: BLE001 - any failure to write means: do not refresh
                if first:
                    raise self._fail("cannot write Airflow Variables", exc) from None
                raise
            first = False
            _Variables.set(self._x, me, "refresh lock (airflow-provider-contacts)")  # x := i
            if self._live_holder() is not None:  # y != 0
                _Variables.delete(mine)  # b[i] := false
                self._await_free(deadline)
                continue
            _Variables.set(self._y, self._stamp(me), "refresh lock holder (airflow-provider-contacts)")  # y := i
            if _Variables.get(self._x) != me:  # contention: someone wrote x after us
                _Variables.delete(mine)
                self._await_no_contender(me, deadline)
                if self._lease(_Variables.get(self._y))[0] != me:
                    self._await_free(deadline)
                    continue
            return

    def _release(self, me: str) -> None:
        mine = self._b_prefix + me.rsplit(":", 1)[-1]
        try:
            if self._lease(_Variables.get(self._y))[0] == me:
                _Variables.delete(self._y)  # y := 0 (only our own: a lease taken over is not ours)
            _Variables.delete(mine)  # b[i] := false
        except Exception as exc:  # noqa: BLE001 - the lease ends by itself
            log.warning("Could not release the refresh lock of %r (%s); it frees itself after %.0f s",
                        self, _short_error(exc), self.lease_s)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive refresh lock across processes and machines (see the class docstring).

        :raises TokenStoreError: the Variables cannot be written, the token Variable is shadowed by
            a secrets backend, or the lock was not free within ``wait_s`` seconds.
        """
        shadow = _Variables.shadowing_backend(self.key)
        if shadow:
            raise TokenStoreError(
                f"token store {self!r}: the Variable is also defined in the {shadow} secrets backend, "
                "which Airflow reads before the metadata database, so rotated tokens written there "
                "would never be read back and the connection would be lost. No refresh was attempted. "
                f"Fix: remove {self.key!r} from {shadow} (e.g. unset AIRFLOW_VAR_{self.key.upper()}), "
                "or set the connection's 'rotation_store' extra to 'variable:<another key>'"
            )
        me = _owner_id()
        deadline = time.monotonic() + self.wait_s
        try:
            self._acquire(me, deadline)
        except TokenStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a lock Variable read/write failed: do not refresh
            self._release(me)
            raise self._fail("cannot read or write its lock Variables", exc) from None
        try:
            yield
        finally:
            self._release(me)


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_thread_lock(path: Path) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(str(path), threading.Lock())


class FileTokenStore:
    """A JSON file (mode 0600, ``TokenSet.to_json()``) with atomic replacement, locked with ``lockf``.

    **Refresh lock** (:meth:`lock`): an exclusive POSIX record lock (``fcntl.lockf``) on
    ``<path>.lock``, plus a per-process thread lock (POSIX locks belong to the process). The kernel
    drops the lock when its holder exits, so a crashed worker never blocks the others, and there is
    no lease: exclusion holds for as long as the refresh takes. Across machines it holds only on a
    shared filesystem whose POSIX locks work between hosts (NFSv4, NFSv3 with lockd); filesystems
    that do not propagate locks (some FUSE, SMB or object-store mounts) give no exclusion between
    hosts: use the Variable, SQL or Redis store there.

    **Writes**: on entry the lock writes and fsyncs a probe file of the token file's size next to it
    (then removes it), so a directory that is not writable, or a full disk, fails with
    :class:`TokenStoreError` before any refresh. Saves go to a temporary file, fsync, ``rename``,
    then fsync of the directory.
    """

    lease_s: float | None = None

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileTokenStore(path={str(self.path)!r})"

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` if the file does not exist or is empty.

        :raises TokenStoreError: the file exists (or its directory is not a directory) but cannot be read.
        """
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(
                f"token store {self!r}: cannot read the token file ({_short_error(exc)}). Fix: let the "
                "user running Airflow's workers read and write it, or set the connection's 'rotation_store' "
                "extra to another path or store"
            ) from None
        if not text.strip():
            return None
        try:
            return TokenSet.from_json(text)
        except (ValueError, TypeError):
            raise GHLConfigError(
                f"token store file {str(self.path)!r} is not a token set; delete it to re-seed it "
                "from the connection's 'refresh_token' extra"
            ) from None

    def _write_temp(self, text: str) -> str:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return tmp

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens`` atomically (temp file + fsync + rename + directory fsync)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._write_temp(tokens.to_json())
        try:
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _fail(self, what: str, exc: BaseException) -> TokenStoreError:
        return TokenStoreError(
            f"token store {self!r}: {what} ({_short_error(exc)}). No refresh was attempted, so the "
            f"stored refresh token is still valid. Fix: make {str(self.path.parent)!r} writable (and "
            "not full) for the user running Airflow's workers, or set the connection's 'rotation_store' "
            "extra to another path or store"
        )

    def probe_writable(self) -> None:
        """Write, fsync and remove a file as large as the token file next to it.

        :raises TokenStoreError: the directory cannot take the token file.
        """
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.unlink(self._write_temp(" " * max(size, 2048)))
        except OSError as exc:
            raise self._fail("cannot write the token file's directory", exc) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive refresh lock across processes (and hosts sharing the filesystem).

        :raises TokenStoreError: the lock file cannot be opened or the directory is not writable.
        """
        with _file_thread_lock(self._lock_path):
            try:
                self._lock_path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(self._lock_path, "a")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise self._fail("cannot open the lock file", exc) from None
            try:
                try:
                    fcntl.lockf(handle.fileno(), fcntl.LOCK_EX)
                except OSError as exc:
                    raise self._fail("cannot lock the lock file (does this filesystem support POSIX locks?)", exc) from None
                try:
                    self.probe_writable()
                    yield
                finally:
                    fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()


def default_variable_key(conn_id: str) -> str:
    """Variable key of the default token store of ``conn_id``."""
    return f"ghl_oauth_tokens__{conn_id}"


#: The connection extra naming the token store. Not ``token_store``: Airflow masks every extra whose
#: name contains ``token`` (``[core] sensitive_var_conn_names`` and its built-in list), so the UI
#: showed that one as ``***`` and saved it back so.
ROTATION_STORE_EXTRA = "rotation_store"
#: Former names of :data:`ROTATION_STORE_EXTRA`, still read when it is not set.
LEGACY_STORE_EXTRAS = ("token_store",)

_WARNED_STORE_EXTRAS: set[tuple[str, str]] = set()


def _masked(value: str) -> bool:
    """True for what Airflow's secrets masker puts in place of a hidden value (``***``)."""
    text = value.strip()
    return bool(text) and set(text) == {"*"}


def _masked_store_error(conn_id: str, name: str) -> GHLConfigError:
    """The error for a store extra holding ``***`` (a value Airflow's secrets masker hid)."""
    legacy = name.removeprefix("extra__ghl__") in LEGACY_STORE_EXTRAS
    if legacy:
        why = (
            "Airflow hides the value of every connection extra whose name contains 'token', so its UI "
            "showed this one as '***' and saved it back so"
        )
    else:
        why = "a masked value: check that [core] sensitive_var_conn_names does not match its name"
    fix = (
        f"put the store into the extra '{ROTATION_STORE_EXTRA}': 'variable' (the default), "
        "'variable:<key>', 'file:<path>', 'sql:<conn_id>', 'redis:<conn_id>' or a dotted path to a "
        "TokenStore class"
    )
    if legacy:
        fix += f", and delete the extra '{name}'"
    return GHLConfigError(
        f"connection {conn_id!r}: extra {name!r} is '***' ({why}), not a token store. No refresh was "
        f"attempted. Fix: {fix}"
    )


def _warn_store_extra(conn_id: str, reason: str, message: str, *args: Any) -> None:
    if (conn_id, reason) not in _WARNED_STORE_EXTRAS:
        _WARNED_STORE_EXTRAS.add((conn_id, reason))
        log.warning(message, *args)


def rotation_store_extra(extras: Mapping[str, Any], conn_id: str, *, oauth: bool = True) -> str | None:
    """The token store spec of a connection's extras, for :func:`build_token_store`.

    Read from ``rotation_store`` (or the form's ``extra__ghl__rotation_store``), else from the
    legacy ``token_store`` / ``extra__ghl__token_store``; ``None`` when none is set (the default
    Variable store). When ``rotation_store`` is set, a legacy extra is ignored (with a warning).

    :param oauth: whether the connection uses OAuth; only then does a masked value matter.
    :raises GHLConfigError: (OAuth) the extra that would be used holds ``***`` - a value Airflow
        masked - naming the extra and the fix.
    """
    from airflow_provider_contacts import CONN_TYPE

    def first(name: str) -> tuple[str, str] | None:
        for key in (name, f"extra__{CONN_TYPE}__{name}"):
            value = extras.get(key)
            if value not in (None, ""):
                return key, str(value)
        return None

    found = first(ROTATION_STORE_EXTRA)
    legacy = next((hit for hit in map(first, LEGACY_STORE_EXTRAS) if hit is not None), None)
    if found is None:
        found = legacy
    elif legacy is not None and oauth:
        _warn_store_extra(
            conn_id, "both",
            "connection %r: extra %r is ignored, %r is used; delete %r",
            conn_id, legacy[0], found[0], legacy[0],
        )
    if found is None:
        return None
    name, value = found
    if _masked(value):
        if oauth:
            raise _masked_store_error(conn_id, name)
        return None
    if oauth and name.removeprefix(f"extra__{CONN_TYPE}__") in LEGACY_STORE_EXTRAS:
        _warn_store_extra(
            conn_id, "legacy",
            "connection %r: extra %r is read as %r; rename it to %r - Airflow's UI masks extras whose "
            "name contains 'token' and would save it as '***'",
            conn_id, name, ROTATION_STORE_EXTRA, ROTATION_STORE_EXTRA,
        )
    return value.strip()


#: ``rotation_store`` prefixes of the stores whose lock a database or Redis provides.
_BACKEND_STORES = {
    "sql:": "airflow_provider_contacts.token_stores.SqlTokenStore",
    "redis:": "airflow_provider_contacts.token_stores.RedisTokenStore",
}


def build_token_store(spec: str | None, conn_id: str) -> TokenStore:
    """Build the store named by the ``rotation_store`` extra (legacy: ``token_store``) of connection ``conn_id``.

    * ``None``/``"variable"`` -> :class:`VariableTokenStore` with key :func:`default_variable_key`;
      ``"variable:<key>"`` -> the same with that key;
    * ``"file:<path>"`` -> :class:`FileTokenStore`;
    * ``"sql:<sql_conn_id>"`` -> :class:`~airflow_provider_contacts.token_stores.SqlTokenStore`
      (row ``conn_id`` of table ``ghl_oauth_tokens`` in that database);
    * ``"redis:<redis_conn_id>"`` -> :class:`~airflow_provider_contacts.token_stores.RedisTokenStore`
      (key ``ghl_oauth_tokens:{conn_id}``);
    * anything else is a dotted path to a class called with ``conn_id=...`` that must offer
      ``load()`` and ``save()`` (and should offer ``lock()``, see :class:`TokenStore`).

    :raises GHLConfigError: the spec is not understood or the class cannot be imported.
    """
    spec = (spec or "variable").strip()
    if _masked(spec):
        raise _masked_store_error(conn_id, ROTATION_STORE_EXTRA)
    if spec == "variable":
        return VariableTokenStore(default_variable_key(conn_id))
    if spec.startswith("variable:"):
        return VariableTokenStore(spec.removeprefix("variable:").strip())
    if spec.startswith("file:"):
        path = spec.removeprefix("file:").strip()
        if not path:
            raise GHLConfigError("rotation_store: 'file:' needs a path, e.g. 'file:/var/lib/airflow/ghl.json'")
        return FileTokenStore(path)
    for prefix, class_path in _BACKEND_STORES.items():
        if spec.startswith(prefix):  # loaded by path, as any store class: token_stores builds on this module
            from airflow.sdk.module_loading import import_string

            return import_string(class_path)(spec.removeprefix(prefix).strip(), key=conn_id)
    if "." not in spec:
        raise GHLConfigError(
            f"rotation_store: {spec!r} is not understood; use 'variable', 'variable:<key>', "
            "'file:<path>', 'sql:<conn_id>', 'redis:<conn_id>' or a dotted path to a TokenStore class"
        )
    from airflow.sdk.module_loading import import_string

    try:
        cls = import_string(spec)
    except ImportError as exc:
        raise GHLConfigError(f"rotation_store: cannot import {spec!r} ({exc})") from None
    store = cls(conn_id=conn_id)
    if not isinstance(store, TokenStore):
        raise GHLConfigError(f"rotation_store: {spec!r} does not provide load() and save()")
    return store


#: Suffix of a location token's store key: ``<agency key>__location__<location id>``.
LOCATION_KEY_SUFFIX = "__location__"


def build_location_token_store(spec: str | None, conn_id: str, location_id: str) -> TokenStore:
    """The store of the location tokens an agency connection mints for ``location_id``: the same
    kind of store as the connection's own (``rotation_store`` extra, :func:`build_token_store`),
    under a key of its own, so workers share each location's token as they share the agency's:

    * ``variable`` / ``variable:<key>`` -> Variable ``<key>__location__<location_id>``;
    * ``file:<path>`` -> the file ``<stem>__location__<location_id><suffix>`` beside ``<path>``;
    * ``sql:<conn>`` / ``redis:<conn>`` -> key ``<conn_id>__location__<location_id>``;
    * a dotted path -> the class built with ``conn_id="<conn_id>__location__<location_id>"``.

    A location token holds no refresh token: losing the store only costs one more mint.

    :raises GHLConfigError: the location id is not a HighLevel id, or the spec is not understood.
    """
    if not is_highlevel_id(location_id):
        raise GHLConfigError(
            f"location id {location_id!r} is not a HighLevel id (letters, digits, '_' and '-', 1..64 characters)"
        )
    suffix = f"{LOCATION_KEY_SUFFIX}{location_id}"
    spec = (spec or "variable").strip()
    if _masked(spec):
        raise _masked_store_error(conn_id, ROTATION_STORE_EXTRA)
    if spec.startswith("variable:"):
        key = spec.removeprefix("variable:").strip()
        if not key:
            raise GHLConfigError("rotation_store: the Variable key is empty; use 'variable:<key>'")
        return VariableTokenStore(key + suffix)
    if spec.startswith("file:"):
        path = Path(spec.removeprefix("file:").strip()).expanduser()
        if not str(path) or str(path) == ".":
            raise GHLConfigError("rotation_store: 'file:' needs a path, e.g. 'file:/var/lib/airflow/ghl.json'")
        return FileTokenStore(path.with_name(f"{path.stem}{suffix}{path.suffix}"))
    # "variable", "sql:", "redis:" and dotted paths: the connection's own kind of store, keyed by
    # conn_id + suffix (default_variable_key only prefixes the key).
    return build_token_store(spec, conn_id + suffix)


def agency_private_token_error(conn_id: str, needs: str) -> GHLAuthError:
    """The error for an agency connection holding a Private Integration token where an agency OAuth
    token is needed (``needs``: what was asked, e.g. "a location token for location X").

    HighLevel mints location tokens (``POST /oauth/locationToken``) and lists installed locations
    (``GET /oauth/installedLocations``) for agency OAuth tokens only (oauth.json security
    ``Agency-Access-Only``: "the Access Token generated with user type as Agency").
    """
    return GHLAuthError(
        f"connection {conn_id!r} holds an agency Private Integration token (auth_type 'private_token', "
        f"user_type 'Company'), which cannot be used for {needs}: HighLevel mints location tokens "
        "(POST /oauth/locationToken) and lists installed locations (GET /oauth/installedLocations) "
        "for agency OAuth tokens only. Fix: either make it an agency OAuth connection - install your "
        "Marketplace app for the agency (scopes oauth.readonly, oauth.write and the contacts/locations "
        "scopes) and set the extras auth_type='oauth', user_type='Company', company_id, app_id, "
        "client_id, client_secret and refresh_token - or use one connection per location with that "
        "location's own Private Integration token (extra location_id, user_type 'Location')",
        operation="get-location-access-token",  # no status: said before any request
    )


# --------------------------------------------------------------------------------------------
# Token sources
# --------------------------------------------------------------------------------------------


class TokenSource(Protocol):
    """What the hook needs from an auth method."""

    def get_access_token(self) -> str: ...

    async def aget_access_token(self) -> str: ...

    def on_unauthorized(self, used_token: str) -> bool: ...


class PrivateTokenSource:
    """A Private Integration token (or any static bearer token). A 401 cannot be fixed here."""

    def __init__(self, token: str, conn_id: str) -> None:
        if not token:
            raise GHLConfigError(
                f"connection {conn_id!r}: 'password' (Access token) is empty; put the Private "
                "Integration token there, or set extra auth_type='oauth' for an OAuth app"
            )
        mask_secret(token)
        self._token = token
        self.conn_id = conn_id
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"PrivateTokenSource(conn_id={self.conn_id!r}, token=***)"

    def get_access_token(self) -> str:
        """The static token."""
        return self._token

    async def aget_access_token(self) -> str:
        """The static token."""
        return self._token

    def on_unauthorized(self, used_token: str) -> bool:
        """A private token cannot be refreshed: always ``False``."""
        return False


_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
#: Live tokens per connection in this process, shared by all hook instances.
_LIVE_TOKENS: dict[str, TokenSet] = {}
_LOCATION_TOKENS: dict[tuple[str, str], TokenSet] = {}


def _process_lock(key: str) -> threading.RLock:
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.get(key)
        if lock is None:
            lock = _PROCESS_LOCKS[key] = threading.RLock()
        return lock


def forget_process_tokens() -> None:
    """Drop the in-process token caches (tests that simulate separate workers)."""
    with _PROCESS_LOCKS_GUARD:
        _LIVE_TOKENS.clear()
        _LOCATION_TOKENS.clear()


_WARNED_NO_LOCK: set[type] = set()


class _InvalidGrant(Exception):
    """The token endpoint said the refresh token is no longer valid."""


#: An answer whose body is not JSON (``_post_form``).
_BROKEN = object()

#: The least time one OAuth token request is given, seconds: none is started with less than this
#: left before the token store's refresh lease ends, and no retry wait ends later than this before it.
_MIN_ATTEMPT_S = 1.0


@dataclass
class OAuthSettings:
    """What :class:`OAuthTokenSource` needs from the connection (secrets are not in the repr)."""

    conn_id: str
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    user_type: str = "Location"
    company_id: str | None = None
    location_id: str | None = None
    seed_refresh_token: str | None = field(default=None, repr=False)
    seed_access_token: str | None = field(default=None, repr=False)
    api_version: str = "2021-07-28"
    timeout: tuple[float, float] = (10.0, 30.0)
    refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S


class OAuthTokenSource:
    """OAuth 2.0 tokens of one connection, rotated through a :class:`TokenStore`.

    :param settings: client credentials and endpoints.
    :param store: where the rotating tokens live.
    :param http: a callable returning the ``requests.Session`` for token calls.
    :param retry: the retry policy of the token calls: the hook's (``GHLContactsHook(retry=...)``),
        default :class:`~airflow_provider_contacts.hooks.retry.RetryPolicy()` as in the hook.
    :param process_cache: share live tokens with other sources of this connection in this process
        (``False`` only to simulate separate workers in tests).
    :param location_store: for an agency connection, builds the store of one location's tokens from
        its id (the hook passes :func:`build_location_token_store` of the connection's
        ``rotation_store``); ``None`` keeps location tokens in this process only.
    """

    def __init__(
        self,
        settings: OAuthSettings,
        store: TokenStore,
        http: Callable[[], requests.Session] | None = None,
        *,
        process_cache: bool = True,
        retry: RetryPolicy | None = None,
        location_store: Callable[[str], TokenStore] | None = None,
    ) -> None:
        if not settings.client_id or not settings.client_secret:
            raise GHLConfigError(
                f"connection {settings.conn_id!r}: OAuth needs extras 'client_id' and "
                "'client_secret' (from your HighLevel Marketplace app)"
            )
        if settings.user_type not in ("Location", "Company"):
            raise GHLConfigError(
                f"connection {settings.conn_id!r}: extra 'user_type' must be 'Location' or "
                f"'Company', not {settings.user_type!r}"
            )
        mask_secret(settings.client_secret)
        mask_secret(settings.seed_refresh_token)
        mask_secret(settings.seed_access_token)
        self.settings = settings
        self.store = store
        self._http = http or requests.Session
        self.retry = retry or RetryPolicy()
        self._session: requests.Session | None = None
        self._process_cache = process_cache
        self._local: TokenSet | None = None
        self._local_location: TokenSet | None = None
        self._lock = _process_lock(settings.conn_id) if process_cache else threading.RLock()
        self._location_lock = (
            _process_lock(f"{settings.conn_id}\x00location\x00{settings.location_id or ''}")
            if process_cache else threading.RLock()
        )
        self._location_store_factory = location_store
        self._location_store_obj: TokenStore | None = None
        self.refreshes = 0
        #: Called after each refresh this source made (the hook counts them in ``stats``).
        self.on_refresh: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"OAuthTokenSource(conn_id={self.settings.conn_id!r}, store={self.store!r})"

    # -- cached state ------------------------------------------------------------------------

    @property
    def _current(self) -> TokenSet | None:
        return _LIVE_TOKENS.get(self.settings.conn_id) if self._process_cache else self._local

    @_current.setter
    def _current(self, tokens: TokenSet) -> None:
        if self._process_cache:
            _LIVE_TOKENS[self.settings.conn_id] = tokens
        else:
            self._local = tokens

    def _location_key(self) -> tuple[str, str]:
        return (self.settings.conn_id, self.settings.location_id or "")

    @property
    def _current_location(self) -> TokenSet | None:
        if self._process_cache:
            return _LOCATION_TOKENS.get(self._location_key())
        return self._local_location

    @_current_location.setter
    def _current_location(self, tokens: TokenSet) -> None:
        if self._process_cache:
            _LOCATION_TOKENS[self._location_key()] = tokens
        else:
            self._local_location = tokens

    def current_tokens(self) -> TokenSet | None:
        """The token set this source is using right now (for tests and diagnostics)."""
        return self._current

    # -- public API --------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """A valid access token, refreshing (and rotating the store) when it is about to expire.

        For agency (``Company``) connections with a location, this is the location token (cached in
        this process and in the location's token store; minted only when neither has a fresh one).
        :raises GHLAuthError: when the refresh token is rejected and no newer one is stored, or
            HighLevel refuses a location token (the message names the location and the fix).
        """
        if self._needs_location_token():
            return self._location_token()
        return self._agency_tokens().access_token  # type: ignore[return-value]

    def _agency_tokens(self, *, force: bool = False, used_token: str | None = None) -> TokenSet:
        """The connection's own tokens (the agency's, for a Company connection), refreshed when
        about to expire; ``force``: refreshed unless another thread or worker already replaced
        ``used_token``."""
        with self._lock:
            tokens = self._current or self._load_or_seed()
            if force:
                if tokens.access_token != used_token and tokens.is_fresh(0):
                    return tokens  # another thread already has a newer token
                return self._refresh(tokens, force=True)
            if not tokens.is_fresh(self.settings.refresh_margin_s):
                tokens = self._refresh(tokens)
            return tokens

    def agency_access_token(self) -> str:
        """The connection's own access token, never exchanged for a location token: what agency
        endpoints (``GET /oauth/installedLocations``) take. Refreshed like :meth:`get_access_token`."""
        return self._agency_tokens().access_token  # type: ignore[return-value]

    def on_agency_unauthorized(self, used_token: str) -> bool:
        """A plain 401 answered an agency endpoint called with ``used_token``: refresh once."""
        self._agency_tokens(force=True, used_token=used_token)
        return True

    def agency_view(self) -> AgencyTokenView:
        """This connection's own tokens as a token source, for agency endpoints (see
        :class:`AgencyTokenView`)."""
        return AgencyTokenView(self)

    async def aget_access_token(self) -> str:
        """Async :meth:`get_access_token` (runs the blocking work in a thread)."""
        return await asyncio.to_thread(self.get_access_token)

    def on_unauthorized(self, used_token: str) -> bool:
        """Called after a plain 401 (expired or unknown token; never a scope or token-class 401,
        which the transport raises at once) with ``used_token``: get a new token once. ``True`` =
        retry. For a location token: adopt one another thread or worker minted since, else mint a
        new one (and save it to the location's store)."""
        if self._needs_location_token():
            self._location_token(used_token=used_token)
            return True
        with self._lock:
            current = self._current
            if current and current.access_token != used_token and current.is_fresh(0):
                return True  # another thread already has a newer token
            self._refresh(current or self._load_or_seed(), force=True)
            return True

    async def aon_unauthorized(self, used_token: str) -> bool:
        """Async :meth:`on_unauthorized`."""
        return await asyncio.to_thread(self.on_unauthorized, used_token)

    # -- loading and seeding -----------------------------------------------------------------

    def _reauthorised(self, stored: TokenSet | None) -> bool:
        """True if the connection's ``refresh_token`` extra is newer than what the store descends from."""
        seed_fp = fingerprint(self.settings.seed_refresh_token)
        return (
            stored is not None
            and seed_fp is not None
            and stored.seed is not None
            and stored.seed != seed_fp
            and stored.refresh_token != self.settings.seed_refresh_token
        )

    def _load_or_seed(self) -> TokenSet:
        stored = self.store.load()
        if stored is not None and not self._reauthorised(stored):
            self._current = stored
            return stored
        if not self.settings.seed_refresh_token and stored is None:
            raise GHLAuthError(
                f"connection {self.settings.conn_id!r} has no OAuth tokens yet: the token store "
                f"{self.store!r} is empty and the connection has no 'refresh_token' extra. Authorise "
                "the app (HighLevel Marketplace install) and put the refresh token into the "
                "connection's 'refresh_token' extra",
                operation="oauth",
            )
        # Seeding writes the store: under the lock, or a worker seeding late could overwrite tokens
        # another worker has just rotated with the (then spent) seed.
        with self._store_lock():
            stored = self.store.load()
            if stored is not None and not self._reauthorised(stored):
                self._current = stored
                return stored
            if stored is not None:
                log.info(
                    "Connection %r carries a new 'refresh_token' extra (the app was re-authorised): "
                    "re-seeding the token store",
                    self.settings.conn_id,
                )
            seeded = TokenSet(
                access_token=self.settings.seed_access_token or None,
                refresh_token=self.settings.seed_refresh_token,
                # The connection's access token's expiry is unknown: use it until a 401 says otherwise.
                expires_at=None,
                seed=fingerprint(self.settings.seed_refresh_token),
                user_type=self.settings.user_type,
                location_id=self.settings.location_id,
                company_id=self.settings.company_id,
            )
            self.store.save(seeded)
        self._current = seeded
        return seeded

    # -- refreshing --------------------------------------------------------------------------

    def _store_lock(self) -> contextlib.AbstractContextManager[Any]:
        lock = getattr(self.store, "lock", None)
        if callable(lock):
            return lock()
        if type(self.store) not in _WARNED_NO_LOCK:
            _WARNED_NO_LOCK.add(type(self.store))
            log.warning(
                "Token store %s has no lock(): workers in several processes that refresh at the same "
                "time can spend one single-use refresh token twice. Give it a lock() (see TokenStore)",
                type(self.store).__name__,
            )
        return contextlib.nullcontext()

    def _refresh(self, stale: TokenSet, force: bool = False) -> TokenSet:
        """Rotate the tokens (caller holds the process lock). See the module docstring."""
        with self._store_lock():
            lease_s = getattr(self.store, "lease_s", None)
            # Stop retrying the token endpoint well before the store's lease ends, so no refresh is
            # in flight once another worker may take the lock.
            deadline = time.monotonic() + 0.8 * float(lease_s) if lease_s else None
            stored = self.store.load()
            if stored is not None and stored.refresh_token and stored.refresh_token != stale.refresh_token:
                # Another worker rotated already: its refresh token is the live one.
                if stored.is_fresh(self.settings.refresh_margin_s) and not (
                    force and stored.access_token == stale.access_token
                ):
                    log.info("Adopting OAuth tokens another worker rotated for %r", self.settings.conn_id)
                    self._current = stored
                    return stored
                stale = stored
            try:
                fresh = self._call_token_endpoint(stale, deadline)
            except _InvalidGrant:
                again = self.store.load()
                if again is not None and again.refresh_token and again.refresh_token != stale.refresh_token:
                    if again.is_fresh(0):
                        log.info("Refresh token was already rotated by another worker for %r; adopting it", self.settings.conn_id)
                        self._current = again
                        return again
                    try:
                        fresh = self._call_token_endpoint(again, deadline)
                    except _InvalidGrant:
                        raise self._reauthorise_error() from None
                else:
                    raise self._reauthorise_error() from None
            # Single-use refresh tokens: persist the new one before anything uses the new access token.
            self._save_rotated(fresh)
            self._current = fresh
            self.refreshes += 1
            if self.on_refresh is not None:
                self.on_refresh()
            log.info(
                "Refreshed the OAuth access token of %r (expires %s)",
                self.settings.conn_id,
                fresh.expires_at.isoformat() if fresh.expires_at else "unknown",
            )
            return fresh

    def _save_rotated(self, fresh: TokenSet) -> None:
        """Save just-rotated tokens, retrying a few times: the old refresh token is already spent."""
        for attempt in range(4):
            try:
                self.store.save(fresh)
                return
            except Exception as exc:  # noqa: BLE001 - reported below without the value
                error = _short_error(exc) if isinstance(exc, (OSError, GHLConfigError)) else type(exc).__name__
                if attempt == 3:
                    raise TokenStoreError(
                        f"the OAuth tokens of connection {self.settings.conn_id!r} were refreshed but "
                        f"could not be written to the token store {self.store!r} ({error}); the previous "
                        "refresh token is spent. Fix the store (it accepted the lock a moment ago), then "
                        "re-authorise the app in HighLevel and put the new refresh token into the "
                        "connection's 'refresh_token' extra"
                    ) from None
                log.warning("Saving rotated OAuth tokens of %r failed (%s); retrying", self.settings.conn_id, error)
                time.sleep(0.5 * 2**attempt)

    def _reauthorise_error(self) -> GHLAuthError:
        return GHLAuthError(
            f"HighLevel rejected the refresh token of connection {self.settings.conn_id!r} "
            "(invalid_grant: already used or revoked) and the token store holds no newer one. "
            "Re-authorise the app for this "
            f"{'agency' if self.settings.user_type == 'Company' else 'location'} in HighLevel, then put "
            f"the new refresh token into the connection's 'refresh_token' extra (the store "
            f"{self.store!r} is re-seeded from it)",
            status=400,
            operation="get-access-token",
        )

    def _session_(self) -> requests.Session:
        if self._session is None:
            self._session = self._http()
        return self._session

    def _post_form(
        self, path: str, data: dict[str, str], operation: str, bearer: str | None = None,
        deadline: float | None = None, *, rotates: bool = False,
    ) -> dict[str, Any]:
        """POST a form to the OAuth API, retried under the hook's :class:`RetryPolicy`.

        What is retried, and how long to wait, are the hook's rules (:mod:`.hooks.retry`, one
        ``Attempts`` per call, as in :mod:`.hooks.transport`): a 429 after ``Retry-After`` (else one
        rate-limit window) up to ``max_throttled`` times; the statuses of ``RETRYABLE_STATUSES``,
        connection errors, timeouts and broken 2xx bodies with the policy's jittered backoff, up to
        ``max_retries`` times; everything within ``max_elapsed_s``. Any 2xx is a success
        (``/oauth/locationToken`` answers 201 live). Other answers are not retried.

        Rules of the token calls themselves:

        * ``deadline`` (``time.monotonic()`` value, the store's refresh lease): no attempt starts with
          less than :data:`_MIN_ATTEMPT_S` left, no backoff ends later than that before it, and no
          attempt's timeouts reach past it, so no token request is in flight once another worker
          may take the lock.
        * ``rotates`` (``/oauth/token``, whose answer carries the only copy of the new single-use
          refresh token): a request whose answer was lost (connection dropped, read timeout, a
          gateway 5xx) is resent with the same refresh token; if the server had rotated it, the
          resend is answered ``invalid_grant`` and :meth:`_refresh` re-reads the store, else asks
          to re-authorise. A 2xx whose body cannot be read is *not* resent (the server rotated for
          sure; a resend would only be counted as a reuse): it is returned as ``{}`` and reported
          by :meth:`_call_token_endpoint`.
        """
        url = f"{self.settings.base_url}{path}"
        headers = {"Accept": "application/json", "Version": self.settings.api_version}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        connect_s, read_s = self.settings.timeout
        attempts = self.retry.begin()
        error: GHLAPIError | None = None
        while True:
            timeout: tuple[float, float] = (connect_s, read_s)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < _MIN_ATTEMPT_S:
                    raise self._lease_over(path, operation, error)
                timeout = (min(connect_s, left), min(read_s, left))
            try:
                resp = self._session_().post(url, data=data, headers=headers, timeout=timeout)
            except requests.RequestException as exc:
                error = GHLTransportError(
                    f"no usable answer from the OAuth endpoint {path} ({type(exc).__name__})", operation=operation
                )
                wait = attempts.failed()
            else:
                status = resp.status_code
                try:
                    body: Any = resp.json()
                except ValueError:
                    body = _BROKEN
                if 200 <= status < 300:
                    if body is not _BROKEN or rotates:
                        return body if isinstance(body, dict) else {}
                    error = GHLTransportError(
                        f"the OAuth endpoint {path} answered HTTP {status} with a body that is not valid "
                        "JSON (truncated?)",
                        status=status,
                        operation=operation,
                    )
                    wait = attempts.failed()
                else:
                    body = body if isinstance(body, dict) else {}
                    message, trace_id = api_error_message(body, resp.reason or f"HTTP {status}")
                    if status == 429:
                        error = GHLRateLimitError(message, status=429, trace_id=trace_id, operation=operation)
                        wait = attempts.throttled(retry_after_s(resp.headers, DEFAULT_INTERVAL_S))
                    elif status in RETRYABLE_STATUSES:
                        error = GHLServerError(message, status=status, trace_id=trace_id, operation=operation)
                        wait = attempts.failed()
                    else:
                        raise self._oauth_error(status, body, message, trace_id, operation)
            if wait is None:
                raise error.with_message(
                    f"{error.message} (gave up after {attempts.failures + attempts.throttles} attempts, "
                    "per the hook's retry policy)"
                )
            if deadline is not None and time.monotonic() + wait > deadline - _MIN_ATTEMPT_S:
                raise self._lease_over(path, operation, error)
            log.warning(
                "%s: %s; retry %d in %.2f s", operation, error.message, attempts.failures + attempts.throttles, wait
            )
            time.sleep(wait)

    @staticmethod
    def _oauth_error(
        status: int, body: dict[str, Any], message: str, trace_id: str | None, operation: str
    ) -> Exception:
        """The error of an OAuth answer that is not retried (``_InvalidGrant`` for a spent refresh token)."""
        if body.get("error") == "invalid_grant" or "invalid_grant" in str(body.get("message", "")):
            return _InvalidGrant()
        if status >= 500:
            return GHLServerError(message, status=status, trace_id=trace_id, operation=operation)
        return GHLAuthError(
            f"{message}; check the connection's OAuth extras (client_id, client_secret, user_type, company_id)",
            status=status,
            trace_id=trace_id,
            operation=operation,
        )

    @staticmethod
    def _lease_over(path: str, operation: str, error: GHLAPIError | None) -> GHLTransportError:
        last = f" (last: {error.message})" if error is not None else ""
        return GHLTransportError(
            f"the OAuth endpoint {path} gave no usable answer before the token store's refresh lease "
            f"ends{last}; stopped so that no token request is in flight once another worker may take "
            "the lock. The stored refresh token is kept; the next attempt refreshes again",
            status=error.status if error is not None else None,
            operation=operation,
        )

    def _call_token_endpoint(self, tokens: TokenSet, deadline: float | None = None) -> TokenSet:
        if not tokens.refresh_token:
            raise self._reauthorise_error()
        data = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "user_type": self.settings.user_type,
        }
        body = self._post_form("/oauth/token", data, "get-access-token", deadline=deadline, rotates=True)
        fresh = TokenSet.from_token_response(body, seed=tokens.seed)
        if not fresh.access_token or not fresh.refresh_token:
            raise GHLAuthError(
                "the token endpoint answered without access_token/refresh_token (an empty or broken "
                "answer). It may have rotated the refresh token all the same; the stored one is kept, "
                "and if the next refresh is refused with invalid_grant the app must be re-authorised",
                operation="get-access-token",
            )
        return fresh

    # -- agency -> location ------------------------------------------------------------------

    def _needs_location_token(self) -> bool:
        return self.settings.user_type == "Company" and bool(self.settings.location_id)

    def _location_store(self) -> TokenStore | None:
        if self._location_store_obj is None and self._location_store_factory is not None:
            self._location_store_obj = self._location_store_factory(self.settings.location_id or "")
        return self._location_store_obj

    def _usable(self, tokens: TokenSet | None, used_token: str | None) -> bool:
        """A location token to use: fresh, and not the one a 401 was just answered for."""
        return (
            tokens is not None
            and tokens.access_token is not None
            and tokens.access_token != used_token
            and tokens.is_fresh(self.settings.refresh_margin_s)
            and tokens.location_id in (None, self.settings.location_id)
        )

    def _location_token(self, used_token: str | None = None) -> str:
        """The location's token: this process's, else the location store's, else a new one minted
        under the location store's lock (re-read first: another worker may have just minted)."""
        with self._location_lock:
            current = self._current_location
            if self._usable(current, used_token):
                return current.access_token  # type: ignore[union-attr,return-value]
            store = self._location_store()
            if store is None:
                minted = self._mint_location_token()
            else:
                stored = store.load()
                if self._usable(stored, used_token):
                    self._current_location = stored  # type: ignore[assignment]
                    return stored.access_token  # type: ignore[union-attr,return-value]
                with self._lock_of(store):
                    stored = store.load()
                    if self._usable(stored, used_token):
                        log.info(
                            "Adopting the location token another worker minted for %r, location %s",
                            self.settings.conn_id, self.settings.location_id,
                        )
                        self._current_location = stored  # type: ignore[assignment]
                        return stored.access_token  # type: ignore[union-attr,return-value]
                    minted = self._mint_location_token()
                    try:
                        store.save(minted)
                    except Exception as exc:  # noqa: BLE001 - the token works; other workers mint their own
                        log.warning(
                            "Could not save the location token of %r, location %s, to %r (%s); other "
                            "workers will mint their own",
                            self.settings.conn_id, self.settings.location_id, store,
                            _short_error(exc) if isinstance(exc, (OSError, GHLConfigError)) else type(exc).__name__,
                        )
            self._current_location = minted
            return minted.access_token  # type: ignore[return-value]

    def _mint_location_token(self) -> TokenSet:
        """``POST /oauth/locationToken`` with the agency token; once more after refreshing the agency
        token when the call is answered with a plain 401 (the agency token expired early)."""
        agency = self._agency_tokens()
        try:
            return self._fetch_location_token(agency)
        except GHLAuthError as exc:
            if exc.status != 401 or isinstance(exc, GHLScopeError):
                raise
            log.info(
                "%r: /oauth/locationToken refused the agency access token (401); refreshing it once",
                self.settings.conn_id,
            )
            agency = self._agency_tokens(force=True, used_token=agency.access_token)
            return self._fetch_location_token(agency)

    def _fetch_location_token(self, agency: TokenSet) -> TokenSet:
        """One ``POST /oauth/locationToken`` (operationId ``get-location-access-token``)."""
        company_id = self.settings.company_id or agency.company_id
        location_id = self.settings.location_id or ""
        if not company_id:
            raise GHLConfigError(
                f"connection {self.settings.conn_id!r}: an agency (Company) token needs extra "
                "'company_id' to obtain a location token"
            )
        try:
            body = self._post_form(
                "/oauth/locationToken",
                {"companyId": company_id, "locationId": location_id},
                "get-location-access-token",
                bearer=agency.access_token,
            )  # any 2xx: HighLevel answers 201 live where the spec says 200
        except GHLAuthError as exc:
            raise self._location_token_error(exc, company_id, location_id) from None
        location = replace(
            TokenSet.from_token_response(body),
            refresh_token=None,
            location_id=body.get("locationId") or location_id,
            company_id=company_id,
            user_type="Location",
        )
        if not location.access_token:
            raise GHLAuthError("/oauth/locationToken answered without access_token", operation="get-location-access-token")
        log.info(
            "Minted a location token for %r, location %s (expires %s)", self.settings.conn_id, location_id,
            location.expires_at.isoformat() if location.expires_at else "unknown",
        )
        return location

    def _location_token_error(self, exc: GHLAuthError, company_id: str, location_id: str) -> GHLAuthError:
        """What a refused ``/oauth/locationToken`` means, with the fix (never a token)."""
        message = exc.message.split("; check the connection's OAuth extras")[0]
        conn = self.settings.conn_id
        if exc.status == 401 and is_scope_message(message):
            if "authclass" in message.lower():
                fix = (
                    "the connection's OAuth token is not an agency token. Location tokens are minted "
                    "from an agency (Company) install: install the Marketplace app for the agency and put "
                    "its refresh token into the 'refresh_token' extra, with user_type='Company'"
                )
            else:
                fix = (
                    "the agency app lacks the 'oauth.write' scope (and 'oauth.readonly' to list installed "
                    "locations). Add them to the Marketplace app, then have the agency re-install it and "
                    "put the new refresh token into the 'refresh_token' extra: a refresh keeps the old scopes"
                )
            return GHLScopeError(
                explain(message, f"{fix} (connection {conn!r}, location {location_id}; no token refresh was spent on it)"),
                scope="oauth.write", status=401, trace_id=exc.trace_id, operation="get-location-access-token",
            )
        if exc.status == 401:
            return GHLAuthError(
                explain(message, f"HighLevel refused the agency access token of connection {conn!r} when minting a "
                        f"location token for location {location_id}"), status=401, trace_id=exc.trace_id,
                operation="get-location-access-token",
            )
        return GHLAuthError(
            f"HighLevel refused a location token for location {location_id} of company {company_id} "
            f"(HTTP {exc.status}: {exc.message}). The app is not installed on that location, or the location "
            "is not one of the agency's. Fix: install the app on the location (the agency's Marketplace "
            "page), or leave it out of the DAG's location_ids; check the connection's 'company_id' extra "
            f"(connection {conn!r})",
            status=exc.status, trace_id=exc.trace_id, operation="get-location-access-token",
        )

    def _lock_of(self, store: TokenStore) -> contextlib.AbstractContextManager[Any]:
        lock = getattr(store, "lock", None)
        return lock() if callable(lock) else contextlib.nullcontext()


class AgencyTokenView:
    """The agency (Company) access token of an :class:`OAuthTokenSource` as a token source, for
    agency endpoints such as ``GET /oauth/installedLocations``: never exchanged for a location
    token; a plain 401 refreshes it once (rotating through the token store, exactly once across
    workers)."""

    def __init__(self, source: OAuthTokenSource) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"AgencyTokenView({self.source!r})"

    def get_access_token(self) -> str:
        """The agency access token (refreshed when about to expire)."""
        return self.source.agency_access_token()

    async def aget_access_token(self) -> str:
        """Async :meth:`get_access_token` (in a thread)."""
        return await asyncio.to_thread(self.source.agency_access_token)

    def on_unauthorized(self, used_token: str) -> bool:
        """Refresh the agency token once after a plain 401."""
        return self.source.on_agency_unauthorized(used_token)

    async def aon_unauthorized(self, used_token: str) -> bool:
        """Async :meth:`on_unauthorized`."""
        return await asyncio.to_thread(self.source.on_agency_unauthorized, used_token)


__all__ = [
    "AgencyTokenView",
    "DEFAULT_LEASE_S",
    "FileTokenStore",
    "LEGACY_STORE_EXTRAS",
    "OAuthSettings",
    "OAuthTokenSource",
    "PrivateTokenSource",
    "ROTATION_STORE_EXTRA",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "TokenStoreError",
    "VariableTokenStore",
    "agency_private_token_error",
    "build_location_token_store",
    "build_token_store",
    "default_variable_key",
    "fingerprint",
    "forget_process_tokens",
    "mask_secret",
    "rotation_store_extra",
]
