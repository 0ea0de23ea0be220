"""Reading a ``ghl`` connection into typed, validated settings.

Extras are read under their short name (``location_id``) and under the prefixed name the
connection form writes (``extra__ghl__location_id``); the short name wins when both are set.
Every problem raises :class:`~airflow_provider_contacts.errors.GHLConfigError` naming the field
and the fix.

Credentials in the host (``http://user:pass@proxy.example.com``) are not used: HighLevel
authenticates with a Bearer token only (the connection's password, or OAuth), and ``requests``
would turn URL credentials into an ``Authorization: Basic`` header replacing the Bearer one. So
:attr:`ConnectionSettings.base_url` is the host without them, the password (or a lone user, which
may be a token) is registered with Airflow's secrets masker, and one warning per connection and
process says they are ignored (the URL shown as ``http://user:***@host``, by
:func:`~airflow_provider_contacts.hooks.urls.redact_url_secrets`, which also masks every error
message quoting the host).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_contacts import CONN_TYPE, DEFAULT_API_VERSION, DEFAULT_BASE_URL
from airflow_provider_contacts.auth import mask_secret, rotation_store_extra
from airflow_provider_contacts.errors import GHLConfigError
from airflow_provider_contacts.hooks.urls import redact_url_secrets, split_url_credentials

log = logging.getLogger(__name__)

#: (connection id, redacted host) pairs already warned about in this process.
_WARNED_CREDENTIALS: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()

#: Seconds to wait for a TCP connection / for the answer, unless the connection says otherwise.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0


def _extra(extras: dict[str, Any], name: str) -> Any:
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__{CONN_TYPE}__{name}")
    return None if value == "" else value


def _with_scheme(host: str | None, schema: str | None) -> str:
    """The connection's host, stripped, with ``https://`` (or the connection's http(s) schema) in
    front when it has no scheme; ``""`` when empty."""
    host = (host or "").strip()
    if host and "://" not in host:
        scheme = schema if schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    return host


def normalise_base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """Base URL from the connection's host: default HighLevel host, ``https://`` if scheme-less,
    without credentials (``user:pass@`` is dropped: see the module docstring) or trailing ``/``.

    :raises GHLConfigError: not an http(s) URL (the message shows it with its password masked).
    """
    host = _with_scheme(host, schema)
    if not host:
        return DEFAULT_BASE_URL
    host, _secrets = split_url_credentials(host)
    try:
        parts = urlsplit(host)
        hostname = parts.hostname
    except ValueError:  # e.g. an invalid IPv6 literal or port
        parts, hostname = None, None
    if parts is None or parts.scheme not in ("http", "https") or not hostname:
        raise GHLConfigError(
            f"connection 'host': {redact_url_secrets(host)!r} is not a URL; use e.g. {DEFAULT_BASE_URL!r} "
            "or 'http://127.0.0.1:8765'"
        )
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host.rstrip("/")


def _text_extra(extras: dict[str, Any], name: str) -> str | None:
    """A string extra, stripped; ``None`` when absent or blank.

    :raises GHLConfigError: the value is not a string (e.g. a number or a list)."""
    raw = _extra(extras, name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise GHLConfigError(f"connection extra {name!r}: {raw!r} is not a string; give e.g. 'redis_default'")
    return raw.strip() or None


def _timeout(extras: dict[str, Any], name: str, default: float) -> float:
    raw = _extra(extras, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0:
        raise GHLConfigError(f"connection extra {name!r}: {raw!r} is not a positive number of seconds")
    return value


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook takes from a ``ghl`` connection (secrets hidden from the repr).

    ``base_url`` never holds credentials; ``url_credentials_ignored`` is true when the connection's
    host had some (they were dropped, see the module docstring).
    """

    conn_id: str
    base_url: str
    location_id: str | None
    auth_type: Literal["private_token", "oauth"]
    access_token: str | None = field(repr=False)
    client_id: str | None
    client_secret: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    user_type: Literal["Location", "Company"]
    company_id: str | None
    token_store: str | None  # extra "rotation_store" (legacy "token_store"): a store spec, no secret
    api_version: str
    connect_timeout_s: float
    read_timeout_s: float
    url_credentials_ignored: bool = False
    #: The Marketplace app's id (extra ``app_id``), for agency discovery (``GET /oauth/installedLocations``).
    app_id: str | None = None
    #: Airflow Redis connection id of the limiter shared across processes (extra
    #: ``rate_limit_redis_conn_id``); ``None``: the in-process limiter (see ``hooks/shared_limits.py``).
    rate_limit_redis_conn_id: str | None = None
    #: Prefix of the shared limiter's Redis keys (extra ``rate_limit_key_prefix``).
    rate_limit_key_prefix: str = "ghl:ratelimit"

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts for ``requests``."""
        return (self.connect_timeout_s, self.read_timeout_s)

    @classmethod
    def from_connection(cls, conn: Any, conn_id: str) -> ConnectionSettings:
        """Validate and read an Airflow connection object."""
        try:
            extras: dict[str, Any] = dict(conn.extra_dejson or {})
        except Exception:  # noqa: BLE001 - Airflow raises various errors for broken JSON
            raise GHLConfigError(f"connection {conn_id!r}: 'extra' is not a JSON object") from None
        auth_type = str(_extra(extras, "auth_type") or "private_token").strip()
        if auth_type not in ("private_token", "oauth"):
            raise GHLConfigError(
                f"connection {conn_id!r}: extra 'auth_type' is {auth_type!r}; use 'private_token' or 'oauth'"
            )
        user_type = str(_extra(extras, "user_type") or "Location").strip()
        if user_type not in ("Location", "Company"):
            raise GHLConfigError(
                f"connection {conn_id!r}: extra 'user_type' is {user_type!r}; use 'Location' or 'Company'"
            )
        raw_host = _with_scheme(conn.host, getattr(conn, "schema", None))
        _, url_secrets = split_url_credentials(raw_host)
        for secret in url_secrets:
            mask_secret(secret)
        settings = cls(
            conn_id=conn_id,
            base_url=normalise_base_url(conn.host, getattr(conn, "port", None), getattr(conn, "schema", None)),
            location_id=_extra(extras, "location_id"),
            auth_type=auth_type,  # type: ignore[arg-type]
            access_token=conn.password or None,
            client_id=_extra(extras, "client_id"),
            client_secret=_extra(extras, "client_secret"),
            refresh_token=_extra(extras, "refresh_token"),
            user_type=user_type,  # type: ignore[arg-type]
            company_id=_extra(extras, "company_id"),
            token_store=rotation_store_extra(extras, conn_id, oauth=auth_type == "oauth"),
            api_version=str(_extra(extras, "api_version") or DEFAULT_API_VERSION),
            connect_timeout_s=_timeout(extras, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout_s=_timeout(extras, "read_timeout", DEFAULT_READ_TIMEOUT_S),
            url_credentials_ignored=bool(url_secrets),
            app_id=_extra(extras, "app_id"),
            rate_limit_redis_conn_id=_text_extra(extras, "rate_limit_redis_conn_id"),
            rate_limit_key_prefix=_text_extra(extras, "rate_limit_key_prefix") or "ghl:ratelimit",
        )
        if url_secrets:
            _warn_url_credentials(conn_id, raw_host)
        for secret in (settings.access_token, settings.client_secret, settings.refresh_token):
            mask_secret(secret)
        return settings


def _warn_url_credentials(conn_id: str, host: str) -> None:
    """Warn once per connection and process that the host's credentials are not used."""
    shown = redact_url_secrets(host.strip())
    with _WARNED_LOCK:
        if (conn_id, shown) in _WARNED_CREDENTIALS:
            return
        _WARNED_CREDENTIALS.add((conn_id, shown))
    log.warning(
        "connection %r: the host %s carries credentials; they are ignored and never sent - HighLevel "
        "authenticates with the Bearer token (the connection's password, or OAuth). Remove them from "
        "the host.",
        conn_id,
        shown,
    )


__all__ = ["ConnectionSettings", "normalise_base_url"]
