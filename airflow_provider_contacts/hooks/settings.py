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

Extras the provider does not read are not ignored silently (:func:`_read_unknown_extras`): the
connection's ``extra`` is compared with the form's fields (:data:`~airflow_provider_contacts.CONN_FIELDS`,
plus the former ``token_store``), and

* a field spelled another way - HighLevel's own camelCase (``locationId``, ``clientId``,
  ``refreshToken``, ``companyId``), other case, ``-`` or spaces (``Location ID``) - is read as that
  field when the field itself is not set (nothing can be lost: no two fields spell alike). When both
  are set to different values, :class:`GHLConfigError` names both keys;
* any other unknown key is named with the field it is closest to (``difflib``), if any;
* one warning per connection and process lists them all, with the fix - never a value;
* a key close to a field the connection needs (``location_id``, but for an agency connection;
  with OAuth ``client_id`` and ``client_secret``, and ``company_id`` for an agency) while that field
  is not set is an error that says which key to rename: the value was surely meant for it.

Keys that Airflow itself writes are not reported: the form's prefixed ``extra__ghl__<field>``, the
fields of another connection type's form (``extra__<type>__...``, left by a type change) and
``__dunder__`` keys such as Airflow's ``__extra__``.

The ``location_id`` extra is checked where it is read: a HighLevel id (the rule of
:func:`~airflow_provider_contacts.hooks.paths.is_highlevel_id`; surrounding spaces are dropped), else
:class:`GHLConfigError` naming the connection, the extra and the fix - before any request.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_contacts import CONN_FIELDS, CONN_TYPE, DEFAULT_API_VERSION, DEFAULT_BASE_URL
from airflow_provider_contacts.auth import LEGACY_STORE_EXTRAS, mask_secret, rotation_store_extra
from airflow_provider_contacts.errors import GHLConfigError
from airflow_provider_contacts.hooks.paths import is_highlevel_id, not_an_id
from airflow_provider_contacts.hooks.shared_limits import DEFAULT_KEY_PREFIX
from airflow_provider_contacts.hooks.urls import redact_url_secrets, split_url_credentials

log = logging.getLogger(__name__)

#: (connection id, redacted host) pairs already warned about in this process.
_WARNED_CREDENTIALS: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()
#: (connection id, unknown extra keys) already warned about in this process.
_WARNED_EXTRAS: set[tuple[str, tuple[str, ...]]] = set()

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
    rate_limit_key_prefix: str = DEFAULT_KEY_PREFIX

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
        extras, sources, near = _read_unknown_extras(extras, conn_id)
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
        _check_near_misses(extras, near, conn_id, auth_type, user_type)
        raw_host = _with_scheme(conn.host, getattr(conn, "schema", None))
        _, url_secrets = split_url_credentials(raw_host)
        for secret in url_secrets:
            mask_secret(secret)
        settings = cls(
            conn_id=conn_id,
            base_url=normalise_base_url(conn.host, getattr(conn, "port", None), getattr(conn, "schema", None)),
            location_id=_location_extra(extras, conn_id, sources.get("location_id")),
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
            rate_limit_key_prefix=_text_extra(extras, "rate_limit_key_prefix") or DEFAULT_KEY_PREFIX,
        )
        if url_secrets:
            _warn_url_credentials(conn_id, raw_host)
        for secret in (settings.access_token, settings.client_secret, settings.refresh_token):
            mask_secret(secret)
        return settings


def _location_extra(extras: dict[str, Any], conn_id: str, source: str | None = None) -> str | None:
    """The ``location_id`` extra, stripped; ``None`` when unset.

    :param source: the key it was read from when not ``location_id`` itself (e.g. ``locationId``).
    :raises GHLConfigError: it is not a HighLevel id (the rule of the path builder), naming the
        connection, the key it was read from and the fix - before any request.
    """
    raw = _extra(extras, "location_id")
    value = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a JSON number: taken as the id it spells
    if value in (None, ""):
        return None
    if is_highlevel_id(value):
        return value
    key = source or ("location_id" if extras.get("location_id") not in (None, "") else f"{_PREFIX}location_id")
    raise GHLConfigError(
        f"connection {conn_id!r}: the extra {key!r} is {not_an_id(value)}; set it to the id of the "
        "location (sub-account) - in HighLevel, Settings > Business Profile, e.g. 've9EPM428h8vShlRW1KT'"
    )


