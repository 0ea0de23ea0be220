"""Reading a ``ghl`` connection into typed, validated settings.

Extras are read under their short name (``location_id``) and under the prefixed name the
connection form writes (``extra__ghl__location_id``); the short name wins when both are set.
Every problem raises :class:`~airflow_provider_contacts.errors.GHLConfigError` naming the field
and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_contacts import CONN_TYPE, DEFAULT_API_VERSION, DEFAULT_BASE_URL
from airflow_provider_contacts.auth import mask_secret
from airflow_provider_contacts.errors import GHLConfigError

#: Seconds to wait for a TCP connection / for the answer, unless the connection says otherwise.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0


def _extra(extras: dict[str, Any], name: str) -> Any:
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__{CONN_TYPE}__{name}")
    return None if value == "" else value


def normalise_base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """Base URL from the connection's host: default HighLevel host, ``https://`` if scheme-less."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = schema if schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GHLConfigError(
            f"connection 'host': {host!r} is not a URL; use e.g. {DEFAULT_BASE_URL!r} or 'http://127.0.0.1:8765'"
        )
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host.rstrip("/")


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
    """Everything the hook takes from a ``ghl`` connection (secrets hidden from the repr)."""

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
    token_store: str | None
    api_version: str
    connect_timeout_s: float
    read_timeout_s: float

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
            token_store=_extra(extras, "token_store"),
            api_version=str(_extra(extras, "api_version") or DEFAULT_API_VERSION),
            connect_timeout_s=_timeout(extras, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout_s=_timeout(extras, "read_timeout", DEFAULT_READ_TIMEOUT_S),
        )
        for secret in (settings.access_token, settings.client_secret, settings.refresh_token):
            mask_secret(secret)
        return settings


__all__ = ["ConnectionSettings", "normalise_base_url"]
