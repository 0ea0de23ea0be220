"""Webhook events of the sandbox: signed HighLevel event deliveries for every change made through
the API or the admin surface (``/work/shared/reference/ghl-webhooks/`` and the "Webhooks" section
of ``ghl-live-notes.md``).

Off unless a subscription exists (``SandboxConfig.webhook_urls``, CLI ``--webhook-url``, or
``POST /_sandbox/webhooks/subscriptions``): without one, a change costs one attribute check and no
thread, key or HTTP client is ever made.

Events (the documented bodies, plus ``timestamp`` and ``webhookId`` as ``WebhookAuthentication.md``
shows; fields the object does not have are left out, ``dnd``, ``tags``, ``attachments`` and
``customFields`` are always there):

=====================  =========================================================================
``ContactCreate``      a contact is created (API create/upsert, admin create)
``ContactUpdate``      a contact field other than tags and DND changes, or the contact is touched
                       (``dateUpdated`` moves: followers, business, an update that changed nothing)
``ContactTagUpdate``   the contact's tags change (tag routes, bulk tags, an update sending ``tags``)
``ContactDndUpdate``   ``dnd``, ``dndSettings`` or ``inboundDndSettings`` change (body adds ``dndSettings``)
``ContactDelete``      a contact is deleted (body: the contact as it was). As on HighLevel
                       (``ghl-live-notes.md``), nothing is announced for the tasks and notes
                       that go with it.
``TaskCreate``         a task is created
``TaskComplete``       a task goes from not completed to completed (there is no event for any
                       other task edit, as on HighLevel)
``TaskDelete``         a task is deleted on its own
``NoteCreate``, ``NoteUpdate``, ``NoteDelete``   a note is created, edited, deleted on its own
=====================  =========================================================================

Delivery, as HighLevel does it: a ``POST`` of the JSON body (compact UTF-8, the exact bytes signed)
to each subscribed URL, in the order the changes were made (per URL; a retried event arrives after
later ones). A 2xx is delivered; a 429 is retried ``webhook_retry_interval_s`` later (600 s plus up
to ``webhook_retry_jitter_s`` of jitter, all times ``webhook_time_scale``), at most
``webhook_max_retries`` (6) times, with the same bytes (same ``timestamp`` and ``webhookId``); any
other status, a timeout (``webhook_timeout_s``) or a refused connection is final: the event is lost.
``webhook_loss_rate`` of the deliveries are never sent at all and ``webhook_duplicate_rate`` of the
others are sent twice (same bytes), drawn from a generator seeded with ``SandboxConfig.seed``
(re-seeded by ``reset()``), so the same sequence of changes meets the same losses.

Signatures over the exact body bytes: ``x-wh-signature`` = base64 RSA-SHA256 (PKCS#1 v1.5) and
``x-ghl-signature`` = base64 Ed25519 (``webhook_signatures`` picks one or both), with the sandbox's
own keys (HighLevel's private key is not public): random per process by default, or derived from
``webhook_key_seed`` (same seed, same keys, in any process). Public keys (SubjectPublicKeyInfo PEM):
``GET /_sandbox/webhooks/keys`` -> ``{"rsa_public_key_pem", "ed25519_public_key_pem"}``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .dates import iso_from_ms, now_ms

if TYPE_CHECKING:  # pragma: no cover
    from .config import SandboxConfig

__all__ = [
    "ED25519_SIGNATURE_HEADER", "EVENT_TYPES", "RSA_SIGNATURE_HEADER", "SIGNATURE_KINDS", "WebhookKeys",
    "WebhookOutbox", "check_webhook_url", "contact_event_fields", "note_event_fields", "task_event_fields",
]

log = logging.getLogger(__name__)

EVENT_TYPES: tuple[str, ...] = (
    "ContactCreate", "ContactUpdate", "ContactDelete", "ContactDndUpdate", "ContactTagUpdate",
    "NoteCreate", "NoteUpdate", "NoteDelete", "TaskCreate", "TaskComplete", "TaskDelete",
)
"""Every event type the sandbox sends (one page each in ``ghl-webhooks/``)."""

SIGNATURE_KINDS: tuple[str, ...] = ("rsa", "ed25519")
RSA_SIGNATURE_HEADER = "x-wh-signature"
"""base64 of RSA-SHA256 (PKCS#1 v1.5) over the body bytes (``WebhookAuthentication.md``)."""
ED25519_SIGNATURE_HEADER = "x-ghl-signature"
"""base64 of Ed25519 over the body bytes (``ghl-live-notes.md``)."""
RSA_KEY_SIZES: tuple[int, ...] = (2048, 3072, 4096)

#: Contact fields of the documented contact events, in the documented order.
CONTACT_EVENT_FIELDS: tuple[str, ...] = (
    "address1", "city", "companyName", "country", "source", "dateAdded", "dateOfBirth", "dnd", "email", "name",
    "firstName", "lastName", "phone", "postalCode", "state", "tags", "website", "attachments", "assignedTo",
    "customFields",
)
TASK_EVENT_FIELDS: tuple[str, ...] = ("assignedTo", "body", "contactId", "title", "dateAdded", "dueDate")
NOTE_EVENT_FIELDS: tuple[str, ...] = ("body", "contactId", "dateAdded")
LOG_LIMIT = 20_000
"""Entries kept in the delivery log and the event log (oldest dropped first; totals keep counting)."""


# ---- bodies ---------------------------------------------------------------------------------------
def contact_event_fields(contact: dict[str, Any], *, dnd_settings: bool = False) -> dict[str, Any]:
    """The documented fields of a contact event from a GET-shaped contact (``ContactCreate.md`` ...):
    missing values left out, except ``dnd`` (bool) and the lists ``tags``, ``attachments``,
    ``customFields`` (``[{"id", "value"}]``); ``dnd_settings`` adds ``dndSettings`` after ``dnd``
    (``ContactDndUpdate.md``)."""
    out: dict[str, Any] = {}
    for key in CONTACT_EVENT_FIELDS:
        value = contact.get(key)
        if key in ("tags", "attachments"):
            out[key] = list(value or [])
        elif key == "customFields":
            out[key] = [{"id": item.get("id"), "value": item.get("value")} for item in value or []]
        elif key == "dnd":
            out[key] = bool(value)
            if dnd_settings:
                out["dndSettings"] = dict(contact.get("dndSettings") or {})
        elif value is not None:
            out[key] = value
    return out


def task_event_fields(task: dict[str, Any], added_ms: int | None) -> dict[str, Any]:
    """The documented fields of a task event (``TaskCreate.md``): ``assignedTo``, ``body``,
    ``contactId``, ``title``, ``dateAdded`` (ISO, from ``added_ms``), ``dueDate``; missing ones left out."""
    source = {**task, "dateAdded": iso_from_ms(added_ms) if added_ms is not None else task.get("dateAdded")}
    return {k: source[k] for k in TASK_EVENT_FIELDS if source.get(k) is not None}


def note_event_fields(note: dict[str, Any]) -> dict[str, Any]:
    """The documented fields of a note event (``NoteCreate.md``): ``body``, ``contactId``, ``dateAdded``."""
    return {k: note[k] for k in NOTE_EVENT_FIELDS if note.get(k) is not None}


def check_webhook_url(url: Any, where: str = "webhook_urls") -> str:
    """``url`` if it is an absolute http(s) URL with a host; ``ValueError`` naming ``where`` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{where}: {url!r} is not a URL; give e.g. http://127.0.0.1:8080/webhooks/ghl")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: {url!r} is not an absolute http(s) URL; give e.g. "
                         "http://127.0.0.1:8080/webhooks/ghl")
    return url


# ---- keys -----------------------------------------------------------------------------------------
def _small_primes(limit: int = 2000) -> tuple[int, ...]:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit, i)))
    return tuple(i for i in range(limit) if sieve[i])


_SMALL_PRIMES = _small_primes()


def _probable_prime(n: int, rng: random.Random, rounds: int = 12) -> bool:
    """Trial division, then Miller-Rabin with base 2 and ``rounds`` random bases (for random odd
    numbers of 1024 bits and more, FIPS 186-4 table C.2 asks for 4 to 5 rounds for a 2**-100 error)."""
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for base in (2, *(rng.randrange(3, n - 1) for _ in range(rounds))):
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _seeded_rsa_key(seed: str, bits: int) -> Any:
    """An RSA private key derived from ``seed`` alone (same seed and size, same key): primes drawn
    from a generator seeded with SHA-256 of the seed, assembled with ``cryptography``."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    rng = random.Random(hashlib.sha256(f"ghl-sandbox-webhook-rsa-{bits}:{seed}".encode()).digest())
    e = 65537
    half = bits // 2

    def prime(k: int) -> int:
        while True:
            candidate = rng.getrandbits(k) | (3 << (k - 2)) | 1  # top two bits set: p*q has exactly `bits` bits
            if (candidate - 1) % e and _probable_prime(candidate, rng):
                return candidate

    while True:
        p, q = prime(half), prime(bits - half)
        if p != q and (p * q).bit_length() == bits:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


class WebhookKeys:
    """The sandbox's signing key pairs (RSA and Ed25519), made on first use with ``cryptography``:
    random when ``seed`` is ``None``, else derived from ``seed`` (the same in every process).
    Thread-safe."""

    def __init__(self, seed: str | None = None, rsa_bits: int = 2048) -> None:
        if rsa_bits not in RSA_KEY_SIZES:
            raise ValueError(f"webhook_rsa_key_bits: {rsa_bits} not supported; use one of {list(RSA_KEY_SIZES)}")
        self.seed = seed
        self.rsa_bits = rsa_bits
        self._lock = threading.Lock()
        self._rsa: Any = None
        self._ed25519: Any = None

    def rsa_private_key(self) -> Any:
        """The RSA private key (``RSAPrivateKey``; ``rsa_bits`` bits, exponent 65537)."""
        with self._lock:
            if self._rsa is None:
                if self.seed is None:
                    from cryptography.hazmat.primitives.asymmetric import rsa

                    self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)
                else:
                    self._rsa = _seeded_rsa_key(self.seed, self.rsa_bits)
            return self._rsa

    def ed25519_private_key(self) -> Any:
        """The Ed25519 private key (``Ed25519PrivateKey``)."""
        from cryptography.hazmat.primitives.asymmetric import ed25519

        with self._lock:
            if self._ed25519 is None:
                if self.seed is None:
                    self._ed25519 = ed25519.Ed25519PrivateKey.generate()
                else:
                    raw = hashlib.sha256(f"ghl-sandbox-webhook-ed25519:{self.seed}".encode()).digest()
                    self._ed25519 = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            return self._ed25519

    def public_pems(self) -> dict[str, str]:
        """``{"rsa_public_key_pem", "ed25519_public_key_pem"}``: SubjectPublicKeyInfo PEM text, what a
        receiver verifies ``x-wh-signature`` and ``x-ghl-signature`` with."""
        from cryptography.hazmat.primitives import serialization

        def pem(private_key: Any) -> str:
            return private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

        return {"rsa_public_key_pem": pem(self.rsa_private_key()),
                "ed25519_public_key_pem": pem(self.ed25519_private_key())}

    def sign(self, body: bytes, kinds: tuple[str, ...] = SIGNATURE_KINDS) -> dict[str, str]:
        """Signature headers for ``body`` (the exact bytes sent): ``x-wh-signature`` (``"rsa"`` in
        ``kinds``: base64 RSA-SHA256 PKCS#1 v1.5) and ``x-ghl-signature`` (``"ed25519"``: base64 Ed25519)."""
        headers: dict[str, str] = {}
        if "rsa" in kinds:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            signature = self.rsa_private_key().sign(body, padding.PKCS1v15(), hashes.SHA256())
            headers[RSA_SIGNATURE_HEADER] = base64.b64encode(signature).decode("ascii")
        if "ed25519" in kinds:
            headers[ED25519_SIGNATURE_HEADER] = base64.b64encode(self.ed25519_private_key().sign(body)).decode("ascii")
        return headers


