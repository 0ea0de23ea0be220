"""The webhook receiver: a FastAPI app that verifies, dedupes and durably stores HighLevel events.

Routes (relative to where the app is served: ``/ghl-webhooks`` on the Airflow API server, ``/``
standalone):

``POST /events``
    One HighLevel delivery. In this order:

    1. **413** when the body is larger than ``max_body_bytes`` (from ``Content-Length``, or while
       reading a body sent without one), before anything is parsed;
    2. **401** when no signature verifies (:mod:`.verify`: ``x-wh-signature`` RSA-SHA256 with
       HighLevel's published key by default, ``x-ghl-signature`` Ed25519 where a key is set);
    3. **400** when the body is not a JSON object;
    4. the event is inserted into ``ghl_webhook_events`` unless its ``webhookId`` is there already
       (:mod:`.store`), and the insert is **committed before the answer**;
    5. **200** ``{"status": "stored"|"duplicate", "webhookId": ...}``.

    When the target cannot store it (database down, lock or connection wait longer than
    ``storage_timeout_seconds``) the answer is **429** with ``Retry-After``: 429 is the only status
    HighLevel retries (10 minutes apart, up to 6 times), every other failure loses the event. There
    is no replay window on ``timestamp`` (a retry keeps the original one); dedupe is by webhook id.

``GET /health``
    200 ``{"status": "ok", ...}`` when the events table is reachable, else 503 with the reason.
    Shows which signature headers are checked and the body limit; never a key or a secret.

Logs name the webhook id, type and location of an event and why one was refused; never a
signature, a body or a connection password.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_contacts.webhooks.events import EventParseError, parse_event
from airflow_provider_contacts.webhooks.store import DEFAULT_TARGET_CONN_ID, StorageUnavailable, WebhookEventStore
from airflow_provider_contacts.webhooks.verify import WebhookVerifier

__all__ = ["CONFIG_SECTION", "EVENTS_PATH", "WebhookSettings", "create_app"]

log = logging.getLogger("airflow_provider_contacts.webhooks")

#: Path of the delivery endpoint, relative to the app's mount point.
EVENTS_PATH = "/events"
#: Airflow configuration section of the receiver mounted in the API server.
CONFIG_SECTION = "ghl_webhooks"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """Receiver settings (Airflow config section ``[ghl_webhooks]``, or the standalone CLI flags).

    :ivar target_conn_id: common-sql connection of the target that holds ``ghl_webhook_events``
        (default ``ghl_target``; when missing, the embedded SQLite file of the reconcile).
    :ivar schema: schema of the table in the target (``None``: the connection's default).
    :ivar rsa_public_key: PEM text or PEM file path for ``x-wh-signature``; ``None``: HighLevel's
        published key; ``none``: do not check that header.
    :ivar ed25519_public_key: PEM text, PEM file path or raw base64 for ``x-ghl-signature``;
        ``None``: that header is not checked.
    :ivar max_body_bytes: larger bodies get 413 (HighLevel's events are a few KiB).
    :ivar retry_after_seconds: ``Retry-After`` of a 429 (HighLevel retries about every 600 s).
    :ivar storage_timeout_seconds: longest wait for the database before answering 429.
    """

    target_conn_id: str = DEFAULT_TARGET_CONN_ID
    schema: str | None = None
    rsa_public_key: str | None = None
    ed25519_public_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_after_seconds: int = 600
    storage_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive number of bytes, got {self.max_body_bytes}")
        if self.retry_after_seconds < 0:
            raise ValueError(f"retry_after_seconds must be >= 0, got {self.retry_after_seconds}")
        if self.storage_timeout_seconds <= 0:
            raise ValueError(f"storage_timeout_seconds must be > 0, got {self.storage_timeout_seconds}")

    def __repr__(self) -> str:  # keys are public, but long; say only whether one is set
        return (
            f"WebhookSettings(target_conn_id={self.target_conn_id!r}, schema={self.schema!r}, "
            f"rsa_public_key={'custom' if self.rsa_public_key else 'HighLevel'}, "
            f"ed25519_public_key={'set' if self.ed25519_public_key else None}, max_body_bytes={self.max_body_bytes})"
        )

    @classmethod
    def from_airflow_config(cls) -> WebhookSettings:
        """Read ``[ghl_webhooks]`` from Airflow's configuration (``AIRFLOW__GHL_WEBHOOKS__*`` env
        vars work); options missing there keep their defaults.

        :raises ValueError: naming the option, for a value of the wrong type.
        """
        from airflow.configuration import conf

        def text(option: str) -> str | None:
            value = conf.get(CONFIG_SECTION, option, fallback=None)
            return value.strip() or None if isinstance(value, str) else None

        def number(option: str, kind: type, default: Any) -> Any:
            value = text(option)
            if value is None:
                return default
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a {kind.__name__}") from None

        defaults = cls()
        return cls(
            target_conn_id=text("target_conn_id") or defaults.target_conn_id,
            schema=text("schema"),
            rsa_public_key=text("rsa_public_key"),
            ed25519_public_key=text("ed25519_public_key"),
            max_body_bytes=number("max_body_bytes", int, defaults.max_body_bytes),
            retry_after_seconds=number("retry_after_seconds", int, defaults.retry_after_seconds),
            storage_timeout_seconds=number("storage_timeout_seconds", float, defaults.storage_timeout_seconds),
        )


def _warm_up(store: WebhookEventStore) -> None:
    problem = store.warm_up()
    if problem:
        log.warning("webhook storage not ready yet (deliveries get 429 until it is): %s", problem)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The exact body bytes, refusing (before reading it all) a body over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: WebhookSettings | None = None,
    *,
    store: WebhookEventStore | None = None,
    verifier: WebhookVerifier | None = None,
    warm_up: bool = True,
) -> FastAPI:
    """Build the receiver app (routes in the module docstring).

    :param settings: the receiver's settings (defaults: :class:`WebhookSettings`).
    :param store: the event store (default: one on ``settings.target_conn_id``/``schema``; nothing
        connects before the first request, so the app starts while the database is down).
    :param verifier: the signature verifier (default: from the settings' keys).
    :param warm_up: resolve the connection and create the table in a background thread now, so the
        first delivery does not wait for it (:meth:`.store.WebhookEventStore.warm_up`).
    :raises ValueError: for a bad key setting (named in the message).
    """
    settings = settings or WebhookSettings()
    verifier = verifier or WebhookVerifier.from_settings(settings.rsa_public_key, settings.ed25519_public_key)
    store = store or WebhookEventStore(
        settings.target_conn_id, schema=settings.schema, timeout_seconds=settings.storage_timeout_seconds
    )
    app = FastAPI(
        title="HighLevel webhooks",
        description="Receives signed HighLevel (LeadConnector) webhook events and stores them in the "
        "target table ghl_webhook_events for the reconcile.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.verifier = verifier
    retry_headers = {"Retry-After": str(settings.retry_after_seconds)}
    if warm_up:
        threading.Thread(target=_warm_up, args=(store,), name="ghl-webhooks-warm-up", daemon=True).start()

    async def _in_thread(func: Any, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(run_in_threadpool(func, *args), timeout=settings.storage_timeout_seconds)
        except asyncio.TimeoutError:
            raise StorageUnavailable(f"the target did not answer within {settings.storage_timeout_seconds:g} s") from None

    @app.post(EVENTS_PATH)
    async def receive_event(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            log.warning("webhook refused (413): body larger than max_body_bytes=%d", settings.max_body_bytes)
            return JSONResponse(
                {"error": f"body larger than {settings.max_body_bytes} bytes"}, status_code=413
            )
        check = verifier.verify(body, request.headers)
        if not check.ok:
            log.warning("webhook refused (401): %s", check.reason)
            return JSONResponse({"error": f"unauthorized: {check.reason}"}, status_code=401)
        if check.failed:
            log.warning(
                "webhook %s verified but %s did not match: a public key may have been rotated",
                ", ".join(check.valid), ", ".join(check.failed),
            )
        try:
            event = parse_event(body)
        except EventParseError as exc:
            log.warning("webhook refused (400): %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            inserted = await _in_thread(store.store, event)
        except StorageUnavailable as exc:
            log.error(
                "webhook %s (%s, location %s) not stored, answered 429 so HighLevel retries: %s",
                event.webhook_id, event.event_type, event.location_id, exc,
            )
            return JSONResponse(
                {"error": "storage unavailable, retry later", "webhookId": event.webhook_id},
                status_code=429,
                headers=retry_headers,
            )
        status = "stored" if inserted else "duplicate"
        log.info("webhook %s %s (%s, location %s)", event.webhook_id, status, event.event_type, event.location_id)
        return JSONResponse({"status": status, "webhookId": event.webhook_id, "type": event.event_type})

    @app.get("/health")
    async def health() -> JSONResponse:
        info = {
            "signature_headers": list(verifier.headers),
            "max_body_bytes": settings.max_body_bytes,
            "target_conn_id": settings.target_conn_id,
        }
        try:
            await _in_thread(store.ping)
        except StorageUnavailable as exc:
            return JSONResponse({"status": "unavailable", "storage": str(exc), **info}, status_code=503)
        return JSONResponse({"status": "ok", "storage": "ok", **info})

    return app


def create_app_from_airflow_config() -> FastAPI:
    """The app with :meth:`WebhookSettings.from_airflow_config` (what the Airflow plugin serves).

    When the configuration is unusable (a bad key, a non-numeric limit) the app still starts:
    ``POST /events`` answers 429 (HighLevel keeps the event and retries for about an hour, time to
    fix the setting) and ``GET /health`` answers 503 with the error; the error is logged.
    """
    try:
        return create_app(WebhookSettings.from_airflow_config())
    except ValueError as exc:
        error = str(exc)
    log.error("HighLevel webhook receiver misconfigured, answering 429 until fixed: %s", error)
    app = FastAPI(title="HighLevel webhooks (misconfigured)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(EVENTS_PATH)
    async def receive_event() -> JSONResponse:
        log.error("webhook answered 429: receiver misconfigured: %s", error)
        return JSONResponse({"error": "receiver misconfigured, retry later"}, status_code=429, headers={"Retry-After": "600"})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "misconfigured", "error": error}, status_code=503)

    return app


def settings_with(settings: WebhookSettings, **changes: Any) -> WebhookSettings:
    """``settings`` with some fields replaced (``None`` values are ignored)."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
