"""The sandbox's webhook events (``ghl_sandbox/webhooks.py``): documented bodies, signatures over the
exact bytes, HighLevel's delivery rules (only a 429 is retried, on a compressible schedule, with the
same bytes), seeded loss and duplicates, and nothing at all without a subscription.

A tiny HTTP receiver in this module plays the subscriber: it records every request (headers, raw
body, arrival time) and answers what the test's policy says. Signatures are verified with
``cryptography`` against the public keys the sandbox serves. The documented bodies are read from
``ghl-webhooks/*.md`` beside the OpenAPI reference (``GHL_REFERENCE_DIR``, default
``../shared/reference/ghl-openapi``); the schema test skips when they are absent.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ghl_sandbox.__main__ import _parser, config_from_args
from ghl_sandbox.client import SandboxAdminError
from ghl_sandbox.scenario import apply_mutations
from ghl_sandbox.state import SandboxState
from ghl_sandbox.testing import SandboxConfig, SandboxServer
from ghl_sandbox.webhooks import EVENT_TYPES, WebhookKeys

REPO_ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_DOCS = Path(os.environ.get("GHL_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference" / "ghl-openapi")
                    ).parent / "ghl-webhooks"
TIME_SCALE = 0.0002  # HighLevel's 600 s between retries -> 0.12 s (plus up to 0.012 s of jitter)
RETRY_S = 600 * TIME_SCALE
JITTER_S = 60 * TIME_SCALE


# ---- the receiver -----------------------------------------------------------------------------------
class Receiver:
    """Records POSTs; ``policy(body, attempt_number_of_this_webhookId) -> status`` (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.policy: Callable[[dict[str, Any], int], int] = lambda body, n: 200
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw)
                with receiver.lock:
                    seen = sum(1 for r in receiver.requests if r["body"]["webhookId"] == body["webhookId"])
                    receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "raw": raw, "body": body, "at": time.monotonic()})
                status = receiver.policy(body, seen + 1)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
        self.policy = lambda body, n: 200
        self.delay_s = 0.0

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def _hooked() -> Iterator[SandboxServer]:
    config = SandboxConfig(seed=7, contacts=80, rate_limit=None, webhook_time_scale=TIME_SCALE)
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def hooked(_hooked: SandboxServer, receiver: Receiver) -> SandboxServer:
    """A sandbox subscribed (at run time) to ``receiver``, freshly reset; the receiver cleared."""
    _hooked.admin.reset()
    receiver.clear()
    _hooked.admin.subscribe_webhook(receiver.url())
    return _hooked