# -- extras the provider does not read ------------------------------------------------------------
_PREFIX = f"extra__{CONN_TYPE}__"
#: Extras whose name says they hold a secret: their values are never shown.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "passphrase", "apikey", "privatekey",
                 "authorization", "credential", "keyfile", "cookie")
#: Unknown keys that hold what belongs into the connection's password (the Private Integration token).
_TOKEN_KEYS = {"token", "accesstoken", "privatetoken", "apitoken", "apikey", "bearertoken", "authtoken",
               "privateintegrationtoken", "pit", "password"}
_NOT_A_SETTING = f"it is not a setting of a {CONN_TYPE!r} connection"
#: difflib ratio from which an unknown key is taken for a misspelt field.
_CLOSE = 0.75


def _known_fields() -> tuple[str, ...]:
    return (*CONN_FIELDS, *LEGACY_STORE_EXTRAS)


def _squash(name: str) -> str:
    """``name`` lower case, without ``_``, ``-``, spaces ...: ``locationId``, ``Location ID`` and
    ``location-id`` all give ``locationid``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _snake(name: str) -> str:
    """camelCase / kebab-case / spaced ``name`` in snake_case: ``locationId`` -> ``location_id``."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def is_secret_key(name: str) -> bool:
    """Whether an extra's name says it holds a secret (its value is never logged or shown)."""
    squashed = _squash(name)
    return any(word in squashed for word in _SECRET_WORDS)


def _shown_key(key: str) -> str:
    """A key as named in messages (a very long one - maybe a value pasted as a key - is cut)."""
    return repr(key) if len(key) <= 48 else f"{key[:12]!r}... (a {len(key)}-character key)"


def _closest(key: str) -> str | None:
    """The field an unknown ``key`` is most likely a misspelling of (``None``: none is close)."""
    fields = _known_fields()
    found = difflib.get_close_matches(_snake(key), fields, n=1, cutoff=_CLOSE)
    if found:
        return found[0]
    squashed = {_squash(f): f for f in fields}
    found = difflib.get_close_matches(_squash(key), list(squashed), n=1, cutoff=_CLOSE)
    return squashed[found[0]] if found else None


def _needed(field: str, auth_type: str, user_type: str) -> bool:
    """Whether the connection needs ``field`` (then a misspelt key for it is an error)."""
    if field == "location_id":
        return user_type == "Location"  # (an agency connection works without one: every location)
    if auth_type == "oauth":
        return field in ("client_id", "client_secret") or (field == "company_id" and user_type == "Company")
    return False


