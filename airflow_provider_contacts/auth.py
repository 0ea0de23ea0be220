"""Token sources (private integration token, OAuth 2.0) and OAuth token stores.

**Token sources** give the hook (and triggers) the bearer token to send:

* :class:`PrivateTokenSource` - a Private Integration token, used as is.
* :class:`OAuthTokenSource` - OAuth 2.0 access tokens, refreshed proactively before they expire and
  once after a 401. HighLevel refresh tokens are **single-use**: the new refresh token is saved to
  the token store *before* the new access token is used, and refreshes are race-safe:

  - within one process, refreshes of one connection are serialised by a lock;
  - across processes/workers, the store is re-read right before refreshing, and tokens another
    worker already rotated are adopted instead of spending an already-used refresh token;
  - an ``invalid_grant`` answer re-reads the store once more (another worker may have rotated a
    moment ago) and otherwise fails with :class:`GHLAuthError` saying what to re-authorise.

  Agency (``user_type="Company"``) tokens are exchanged for a location token through
  ``POST /oauth/locationToken``.

**Token stores** (:class:`TokenStore`) persist the rotating tokens: :class:`VariableTokenStore`
(default, one Airflow Variable per connection, JSON), :class:`FileTokenStore` (local file, atomic
writes, ``fcntl`` lock across processes), or any class named by dotted path (e.g. one writing to a
secrets backend).

A custom store is any class taking ``conn_id`` with ``load()``/``save()`` (and optionally a
``lock()`` context manager), named in the connection's ``token_store`` extra by dotted path, e.g.
one keeping the tokens in a secrets manager::

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

Tokens and secrets are registered with Airflow's secrets masker and never put in log lines,
exception messages or reprs.

Variable stores and caching: with Airflow's secrets cache on (``[secrets] use_cache``), a re-read
inside a task may return a cached value for up to the cache TTL; the ``invalid_grant`` re-read
still recovers, but leave the cache off for token Variables if workers refresh often.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import requests

from airflow_provider_contacts.errors import GHLAuthError, GHLConfigError, GHLTransportError, api_error_message

log = logging.getLogger(__name__)

#: Refresh an OAuth access token this long before it expires (capped at a fifth of its lifetime).
DEFAULT_REFRESH_MARGIN_S = 300.0


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

    ``load`` returns the stored :class:`TokenSet` or ``None``; ``save`` replaces it. A store may also
    offer ``lock()`` (a context manager) to exclude other processes during a refresh.
    """

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