# ---- outbox ---------------------------------------------------------------------------------------
@dataclass
class Subscription:
    """Where events go: ``url``, optionally only the events of ``location_id``; ``source`` is
    ``"config"`` (``webhook_urls``) or ``"runtime"`` (the admin surface)."""

    url: str
    location_id: str | None = None
    source: str = "runtime"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "locationId": self.location_id, "source": self.source}


@dataclass
class _Event:
    webhook_id: str
    type: str
    location_id: str
    object_id: str
    timestamp: str
    raw: bytes
    created: float  # time.monotonic() at emission
    headers: dict[tuple[Any, ...], dict[str, str]] = field(default_factory=dict)  # signed once per key set


@dataclass
class _Delivery:
    event: _Event
    url: str
    generation: int
    duplicate: bool = False
    attempt: int = 1


class WebhookOutbox:
    """The events to send and the delivery worker of one sandbox (``SandboxState.webhooks``).

    ``config`` returns the sandbox's current ``SandboxConfig`` (read on every event and attempt, so
    ``configure()`` applies at once). ``emit`` is called from the server's event loop by the store;
    sending happens on a background thread running its own asyncio loop (started with the first
    event that has somewhere to go), so it works the same in thread mode, in a child process and
    under ``python -m ghl_sandbox``.
    """

    def __init__(self, config: Callable[[], SandboxConfig]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._runtime: dict[str, Subscription] = {}
        self._keysets: dict[tuple[str | None, int], WebhookKeys] = {}
        self._sender: _Sender | None = None
        self._generation = 0
        self._clear(0)

    # -- subscriptions ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True when at least one subscription exists (else changes cost nothing)."""
        return bool(self._runtime) or bool(self._config().webhook_urls)

    def subscriptions(self) -> list[Subscription]:
        """Configured URLs (``webhook_urls``) then the ones added at run time, each URL once."""
        subs = {url: Subscription(url, None, "config") for url in self._config().webhook_urls}
        with self._lock:
            for url, sub in self._runtime.items():
                subs.setdefault(url, sub)
        return list(subs.values())

    def subscribe(self, url: str, location_id: str | None = None) -> Subscription:
        """Add (or change the location filter of) a run-time subscription; ``ValueError`` for a bad URL."""
        url = check_webhook_url(url, "url")
        if location_id is not None and not isinstance(location_id, str):
            raise ValueError("locationId: must be a location id string, or left out for every location")
        sub = Subscription(url, location_id or None, "runtime")
        with self._lock:
            self._runtime[url] = sub
            self._ensure_sender()
        return sub

    def unsubscribe(self, url: str) -> bool:
        """Remove a run-time subscription; False if there was none. A configured URL cannot be removed
        here (``ValueError`` telling to use ``configure(webhook_urls=...)``)."""
        with self._lock:
            removed = self._runtime.pop(str(url).strip(), None) is not None
        if not removed and str(url).strip() in self._config().webhook_urls:
            raise ValueError(f"url: {url!r} comes from the webhook_urls configuration; remove it with "
                             "configure(webhook_urls=[...]) (POST /_sandbox/config)")
        return removed

    # -- keys ----------------------------------------------------------------------------------------
    def keys(self) -> WebhookKeys:
        """The key pairs the current configuration signs with (``webhook_key_seed``, ``webhook_rsa_key_bits``)."""
        cfg = self._config()
        key = (cfg.webhook_key_seed, cfg.webhook_rsa_key_bits)
        with self._lock:
            keyset = self._keysets.get(key)
            if keyset is None:
                keyset = self._keysets[key] = WebhookKeys(*key)
            return keyset

    def public_keys(self) -> dict[str, str]:
        """``{"rsa_public_key_pem", "ed25519_public_key_pem"}`` of :meth:`keys`."""
        return self.keys().public_pems()

    # -- events --------------------------------------------------------------------------------------
    def emit(self, event_type: str, location_id: str, object_id: str, fields: dict[str, Any]) -> str | None:
        """Queue one event for every subscription that wants ``location_id``; returns its ``webhookId``
        (``None`` when nothing is subscribed). The body is serialized now: later changes to the
        object do not reach it."""
        subs = [s for s in self.subscriptions() if s.location_id in (None, location_id)]
        if not subs:
            return None
        cfg = self._config()
        webhook_id = str(uuid.uuid4())
        timestamp = iso_from_ms(now_ms())
        body = {"type": event_type, "locationId": location_id, "id": object_id, **fields,
                "timestamp": timestamp, "webhookId": webhook_id}
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        event = _Event(webhook_id, event_type, location_id, object_id, timestamp, raw, time.monotonic())
        to_send: list[_Delivery] = []
        with self._lock:
            self._emitted += 1
            self._event_seq += 1
            self._events.append({"seq": self._event_seq, "webhookId": webhook_id, "type": event_type,
                                 "locationId": location_id, "id": object_id, "timestamp": timestamp,
                                 "subscriptions": len(subs)})
            for sub in subs:
                lost = self._rng.random() < cfg.webhook_loss_rate  # both draws always: a stable stream
                duplicate = self._rng.random() < cfg.webhook_duplicate_rate
                delivery = _Delivery(event, sub.url, self._generation)
                if lost:
                    self._log_entry(delivery, None, None, "lost", None)
                    continue
                to_send.append(delivery)
                if duplicate:
                    to_send.append(_Delivery(event, sub.url, self._generation, duplicate=True))
            self._pending += len(to_send)
            sender = self._ensure_sender() if to_send else self._sender
        for delivery in to_send:
            assert sender is not None
            sender.submit(delivery)
        return webhook_id

    # -- logs ----------------------------------------------------------------------------------------
    def _log_entry(self, d: _Delivery, status: int | None, error: str | None, outcome: str,
                   retry_in_s: float | None) -> None:
        """Append a delivery log entry (caller holds the lock)."""
        self._seq += 1
        self._outcomes[outcome] += 1
        self._log.append({
            "seq": self._seq, "webhookId": d.event.webhook_id, "event": d.event.type,
            "locationId": d.event.location_id, "id": d.event.object_id, "url": d.url, "attempt": d.attempt,
            "duplicate": d.duplicate, "status": status, "error": error, "outcome": outcome,
            "retry_in_s": retry_in_s, "time": iso_from_ms(now_ms()),
            "elapsed_s": round(time.monotonic() - d.event.created, 4),
        })

    def _finish_attempt(self, d: _Delivery, status: int | None, error: str | None, outcome: str,
                        retry_in_s: float | None) -> bool:
        """Record an attempt; False when the delivery belongs to a state before ``reset()`` (dropped)."""
        with self._lock:
            if d.generation != self._generation:
                return False
            self._log_entry(d, status, error, outcome, retry_in_s)
            if outcome != "retry":
                self._pending -= 1
            return True

    def _current(self, d: _Delivery) -> bool:
        return d.generation == self._generation

    def deliveries(self, since: int = 0, event: str | None = None, webhook_id: str | None = None) -> dict[str, Any]:
        """``{"deliveries": [...], "pending", "emitted", "by_outcome", "last_seq"}``. Each delivery
        attempt: ``seq``, ``webhookId``, ``event`` (type), ``locationId``, ``id``, ``url``,
        ``attempt`` (1 = first), ``duplicate`` (the second copy of a duplicated event), ``status``
        (HTTP status or ``None``), ``error`` (``timeout``, ``ConnectError: ...``), ``outcome``
        (``delivered``, ``retry``, ``failed``: final, ``lost``: never sent), ``retry_in_s``,
        ``time`` (ISO), ``elapsed_s`` (since the change). Only entries with ``seq`` > ``since``;
        ``pending``: deliveries not yet final (queued, in flight or waiting for a retry)."""
        with self._lock:
            rows = [dict(e) for e in self._log if e["seq"] > since
                    and (event is None or e["event"] == event)
                    and (webhook_id is None or e["webhookId"] == webhook_id)]
            return {"deliveries": rows, "pending": self._pending, "emitted": self._emitted,
                    "by_outcome": dict(self._outcomes), "last_seq": self._seq}

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Events emitted (``seq``, ``webhookId``, ``type``, ``locationId``, ``id``, ``timestamp``,
        ``subscriptions``) with ``seq`` > ``since``, whatever became of their deliveries."""
        with self._lock:
            return [dict(e) for e in self._events if e["seq"] > since]

    def clear_log(self) -> None:
        """Forget logged deliveries and events and zero the totals (pending deliveries go on)."""
        with self._lock:
            self._log.clear()
            self._events.clear()
            self._outcomes.clear()
            self._emitted = 0

    # -- lifecycle -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the configured subscriptions only: run-time subscriptions removed, deliveries not
        yet made cancelled, logs cleared, the loss/duplicate draws re-seeded. Keys are kept."""
        cfg = self._config()
        self._clear(cfg.seed)
        if cfg.webhook_urls:
            with self._lock:
                self._ensure_sender()

    def _ensure_sender(self) -> _Sender:
        """The delivery thread, started (and warming up its HTTP client and keys) on first need;
        the caller holds the lock."""
        if self._sender is None:
            self._sender = _Sender(self)
        return self._sender

    def _clear(self, seed: int) -> None:
        with self._lock:
            self._runtime.clear()
            self._generation += 1
            self._pending = 0
            self._emitted = 0
            self._event_seq = 0
            self._seq = 0
            self._log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
            self._events: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
            self._outcomes: Counter[str] = Counter()
            self._rng = random.Random(f"ghl-sandbox-webhooks:{seed}")
            self.jitter_rng = random.Random(f"ghl-sandbox-webhook-jitter:{seed}")

    def close(self) -> None:
        """Stop the delivery thread (deliveries not made are dropped). Safe to call more than once."""
        with self._lock:
            sender, self._sender = self._sender, None
            self._generation += 1
            self._pending = 0
        if sender is not None:
            sender.close()

    def headers_for(self, event: _Event) -> dict[str, str]:
        """The request headers of ``event``: content type and the signatures of its bytes (signed
        once per key set and choice of signatures)."""
        cfg = self._config()
        kinds = tuple(k for k in SIGNATURE_KINDS if k in cfg.webhook_signatures)
        cache_key = (cfg.webhook_key_seed, cfg.webhook_rsa_key_bits, kinds)
        headers = event.headers.get(cache_key)
        if headers is None:
            headers = {"content-type": "application/json", "user-agent": "ghl-sandbox-webhooks/1",
                       **self.keys().sign(event.raw, kinds)}
            event.headers[cache_key] = headers
        return headers


class _Sender:
    """The delivery thread: an asyncio loop with one FIFO queue (and one consumer) per URL."""

    def __init__(self, outbox: WebhookOutbox) -> None:
        self.outbox = outbox
        self.loop = asyncio.new_event_loop()
        self.queues: dict[str, asyncio.Queue[_Delivery]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: Any = None
        self.keys_ready = False
        self.thread = threading.Thread(target=self._run, name="ghl-sandbox-webhooks", daemon=True)
        self.thread.start()
        self.loop.call_soon_threadsafe(lambda: self.tasks.add(self.loop.create_task(self._warm_up())))

    async def _warm_up(self) -> None:
        """Make the HTTP client and the signing keys before the first event needs them."""
        self._http_client()
        try:
            await asyncio.to_thread(self.outbox.headers_for, _Event("", "", "", "", "", b"{}", 0.0))
        except Exception:  # noqa: BLE001 - reported by the first real delivery
            pass

    def _http_client(self) -> Any:
        if self.client is None:
            import httpx

            self.client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self.client

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, delivery: _Delivery) -> None:
        """Queue a first attempt (thread-safe)."""
        try:
            self.loop.call_soon_threadsafe(self._enqueue, delivery)
        except RuntimeError:  # closed meanwhile
            pass

    def _enqueue(self, delivery: _Delivery) -> None:
        if not self.outbox._current(delivery):
            return
        queue = self.queues.get(delivery.url)
        if queue is None:
            queue = self.queues[delivery.url] = asyncio.Queue()
            task = self.loop.create_task(self._consume(queue))
            self.tasks.add(task)
        queue.put_nowait(delivery)

    async def _consume(self, queue: asyncio.Queue[_Delivery]) -> None:
        while True:
            delivery = await queue.get()
            try:
                await self._attempt(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one delivery stop the queue
                log.exception("webhook delivery to %s failed unexpectedly", delivery.url)
                self.outbox._finish_attempt(delivery, None, f"{type(exc).__name__}: {exc}", "failed", None)

    async def _attempt(self, d: _Delivery) -> None:
        import httpx

        if not self.outbox._current(d):
            return
        cfg = self.outbox._config()
        status: int | None = None
        error: str | None = None
        try:
            if self.keys_ready:  # signing is quick (well under 2 ms): no thread hop
                headers = self.outbox.headers_for(d.event)
            else:  # the first use may make a key (RSA: up to seconds): off the loop
                headers = await asyncio.to_thread(self.outbox.headers_for, d.event)
                self.keys_ready = True
        except Exception as exc:
            log.error("cannot sign webhook events: %s", exc)
            self.outbox._finish_attempt(d, None, f"signing failed: {type(exc).__name__}: {exc}", "failed", None)
            return
        try:
            response = await self._http_client().post(d.url, content=d.event.raw, headers=headers,
                                              timeout=cfg.webhook_timeout_s)
            status = response.status_code
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            outcome, retry_in = "delivered", None
        elif status == 429 and d.attempt <= cfg.webhook_max_retries:
            with self.outbox._lock:
                jitter = self.outbox.jitter_rng.uniform(0.0, cfg.webhook_retry_jitter_s)
            outcome, retry_in = "retry", round((cfg.webhook_retry_interval_s + jitter) * cfg.webhook_time_scale, 6)
        else:
            outcome, retry_in = "failed", None
        if self.outbox._finish_attempt(d, status, error, outcome, retry_in) and retry_in is not None:
            d.attempt += 1
            self.loop.call_later(retry_in, self._enqueue, d)

    async def _shutdown(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