def _read_unknown_extras(extras: dict[str, Any], conn_id: str) -> tuple[dict[str, Any], dict[str, str], dict[str, list[str]]]:
    """``(extras, sources, near)``: ``extras`` with each field spelled another way read as that
    field (``sources``: field -> the key it was read from), and the keys close to each field
    (``near``, for :func:`_check_near_misses`); after one warning per connection and process
    naming every key the provider does not read, with the fix, never a value (module docstring).

    :raises GHLConfigError: a field and another spelling of it hold different values.
    """
    fields = set(_known_fields())
    by_squash = {_squash(f): f for f in fields}
    aliases: dict[str, list[str]] = {}  # field -> its other spellings present
    near: dict[str, list[str]] = {}  # field -> keys close to it
    notes: dict[str, str] = {}  # key -> what is wrong with it, and the fix
    for key in extras:
        if not isinstance(key, str) or key in fields:
            continue
        if key.startswith(_PREFIX) and key.removeprefix(_PREFIX) in fields:
            continue  # the form's prefixed name
        if key.startswith("__") or (key.startswith("extra__") and not key.startswith(_PREFIX)):
            continue  # Airflow's own (``__extra__``), or left by the form of another connection type
        base = key.removeprefix(_PREFIX)
        if (is_secret_key(key) or _squash(base) in _TOKEN_KEYS) and isinstance(extras[key], str):
            mask_secret(extras[key])  # a secret kept under a name the provider does not read
        field = by_squash.get(_squash(base))
        if field is not None:
            aliases.setdefault(field, []).append(key)
            notes[key] = f"extra {_shown_key(key)} is read as {field!r}: rename it to {field!r}"
        elif _squash(base) in _TOKEN_KEYS:
            notes[key] = (
                f"extra {_shown_key(key)} is not read: the Private Integration token goes into the "
                "connection's password (the form's 'Access token' field)"
            )
        elif (field := _closest(base)) is not None:
            near.setdefault(field, []).append(key)
            notes[key] = f"extra {_shown_key(key)} is not read: did you mean {field!r}? Rename it to {field!r}"
        else:
            notes[key] = f"extra {_shown_key(key)} is not read: {_NOT_A_SETTING}"
    if not notes:
        return extras, {}, {}

    resolved = dict(extras)
    sources: dict[str, str] = {}
    for field, keys in aliases.items():
        own_key = field if extras.get(field) not in (None, "") else f"{_PREFIX}{field}"
        own = _extra(extras, field)
        given = [(own_key, own)] if own is not None else []
        given += [(k, extras[k]) for k in keys if extras[k] not in (None, "")]
        if len({repr(v.strip() if isinstance(v, str) else v) for _, v in given}) > 1:
            names = " and ".join(repr(k) for k, _ in given)
            shown = "" if is_secret_key(field) else " (" + ", ".join(f"{k!r}: {v!r}" for k, v in given) + ")"
            raise GHLConfigError(
                f"connection {conn_id!r}: the extras {names} both set {field!r}, to different values{shown}; "
                f"keep the right value under {field!r} and delete the other"
            )
        if own is None and given:
            resolved[field] = given[0][1]
            sources[field] = given[0][0]
    unknown = any(note.endswith(_NOT_A_SETTING) for note in notes.values())
    _warn_once(
        _WARNED_EXTRAS, (conn_id, tuple(sorted(notes))),
        "connection %r: %s.%s",
        conn_id, "; ".join(notes.values()),
        f" (The extras of a {CONN_TYPE!r} connection: {', '.join(CONN_FIELDS)}.)" if unknown else "",
    )
    return resolved, sources, near


def _check_near_misses(
    extras: dict[str, Any], near: dict[str, list[str]], conn_id: str, auth_type: str, user_type: str
) -> None:
    """:raises GHLConfigError: a field the connection needs is not set while a key close to it is."""
    for field, keys in near.items():
        if _extra(extras, field) is None and _needed(field, auth_type, user_type):
            raise GHLConfigError(
                f"connection {conn_id!r}: the extra {field!r} is not set, but the connection has "
                f"{' and '.join(_shown_key(k) for k in keys)}: rename it to {field!r}"
            )


def _warn_once(seen: set[Any], key: Any, message: str, *args: Any) -> None:
    with _WARNED_LOCK:
        if key in seen:
            return
        seen.add(key)
    log.warning(message, *args)


def _warn_url_credentials(conn_id: str, host: str) -> None:
    """Warn once per connection and process that the host's credentials are not used."""
    shown = redact_url_secrets(host.strip())
    _warn_once(
        _WARNED_CREDENTIALS, (conn_id, shown),
        "connection %r: the host %s carries credentials; they are ignored and never sent - HighLevel "
        "authenticates with the Bearer token (the connection's password, or OAuth). Remove them from "
        "the host.",
        conn_id,
        shown,
    )


__all__ = ["ConnectionSettings", "normalise_base_url"]