# ---- helpers ----------------------------------------------------------------------------------------
def verify(request: dict[str, Any], keys: dict[str, str], kinds: tuple[str, ...] = ("rsa", "ed25519")) -> None:
    """Both signatures (or ``kinds``) verify over the exact bytes received; raise otherwise."""
    raw, headers = request["raw"], request["headers"]
    if "rsa" in kinds:
        rsa_key = serialization.load_pem_public_key(keys["rsa_public_key_pem"].encode())
        rsa_key.verify(base64.b64decode(headers["x-wh-signature"]), raw, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert "x-wh-signature" not in headers
    if "ed25519" in kinds:
        ed_key = serialization.load_pem_public_key(keys["ed25519_public_key_pem"].encode())
        ed_key.verify(base64.b64decode(headers["x-ghl-signature"]), raw)
    else:
        assert "x-ghl-signature" not in headers


def wait_received(rec: Receiver, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        with rec.lock:
            if len(rec.requests) >= count:
                return list(rec.requests)
        assert time.monotonic() < deadline, f"expected {count} webhook requests, got {len(rec.requests)}"
        time.sleep(0.01)


def documented_schemas() -> dict[str, dict[str, Any]]:
    """Event type -> the JSON schema of its page in ``ghl-webhooks/``."""
    if not WEBHOOK_DOCS.is_dir():
        pytest.skip(f"HighLevel webhook reference not found at {WEBHOOK_DOCS} (set GHL_REFERENCE_DIR)")
    out = {}
    for event_type in EVENT_TYPES:
        text = (WEBHOOK_DOCS / f"{event_type}.md").read_text(encoding="utf-8")
        out[event_type] = json.loads(re.search(r"```json json_schema\n(.*?)\n```", text, re.S).group(1))
    return out


_JSON_TYPES = {"string": str, "boolean": bool, "array": list, "object": dict, "number": (int, float)}


def assert_documented(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """Every field of ``body`` is documented with a matching type (plus ``timestamp``/``webhookId``,
    from WebhookAuthentication.md), ``type``/``locationId``/``id`` are there."""
    props = schema["properties"]
    assert set(body) - set(props) <= {"timestamp", "webhookId"}, set(body) - set(props)
    for key in ("type", "locationId", "id", "timestamp", "webhookId"):
        assert isinstance(body[key], str) and body[key], key
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["timestamp"])
    for key, value in body.items():
        if key not in props:
            continue
        types = props[key]["type"]
        types = types if isinstance(types, list) else [types]
        assert isinstance(value, tuple(t for name in types for t in
                                       (_JSON_TYPES[name] if isinstance(_JSON_TYPES[name], tuple)
                                        else (_JSON_TYPES[name],)))), (key, value)
        if key == "customFields":
            assert all(set(item) <= {"id", "value"} for item in value)
        if key == "dndSettings":
            assert set(value) <= set(props[key]["properties"])


# ---- tests ------------------------------------------------------------------------------------------
def test_no_subscription_costs_nothing() -> None:
    state = SandboxState(SandboxConfig(contacts=5, rate_limit=None))
    store = state.store
    cid = store.create_contact(store.locations[store.primary_location_id], {"firstName": "Quiet"})["id"]
    store.update_contact(cid, {"city": "Nowhere", "tags": ["x"], "dnd": True})
    task = store.create_task(cid, {"title": "t", "dueDate": "2030-01-01T00:00:00Z", "completed": False})
    store.update_task(cid, task["id"], {"completed": True})
    store.delete_contact(cid)
    outbox = state.webhooks
    assert not outbox.active and outbox.events() == [] and outbox.deliveries()["emitted"] == 0
    assert outbox._sender is None and not outbox._keysets  # no delivery thread, no key was ever made


def test_subscriptions_filter_stop_and_reset(_hooked: SandboxServer, receiver: Receiver) -> None:
    sb = _hooked
    sb.admin.reset()
    receiver.clear()
    sb.admin.create_contact(firstName="Nobody listens")
    assert sb.admin.wait_for_webhooks() == {"deliveries": [], "pending": 0, "emitted": 0, "by_outcome": {},
                                            "last_seq": 0}
    # a subscription for another location hears nothing of this one; unsubscribing stops events
    other = sb.admin.add_location(contacts=0)
    sb.admin.subscribe_webhook(receiver.url("/other"), location_id=other)
    sb.admin.create_contact(firstName="Still quiet")
    assert sb.admin.wait_for_webhooks()["emitted"] == 0
    sb.admin.subscribe_webhook(receiver.url("/all"))
    assert {(s["url"], s["locationId"], s["source"]) for s in sb.admin.webhook_subscriptions()} == {
        (receiver.url("/other"), other, "runtime"), (receiver.url("/all"), None, "runtime")}
    sb.admin.create_contact(firstName="Heard")
    sb.admin.unsubscribe_webhook(receiver.url("/all"))
    sb.admin.create_contact(firstName="Not heard")
    sb.admin.create_contact(location_id=other, firstName="Elsewhere")
    sb.admin.wait_for_webhooks()
    assert sorted((r["path"], r["body"]["firstName"]) for r in receiver.requests) == [
        ("/all", "Heard"), ("/other", "Elsewhere")]
    assert len(sb.admin.webhook_events()) == 2
    # reset drops run-time subscriptions; bad URLs are refused with the field named
    sb.admin.reset()
    assert sb.admin.webhook_subscriptions() == []
    with pytest.raises(SandboxAdminError, match="not an absolute http"):
        sb.admin.subscribe_webhook("ftp://example.com/x")
    with pytest.raises(ValueError, match="webhook_loss_rate"):
        SandboxConfig(webhook_loss_rate=1.5)


def test_each_api_change_sends_its_documented_signed_event(hooked: SandboxServer, receiver: Receiver) -> None:
    schemas = documented_schemas()
    loc = hooked.location_id
    with hooked.client() as api:
        created = api.post("/contacts/", json={"locationId": loc, "firstName": "Ada", "lastName": "Lovelace",
                                               "email": "ada@example.com", "phone": "+14155550100",
                                               "city": "London", "tags": ["VIP"]}).json()["contact"]
        cid = created["id"]
        api.put(f"/contacts/{cid}", json={"city": "Paris"}).raise_for_status()
        api.post(f"/contacts/{cid}/tags", json={"tags": ["gold"]}).raise_for_status()
        api.put(f"/contacts/{cid}", json={"dnd": True, "dndSettings": {"SMS": {"status": "active"}}}).raise_for_status()
        task = api.post(f"/contacts/{cid}/tasks", json={"title": "Call", "body": "about the engine",
                                                        "dueDate": "2030-01-02T03:04:05.000Z",
                                                        "completed": False}).json()["task"]
        api.put(f"/contacts/{cid}/tasks/{task['id']}", json={"title": "Call back"}).raise_for_status()  # no event
        api.put(f"/contacts/{cid}/tasks/{task['id']}/completed", json={"completed": True}).raise_for_status()
        api.put(f"/contacts/{cid}/tasks/{task['id']}/completed", json={"completed": True}).raise_for_status()  # still done
        second = api.post(f"/contacts/{cid}/tasks", json={"title": "Write", "dueDate": "2030-01-03T00:00:00Z",
                                                          "completed": False}).json()["task"]
        api.delete(f"/contacts/{cid}/tasks/{second['id']}").raise_for_status()
        note = api.post(f"/contacts/{cid}/notes", json={"body": "Analytical \u0000engine"}).json()["note"]
        api.put(f"/contacts/{cid}/notes/{note['id']}", json={"body": "Difference engine"}).raise_for_status()
        gone = api.post(f"/contacts/{cid}/notes", json={"body": "to delete"}).json()["note"]
        api.delete(f"/contacts/{cid}/notes/{gone['id']}").raise_for_status()
        api.delete(f"/contacts/{cid}").raise_for_status()  # with its task and note: only ContactDelete
    log = hooked.admin.wait_for_webhooks()
    keys = hooked.webhook_keys()
    requests = wait_received(receiver, log["emitted"])
    got = [(r["body"]["type"], r["body"]["id"]) for r in requests]
    assert got == [
        ("ContactCreate", cid), ("ContactUpdate", cid), ("ContactTagUpdate", cid), ("ContactDndUpdate", cid),
        ("TaskCreate", task["id"]), ("TaskComplete", task["id"]), ("TaskCreate", second["id"]),
        ("TaskDelete", second["id"]), ("NoteCreate", note["id"]), ("NoteUpdate", note["id"]),
        ("NoteCreate", gone["id"]), ("NoteDelete", gone["id"]), ("ContactDelete", cid),
    ]
    assert log["by_outcome"] == {"delivered": len(got)}
    for request in requests:
        verify(request, keys)
        body = request["body"]
        assert request["raw"] == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        assert body["locationId"] == loc and request["path"] == "/hook"
        assert request["headers"]["content-type"] == "application/json"
        assert_documented(body, schemas[body["type"]])
    assert len({r["body"]["webhookId"] for r in requests}) == len(requests)
    by_type: dict[str, dict[str, Any]] = {}
    for request in requests:
        by_type.setdefault(request["body"]["type"], request["body"])  # the first of each type
    assert by_type["ContactCreate"]["email"] == "ada@example.com" and by_type["ContactCreate"]["tags"] == ["vip"]
    assert by_type["ContactUpdate"]["city"] == "Paris"
    assert by_type["ContactTagUpdate"]["tags"] == ["gold", "vip"]
    assert by_type["ContactDndUpdate"]["dnd"] is True and by_type["ContactDndUpdate"]["dndSettings"]["SMS"]
    assert "dndSettings" not in by_type["ContactUpdate"]
    assert by_type["TaskComplete"]["title"] == "Call back" and by_type["TaskComplete"]["body"] == "about the engine"
    assert by_type["TaskCreate"]["contactId"] == cid and by_type["TaskCreate"]["dueDate"].startswith("2030-01-02")
    assert by_type["NoteUpdate"]["body"] == "Difference engine"
    assert by_type["ContactDelete"]["dnd"] is True and by_type["ContactDelete"]["city"] == "Paris"
    # the tampered body or another key does not verify (the receiver's checks have something to catch)
    with pytest.raises(InvalidSignature):
        verify({**requests[0], "raw": requests[0]["raw"].replace(b"Ada", b"Eve")}, keys)
    other = WebhookKeys(seed="another sandbox").ed25519_private_key().public_key()
    with pytest.raises(InvalidSignature):
        other.verify(base64.b64decode(requests[0]["headers"]["x-ghl-signature"]), requests[0]["raw"])


def test_admin_changes_send_events_too(hooked: SandboxServer, receiver: Receiver) -> None:
    before = hooked.truth()
    completed_before = {t["id"]: t["completed"] for t in before["tasks"]}
    changes = apply_mutations(hooked.admin, seed=5)
    log = hooked.admin.wait_for_webhooks()
    bodies = [r["body"] for r in wait_received(receiver, log["emitted"])]
    counts = Counter(b["type"] for b in bodies)
    newly_completed = [t for t in changes.tasks_completed if not completed_before[t]]
    assert counts["ContactCreate"] == len(changes.contacts_created)
    assert counts["ContactDelete"] == len(changes.contacts_deleted)
    assert counts["ContactUpdate"] == len(changes.contacts_updated)  # city changed
    assert counts["TaskCreate"] == len(changes.tasks_created)
    assert counts["TaskComplete"] == len(newly_completed)  # un-completing and editing send nothing
    assert counts["TaskDelete"] == len(changes.tasks_deleted)
    assert counts["NoteCreate"] == len(changes.notes_created)
    assert counts["NoteUpdate"] == len(changes.notes_edited)
    assert counts["NoteDelete"] == len(changes.notes_deleted)
    assert {b["id"] for b in bodies if b["type"] == "ContactDelete"} == set(changes.contacts_deleted)
    # nothing for the tasks and notes that went with deleted contacts (as on HighLevel)
    deleted_children = {t["id"] for t in before["tasks"] + before["notes"] if t["contactId"] in changes.contacts_deleted}
    assert not deleted_children & {b["id"] for b in bodies}
    assert {b["id"] for b in bodies if b["type"] == "TaskComplete"} == set(newly_completed)
    keys = hooked.webhook_keys()
    for request in receiver.requests:
        verify(request, keys)
    # admin touch (no fields) and tags-only changes
    receiver.clear()
    cid = changes.contacts_updated[0]
    hooked.admin.update_contact(cid)
    hooked.admin.update_contact(cid, tags=["only-tags"])
    hooked.admin.wait_for_webhooks()
    assert [b["type"] for b in receiver.bodies()] == ["ContactUpdate", "ContactTagUpdate"]


def test_a_429_is_retried_with_the_same_bytes_on_the_compressed_schedule(hooked: SandboxServer,
                                                                         receiver: Receiver) -> None:
    receiver.policy = lambda body, n: 429 if n <= 2 else 200
    cid = hooked.admin.create_contact(firstName="Retry")["id"]
    requests = wait_received(receiver, 3, timeout_s=5)
    log = hooked.admin.wait_for_webhooks()
    assert len({r["raw"] for r in requests}) == 1  # same body, so same timestamp and webhookId
    assert len({(r["headers"]["x-wh-signature"], r["headers"]["x-ghl-signature"]) for r in requests}) == 1
    assert requests[0]["body"]["id"] == cid
    gaps = [b["at"] - a["at"] for a, b in zip(requests, requests[1:])]
    assert all(RETRY_S * 0.9 <= g <= RETRY_S + JITTER_S + 0.5 for g in gaps), gaps
    assert [(d["attempt"], d["status"], d["outcome"]) for d in log["deliveries"]] == [
        (1, 429, "retry"), (2, 429, "retry"), (3, 200, "delivered")]
    assert all(RETRY_S <= d["retry_in_s"] <= RETRY_S + JITTER_S for d in log["deliveries"][:2])
    time.sleep(2 * RETRY_S)
    assert len(receiver.requests) == 3
    # always 429: HighLevel gives up after 6 retries (7 attempts)
    receiver.clear()
    receiver.policy = lambda body, n: 429
    hooked.admin.clear_webhook_deliveries()
    hooked.admin.create_contact(firstName="Never")
    log = hooked.admin.wait_for_webhooks(timeout_s=10)
    assert [d["outcome"] for d in log["deliveries"]] == ["retry"] * 6 + ["failed"]
    assert len(receiver.requests) == 7 and len({r["raw"] for r in receiver.requests}) == 1


def test_other_failures_are_final(hooked: SandboxServer, receiver: Receiver) -> None:
    receiver.policy = lambda body, n: 500
    hooked.admin.create_contact(firstName="Five hundred")
    log = hooked.admin.wait_for_webhooks()
    time.sleep(2 * RETRY_S + JITTER_S)
    assert len(receiver.requests) == 1
    assert [(d["status"], d["outcome"]) for d in hooked.admin.webhook_deliveries()["deliveries"]] == [(500, "failed")]
    # a receiver that is down loses the event, as on HighLevel
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{sock.getsockname()[1]}/down"
    hooked.admin.unsubscribe_webhook(receiver.url())
    hooked.admin.subscribe_webhook(closed_url)
    since = log["last_seq"]
    hooked.admin.create_contact(firstName="Down")
    hooked.admin.wait_for_webhooks()
    entry, = hooked.admin.webhook_deliveries(since=since)["deliveries"]
    assert entry["outcome"] == "failed" and entry["status"] is None and "ConnectError" in entry["error"]
    # a timeout is final too
    hooked.admin.unsubscribe_webhook(closed_url)
    hooked.admin.subscribe_webhook(receiver.url())
    hooked.admin.configure(webhook_timeout_s=0.2)
    receiver.clear()
    receiver.delay_s = 0.6
    since = hooked.admin.webhook_deliveries()["last_seq"]
    hooked.admin.create_contact(firstName="Slow")
    hooked.admin.wait_for_webhooks()
    entry, = hooked.admin.webhook_deliveries(since=since)["deliveries"]
    assert (entry["error"], entry["outcome"]) == ("timeout", "failed")
    time.sleep(RETRY_S + JITTER_S)
    assert len(receiver.requests) == 1


def _outcomes(sb: SandboxServer, rounds: int) -> tuple[list[str], Counter[str]]:
    """Tag changes on every contact through the API (bulk: one event per contact and round); the
    delivery outcomes per event in emission order."""
    with sb.client() as api:
        ids = [c["id"] for c in sb.truth()["contacts"]]
        for kind, tag in (("add", "alpha"), ("add", "beta"))[:rounds]:
            api.post(f"/contacts/bulk/tags/update/{kind}",
                     json={"locationId": sb.location_id, "contacts": ids, "tags": [tag]}).raise_for_status()
    log = sb.admin.wait_for_webhooks(timeout_s=20)
    events = sb.admin.webhook_events()
    by_id: dict[str, list[str]] = {}
    for d in log["deliveries"]:
        by_id.setdefault(d["webhookId"], []).append(d["outcome"])
    return ["+".join(by_id[e["webhookId"]]) for e in events], Counter(o for d in log["deliveries"] for o in [d["outcome"]])


def test_loss_and_duplicate_rates_are_seeded_and_statistically_right(hooked: SandboxServer,
                                                                      receiver: Receiver) -> None:
    loss, dup = 0.3, 0.2
    settings = {"webhook_loss_rate": loss, "webhook_duplicate_rate": dup, "webhook_signatures": ["ed25519"]}
    hooked.admin.configure(**settings)
    pattern, outcomes = _outcomes(hooked, rounds=2)
    n = len(pattern)
    assert n == 160
    lost = pattern.count("lost")
    received = Counter(b["webhookId"] for b in receiver.bodies())
    events = {e["webhookId"] for e in hooked.admin.webhook_events()}
    assert len(received) == n - lost and set(received) <= events  # every event not lost arrives
    twice = sum(1 for c in received.values() if c == 2)
    assert max(received.values()) <= 2 and outcomes["delivered"] == n - lost + twice
    assert abs(lost - n * loss) <= 4 * math.sqrt(n * loss * (1 - loss)), lost
    sent = n - lost
    assert abs(twice - sent * dup) <= 4 * math.sqrt(sent * dup * (1 - dup)), twice
    # the same changes after a reset (same seed) meet the same losses and duplicates
    hooked.admin.reset()
    hooked.admin.configure(**settings)
    receiver.clear()
    hooked.admin.subscribe_webhook(receiver.url())
    again = _outcomes(hooked, rounds=1)[0]
    assert again == pattern[:len(again)] and len(again) == 80


def test_child_process_and_cli_flags(receiver: Receiver) -> None:
    receiver.clear()
    args = _parser().parse_args(["--webhook-url", receiver.url("/a"), "--webhook-url", receiver.url("/b?x=1,2"),
                                 "--webhook-signatures", "ed25519", "--webhook-time-scale", "0.001"])
    config = config_from_args(args)
    assert config.webhook_urls == (receiver.url("/a"), receiver.url("/b?x=1,2"))
    assert (config.webhook_signatures, config.webhook_time_scale) == (("ed25519",), 0.001)
    config = config.updated(contacts=3, rate_limit=None)
    with SandboxServer(config, subprocess=True) as sb:
        with sb.client() as api:
            cid = api.post("/contacts/", json={"locationId": sb.location_id, "firstName": "Child"}).json()["contact"]["id"]
        requests = wait_received(receiver, 2)
        keys = sb.webhook_keys()
        assert sorted(s["source"] for s in sb.admin.webhook_subscriptions()) == ["config", "config"]
    assert sorted(r["path"] for r in requests) == ["/a", "/b?x=1,2"]
    assert requests[0]["raw"] == requests[1]["raw"] and requests[0]["body"]["id"] == cid
    for request in requests:
        verify(request, keys, ("ed25519",))


def test_keys_derived_from_a_seed_are_the_same_in_every_process() -> None:
    def ed_pem(keys: WebhookKeys) -> bytes:
        return keys.ed25519_private_key().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert ed_pem(WebhookKeys("rehearsal")) == ed_pem(WebhookKeys("rehearsal")) != ed_pem(WebhookKeys("other"))
    assert ed_pem(WebhookKeys()) != ed_pem(WebhookKeys())  # no seed: fresh random keys
    seeded = WebhookKeys("rehearsal")  # RSA from the seed: a valid 2048-bit key that verifies
    headers = seeded.sign(b'{"type":"ContactCreate"}', ("rsa",))
    public = seeded.rsa_private_key().public_key()
    assert public.key_size == 2048 and public.public_numbers().e == 65537
    public.verify(base64.b64decode(headers["x-wh-signature"]), b'{"type":"ContactCreate"}', padding.PKCS1v15(),
                  hashes.SHA256())
