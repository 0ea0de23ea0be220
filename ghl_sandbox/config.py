"""Run-time configuration of the sandbox (``SandboxConfig``).

Every field can be given to ``SandboxServer``, on the command line (``--<field-with-dashes>``) and
changed at run time with ``SandboxAdmin.configure(**fields)``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "504", "delay", "drop", "applied_lost")
"""Every fault the sandbox can inject (see ``faults.py``). All but ``applied_lost`` leave the request
unapplied (``delay`` serves it late); ``applied_lost`` applies it and then loses the answer."""

LOST_ANSWER_MODES: tuple[str, ...] = ("close", "drop", "502", "504")
"""How an ``applied_lost`` fault loses the answer of a request it applied: ``close`` (the connection
is closed without any response), ``drop`` (headers and part of a body, then closed), ``502``/``504``
(a gateway's error answer)."""

ALL_SCOPES: tuple[str, ...] = (
    "contacts.readonly",
    "contacts.write",
    "locations.readonly",
    "locations/tasks.readonly",
    "locations/tasks.write",
    "locations/customFields.readonly",
    "locations/customFields.write",
    "oauth.readonly",
    "oauth.write",
)
"""Scopes the sandbox knows (names from ghl-oauth/Scopes.md)."""

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s|ms)?\s*$")


def parse_rate_limit(value: str | None) -> tuple[int, float] | None:
    """Parse ``"100/10"`` (100 requests per 10 s; ``"5/500ms"`` also works) into ``(max, seconds)``.

    ``None``, ``""``, ``"off"`` and ``"none"`` mean no burst limit.
    """
    if value is None or str(value).strip().lower() in ("", "off", "none", "0"):
        return None
    m = _RATE_RE.match(str(value))
    if not m:
        raise ValueError(
            f"rate_limit: {value!r} is not '<requests>/<seconds>' (e.g. '100/10' for HighLevel's burst limit), "
            "or None to disable"
        )
    count, window, unit = int(m.group(1)), float(m.group(2)), m.group(3) or "s"
    seconds = window / 1000.0 if unit == "ms" else window
    if count <= 0 or seconds <= 0:
        raise ValueError(f"rate_limit: {value!r} needs a positive request count and window")
    return count, seconds


def _names(value: Any) -> tuple[str, ...]:
    """A tuple of names from a tuple/list or a comma-separated string."""
    if isinstance(value, str):
        return tuple(k.strip() for k in value.split(",") if k.strip())
    return tuple(str(k) for k in value)


def _operation_ids() -> tuple[str, ...]:
    """Every API operationId the sandbox serves (imported late: the route modules import this one)."""
    from .app import OPERATIONS

    return tuple(OPERATIONS)