def _in_task_process() -> bool:
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class VariableTokenStore:
    """One Airflow Variable (JSON) per connection; default key ``ghl_oauth_tokens__<conn_id>``.

    Inside a task it uses the Task SDK (``airflow.sdk.Variable``, written through the API server);
    outside a task (scripts, tests, the triggerer's helpers) it uses the metadata database directly.
    Variables offer no cross-process lock: the OAuth source re-reads before refreshing instead.
    """

    def __init__(self, key: str) -> None:
        if not key:
            raise GHLConfigError("token_store: the Variable key is empty; use 'variable:<key>'")
        self.key = key

    def __repr__(self) -> str:
        return f"VariableTokenStore(key={self.key!r})"

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` if the Variable does not exist or is empty."""
        if _in_task_process():
            from airflow.sdk import Variable

            raw = Variable.get(self.key, default=None)
        else:
            from airflow.models import Variable as DBVariable

            raw = DBVariable.get(self.key, default_var=None)
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
        value = tokens.to_json()
        description = "HighLevel OAuth tokens (rotated by airflow-provider-contacts; keep secret)"
        if _in_task_process():
            from airflow.sdk import Variable

            Variable.set(self.key, value, description=description)
        else:
            from airflow.models import Variable as DBVariable

            DBVariable.set(self.key, value, description=description)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """No cross-process lock for Variables (the re-read protocol covers races)."""
        return contextlib.nullcontext()


class FileTokenStore:
    """A JSON file (mode 0600) with atomic replacement and an ``fcntl`` lock file next to it.

    ``lock()`` takes an exclusive lock on ``<path>.lock``, so refreshes by several processes on one
    machine are fully serialised. For local use and single-host deployments.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileTokenStore(path={str(self.path)!r})"

    def load(self) -> TokenSet | None:
        """The stored tokens, or ``None`` if the file does not exist or is empty."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            return TokenSet.from_json(text)
        except (ValueError, TypeError):
            raise GHLConfigError(
                f"token store file {str(self.path)!r} is not a token set; delete it to re-seed it "
                "from the connection's 'refresh_token' extra"
            ) from None

    def save(self, tokens: TokenSet) -> None:
        """Write ``tokens`` atomically (temp file + fsync + rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(tokens.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive cross-process lock for the duration of a refresh."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def default_variable_key(conn_id: str) -> str:
    """Variable key of the default token store of ``conn_id``."""
    return f"ghl_oauth_tokens__{conn_id}"


def build_token_store(spec: str | None, conn_id: str) -> TokenStore:
    """Build the store named by the ``token_store`` extra.

    ``None``/``"variable"`` -> :class:`VariableTokenStore` with the default key; ``"variable:<key>"``;
    ``"file:<path>"`` -> :class:`FileTokenStore`; anything else is a dotted path to a class that is
    called with ``conn_id=...`` and must offer ``load()`` and ``save()``.
    """
    spec = (spec or "variable").strip()
    if spec == "variable":
        return VariableTokenStore(default_variable_key(conn_id))
    if spec.startswith("variable:"):
        return VariableTokenStore(spec.removeprefix("variable:").strip())
    if spec.startswith("file:"):
        path = spec.removeprefix("file:").strip()
        if not path:
            raise GHLConfigError("token_store: 'file:' needs a path, e.g. 'file:/var/lib/airflow/ghl.json'")
        return FileTokenStore(path)
    if "." not in spec:
        raise GHLConfigError(
            f"token_store: {spec!r} is not understood; use 'variable', 'variable:<key>', "
            "'file:<path>' or a dotted path to a TokenStore class"
        )
    from airflow.sdk.module_loading import import_string

    try:
        cls = import_string(spec)
    except ImportError as exc:
        raise GHLConfigError(f"token_store: cannot import {spec!r} ({exc})") from None
    store = cls(conn_id=conn_id)
    if not isinstance(store, TokenStore):
        raise GHLConfigError(f"token_store: {spec!r} does not provide load() and save()")
    return store


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


class _InvalidGrant(Exception):
    """The token endpoint said the refresh token is no longer valid."""


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
    :param process_cache: share live tokens with other sources of this connection in this process
        (``False`` only to simulate separate workers in tests).
    """

    def __init__(
        self,
        settings: OAuthSettings,
        store: TokenStore,
        http: Callable[[], requests.Session] | None = None,
        *,
        process_cache: bool = True,
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
        self._session: requests.Session | None = None
        self._process_cache = process_cache
        self._local: TokenSet | None = None
        self._local_location: TokenSet | None = None
        self._lock = _process_lock(settings.conn_id) if process_cache else threading.RLock()
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

        For agency (``Company``) connections with a location, this is the location token.
        :raises GHLAuthError: when the refresh token is rejected and no newer one is stored.
        """
        with self._lock:
            tokens = self._current or self._load_or_seed()
            if not tokens.is_fresh(self.settings.refresh_margin_s):
                tokens = self._refresh(tokens)
            if self._needs_location_token():
                return self._location_token(tokens)
            return tokens.access_token  # type: ignore[return-value]

    async def aget_access_token(self) -> str:
        """Async :meth:`get_access_token` (runs the blocking work in a thread)."""
        return await asyncio.to_thread(self.get_access_token)

    def on_unauthorized(self, used_token: str) -> bool:
        """Called after a 401 with ``used_token``: get a new token once. ``True`` = retry."""
        with self._lock:
            if self._needs_location_token():
                location = self._current_location
                if location and location.access_token != used_token:
                    return True
                tokens = self._current or self._load_or_seed()
                if tokens.access_token == used_token or not tokens.is_fresh(self.settings.refresh_margin_s):
                    tokens = self._refresh(tokens, force=True)
                self._fetch_location_token(tokens)
                return True
            current = self._current
            if current and current.access_token != used_token and current.is_fresh(0):
                return True  # another thread already has a newer token
            self._refresh(current or self._load_or_seed(), force=True)
            return True

    async def aon_unauthorized(self, used_token: str) -> bool:
        """Async :meth:`on_unauthorized`."""
        return await asyncio.to_thread(self.on_unauthorized, used_token)

    # -- loading and seeding -----------------------------------------------------------------

    def _load_or_seed(self) -> TokenSet:
        stored = self.store.load()
        seed_fp = fingerprint(self.settings.seed_refresh_token)
        reauthorised = (
            stored is not None
            and seed_fp is not None
            and stored.seed is not None
            and stored.seed != seed_fp
            and stored.refresh_token != self.settings.seed_refresh_token
        )
        if stored is not None and not reauthorised:
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
            seed=seed_fp,
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
        return lock() if callable(lock) else contextlib.nullcontext()

    def _refresh(self, stale: TokenSet, force: bool = False) -> TokenSet:
        """Rotate the tokens (caller holds the process lock). See the module docstring."""
        with self._store_lock():
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
                fresh = self._call_token_endpoint(stale)
            except _InvalidGrant:
                again = self.store.load()
                if again is not None and again.refresh_token and again.refresh_token != stale.refresh_token:
                    if again.is_fresh(0):
                        log.info("Refresh token was already rotated by another worker for %r; adopting it", self.settings.conn_id)
                        self._current = again
                        return again
                    try:
                        fresh = self._call_token_endpoint(again)
                    except _InvalidGrant:
                        raise self._reauthorise_error() from None
                else:
                    raise self._reauthorise_error() from None
            # Single-use refresh tokens: persist the new one before anything uses the new access token.
            self.store.save(fresh)
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

    def _post_form(self, path: str, data: dict[str, str], operation: str, bearer: str | None = None) -> dict[str, Any]:
        """POST a form to the OAuth API with a few retries on network errors and 5xx."""
        url = f"{self.settings.base_url}{path}"
        headers = {"Accept": "application/json", "Version": self.settings.api_version}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        last_error: str = ""
        for attempt in range(4):
            if attempt:
                time.sleep(min(4.0, 0.25 * 2**attempt))
            try:
                resp = self._session_().post(url, data=data, headers=headers, timeout=self.settings.timeout)
            except requests.RequestException as exc:
                last_error = type(exc).__name__
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                last_error = f"HTTP {resp.status_code}"
                continue
            try:
                body = resp.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                body = {}  # an empty or non-object answer: judged by the status alone
            if resp.ok:
                return body
            if body.get("error") == "invalid_grant" or "invalid_grant" in str(body.get("message", "")):
                raise _InvalidGrant()
            message, trace_id = api_error_message(body, resp.reason or f"HTTP {resp.status_code}")
            raise GHLAuthError(
                f"{message}; check the connection's OAuth extras (client_id, client_secret, user_type, company_id)",
                status=resp.status_code,
                trace_id=trace_id,
                operation=operation,
            )
        raise GHLTransportError(
            f"the OAuth endpoint {path} did not answer usefully after 4 attempts ({last_error})",
            operation=operation,
        )

    def _call_token_endpoint(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise self._reauthorise_error()
        data = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "user_type": self.settings.user_type,
        }
        body = self._post_form("/oauth/token", data, "get-access-token")
        fresh = TokenSet.from_token_response(body, seed=tokens.seed)
        if not fresh.access_token or not fresh.refresh_token:
            raise GHLAuthError(
                "the token endpoint answered without access_token/refresh_token",
                operation="get-access-token",
            )
        return fresh

    # -- agency -> location ------------------------------------------------------------------

    def _needs_location_token(self) -> bool:
        return self.settings.user_type == "Company" and bool(self.settings.location_id)

    def _location_token(self, agency: TokenSet) -> str:
        location = self._current_location
        if location is None or not location.is_fresh(self.settings.refresh_margin_s):
            location = self._fetch_location_token(agency)
        return location.access_token  # type: ignore[return-value]

    def _fetch_location_token(self, agency: TokenSet) -> TokenSet:
        company_id = self.settings.company_id or agency.company_id
        if not company_id:
            raise GHLConfigError(
                f"connection {self.settings.conn_id!r}: an agency (Company) token needs extra "
                "'company_id' to obtain a location token"
            )
        body = self._post_form(
            "/oauth/locationToken",
            {"companyId": company_id, "locationId": self.settings.location_id or ""},
            "get-location-access-token",
            bearer=agency.access_token,
        )
        location = replace(
            TokenSet.from_token_response(body),
            refresh_token=None,
            location_id=body.get("locationId") or self.settings.location_id,
        )
        if not location.access_token:
            raise GHLAuthError("/oauth/locationToken answered without access_token", operation="get-location-access-token")
        self._current_location = location
        return location


__all__ = [
    "FileTokenStore",
    "OAuthSettings",
    "OAuthTokenSource",
    "PrivateTokenSource",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "VariableTokenStore",
    "build_token_store",
    "default_variable_key",
    "fingerprint",
    "forget_process_tokens",
    "mask_secret",
]