@dataclass
class SandboxConfig:
    """Everything that shapes a sandbox run. Units are in the field names (``_s``, ``_ms``).

    Data: ``seed`` and ``contacts`` (per seeded location), ``locations`` (number of locations,
    all under one agency), ``tasks_per_contact``/``notes_per_contact`` (mean of the long-tailed
    distribution; roughly 1 contact in 100 gets 50+ of each).

    Auth: ``access_token_lifetime_s`` of OAuth access tokens and issued tokens (the private token
    never expires); ``api_version`` is the only accepted ``Version`` header.

    Limits: ``rate_limit`` burst window ``"<n>/<seconds>"`` per (integration, location) or
    ``None`` for none; ``daily_limit`` requests per UTC day per (integration, location).

    Faults: ``fault_rate`` (0..1) of API requests get one of ``fault_kinds``; ``fault_delay_ms``
    for the "delay" kind; ``latency_ms`` added to every API request. Writes (operations that change
    something: every POST/PUT/DELETE but the two searches; ``POST /oauth/token`` is one, as a refresh
    spends the refresh token) not faulted by that draw get a second one: ``write_fault_rate`` of them
    get one of ``write_fault_kinds`` (default ``applied_lost``: applied, then the answer is lost in
    one of ``lost_answer_modes``). ``fault_operations`` limits both draws to those operationIds;
    ``fault_exempt_operations`` are never faulted.

    Fidelity: ``strict_spec=False`` (the default) answers the way the LIVE API does
    (``ghl-live-notes.md``): 400 ``Contact not found`` instead of 404, 401 for a missing scope and
    for an agency token on a location endpoint, live search shapes (``address``, ``dateOfBirth``
    in epoch ms, extra fields), 201 from ``/oauth/locationToken``. ``strict_spec=True`` answers
    with the spec's own shapes and statuses. ``search_lag_s`` delays changes in
    ``POST /contacts/search`` (HighLevel's search index lags; 0 = immediate).

    Token scopes: ``token_scopes`` (``None``: every scope) minus ``missing_scopes`` is what the
    seeded private integration tokens, and tokens or OAuth apps minted without explicit scopes,
    are granted; e.g. ``missing_scopes=("locations/tasks.readonly",)`` for a location whose token
    cannot use the location task search.

    Quirks of the real API (all on by default, as on HighLevel): ``tasks_without_updated_at``
    (tasks carry no update timestamp), ``activity_touches_contact=False`` (task and note changes
    leave the contact's ``dateUpdated`` alone), ``create_422_after_create_rate`` (fraction of
    ``POST /contacts/`` answered 422 although the contact was created), ``allow_duplicates``
    (the location's "Allow Duplicate Contact" setting, off by default) with
    ``duplicate_match_order`` (fields checked for duplicates and upsert matching, in order).

    Webhooks (``webhooks.py``; nothing runs while no URL is subscribed): ``webhook_urls`` get a
    signed event for every change (more at run time through ``/_sandbox/webhooks/subscriptions``);
    ``webhook_signatures`` (``rsa`` -> ``x-wh-signature``, ``ed25519`` -> ``x-ghl-signature``) with
    keys random per process or derived from ``webhook_key_seed`` (RSA of ``webhook_rsa_key_bits``).
    Delivery as on HighLevel: only a 429 is retried, ``webhook_retry_interval_s`` (600) plus up to
    ``webhook_retry_jitter_s`` (60) apart, at most ``webhook_max_retries`` (6) times, every delay
    multiplied by ``webhook_time_scale`` (0.001: 10 minutes become 0.6 s); ``webhook_timeout_s``
    per request; ``webhook_loss_rate`` of deliveries never sent, ``webhook_duplicate_rate`` sent twice.
    """

    seed: int = 7
    contacts: int = 200
    locations: int = 1
    tasks_per_contact: float = 1.5
    notes_per_contact: float = 1.0
    access_token_lifetime_s: float = 86_400
    refresh_token_lifetime_s: float = 365 * 86_400
    api_version: str = "2021-07-28"
    rate_limit: str | None = None
    daily_limit: int | None = 200_000
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("500", "502", "503")
    fault_delay_ms: float = 1500.0
    write_fault_rate: float = 0.0
    write_fault_kinds: tuple[str, ...] = ("applied_lost",)
    lost_answer_modes: tuple[str, ...] = LOST_ANSWER_MODES
    fault_operations: tuple[str, ...] = ()
    fault_exempt_operations: tuple[str, ...] = ()
    tasks_without_updated_at: bool = True
    activity_touches_contact: bool = False
    create_422_after_create_rate: float = 0.0
    allow_duplicates: bool = False
    duplicate_match_order: tuple[str, ...] = ("email", "phone")
    max_search_page_limit: int = 500
    max_search_window: int = 10_000
    strict_spec: bool = False
    search_lag_s: float = 0.0
    token_scopes: tuple[str, ...] | None = None
    missing_scopes: tuple[str, ...] = ()
    # -- webhooks (``webhooks.py``; off while no URL is subscribed) --------------------------------
    webhook_urls: tuple[str, ...] = ()
    webhook_signatures: tuple[str, ...] = ("rsa", "ed25519")
    webhook_key_seed: str | None = None
    webhook_rsa_key_bits: int = 2048
    webhook_time_scale: float = 1.0
    webhook_retry_interval_s: float = 600.0
    webhook_retry_jitter_s: float = 60.0
    webhook_max_retries: int = 6
    webhook_timeout_s: float = 10.0
    webhook_loss_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field and the fix when a value cannot work."""
        if self.contacts < 0:
            raise ValueError("contacts: must be >= 0")
        if self.locations < 1:
            raise ValueError("locations: must be >= 1")
        parse_rate_limit(self.rate_limit)
        if self.daily_limit is not None and self.daily_limit <= 0:
            raise ValueError("daily_limit: must be a positive number of requests per day, or None")
        for name in ("fault_rate", "write_fault_rate", "create_422_after_create_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name}: {value!r} is a fraction and must be between 0.0 and 1.0")
        for name, allowed in (("fault_kinds", FAULT_KINDS), ("write_fault_kinds", FAULT_KINDS),
                              ("lost_answer_modes", LOST_ANSWER_MODES)):
            value = _names(getattr(self, name))
            setattr(self, name, value)
            unknown = [k for k in value if k not in allowed]
            if unknown or not value:
                raise ValueError(f"{name}: {unknown or 'empty'} not allowed; use a non-empty subset of {list(allowed)}")
        for name in ("fault_operations", "fault_exempt_operations"):
            value = _names(getattr(self, name))
            setattr(self, name, value)
            unknown = sorted(set(value) - set(_operation_ids())) if value else []
            if unknown:
                raise ValueError(f"{name}: unknown operationId(s) {unknown}; known: {sorted(_operation_ids())}")
        self.duplicate_match_order = tuple(self.duplicate_match_order)
        if not set(self.duplicate_match_order) <= {"email", "phone"} or not self.duplicate_match_order:
            raise ValueError(
                "duplicate_match_order: use ('email', 'phone'), ('phone', 'email'), ('email',) or ('phone',)"
            )
        if self.latency_ms < 0 or self.fault_delay_ms < 0:
            raise ValueError("latency_ms/fault_delay_ms: must be >= 0 milliseconds")
        if self.search_lag_s < 0:
            raise ValueError("search_lag_s: must be >= 0 seconds (0: search shows changes at once)")
        for name in ("token_scopes", "missing_scopes"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str):
                value = tuple(x for x in value.replace(",", " ").split() if x)
            value = tuple(str(x) for x in value)
            unknown = sorted(set(value) - set(ALL_SCOPES))
            if unknown:
                raise ValueError(f"{name}: unknown scope(s) {unknown}; known scopes: {list(ALL_SCOPES)}")
            setattr(self, name, value)
        if self.access_token_lifetime_s < 0 or self.refresh_token_lifetime_s < 0:
            raise ValueError("access_token_lifetime_s/refresh_token_lifetime_s: must be >= 0 seconds "
                             "(0: tokens are expired as soon as they are issued)")
        self._validate_webhooks()

    def _validate_webhooks(self) -> None:
        """The ``webhook_*`` fields (see ``webhooks.py``)."""
        from .webhooks import RSA_KEY_SIZES, SIGNATURE_KINDS, check_webhook_url

        urls = (self.webhook_urls,) if isinstance(self.webhook_urls, str) else tuple(self.webhook_urls or ())
        self.webhook_urls = tuple(dict.fromkeys(check_webhook_url(u) for u in urls))
        kinds = _names(self.webhook_signatures)
        if not kinds or not set(kinds) <= set(SIGNATURE_KINDS):
            raise ValueError(f"webhook_signatures: {list(kinds)} not allowed; use a non-empty subset of "
                             f"{list(SIGNATURE_KINDS)} (rsa: x-wh-signature, ed25519: x-ghl-signature)")
        self.webhook_signatures = kinds
        if self.webhook_key_seed is not None:
            self.webhook_key_seed = str(self.webhook_key_seed)
        if self.webhook_rsa_key_bits not in RSA_KEY_SIZES:
            raise ValueError(f"webhook_rsa_key_bits: {self.webhook_rsa_key_bits!r} not supported; use one of "
                             f"{list(RSA_KEY_SIZES)} (HighLevel's own key has 4096 bits)")
        for name in ("webhook_loss_rate", "webhook_duplicate_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name}: {value!r} is a fraction and must be between 0.0 and 1.0")
        if not self.webhook_time_scale > 0:
            raise ValueError(f"webhook_time_scale: {self.webhook_time_scale!r} must be > 0 "
                             "(1: HighLevel's schedule; 0.001: 10 minutes become 0.6 s)")
        if self.webhook_retry_interval_s < 0 or self.webhook_retry_jitter_s < 0:
            raise ValueError("webhook_retry_interval_s/webhook_retry_jitter_s: must be >= 0 seconds")
        if isinstance(self.webhook_max_retries, bool) or int(self.webhook_max_retries) != self.webhook_max_retries \
                or self.webhook_max_retries < 0:
            raise ValueError(f"webhook_max_retries: {self.webhook_max_retries!r} must be a whole number >= 0 "
                             "(HighLevel: 6 retries after a 429)")
        self.webhook_max_retries = int(self.webhook_max_retries)
        if not self.webhook_timeout_s > 0:
            raise ValueError(f"webhook_timeout_s: {self.webhook_timeout_s!r} must be > 0 seconds")

    def default_scopes(self) -> frozenset[str]:
        """Scopes granted when none are asked for: ``token_scopes`` (or all) minus ``missing_scopes``."""
        base = set(ALL_SCOPES if self.token_scopes is None else self.token_scopes)
        return frozenset(base - set(self.missing_scopes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxConfig:
        """Build from a dict, rejecting unknown keys with the list of known ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown SandboxConfig field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def updated(self, **changes: Any) -> SandboxConfig:
        """A validated copy with ``changes`` applied (unknown names rejected)."""
        merged = self.to_dict()
        merged.update(changes)
        return SandboxConfig.from_dict(merged)
