"""Creates stay exactly-once both ways (issue #14, item 6).

A create that fails ambiguously (the server applied it, then the answer was lost) is looked up
before it is sent again - and the look-up adopts only the record that attempt made: never one that
was there before, even an identical one, and never one another create already returned. Before
this, 7 of 60 deliberate second identical notes came back with the first note's id.

The API is :class:`FaultyAPI`, an in-test HTTP server that, with a seeded probability, APPLIES a
create and then drops the connection without answering, or answers 502 after applying. Its clock
can run minutes off ours (``Date`` header and ``dateAdded`` alike). Notes carry ``dateAdded``;
tasks, as contacts.json's ``TaskSchema`` documents them, do not.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.hooks.creates import CLAIMS, ServerClock
from airflow_provider_contacts.hooks.retry import RetryPolicy

RATE_HEADERS = {"X-RateLimit-Max": "5000", "X-RateLimit-Interval-Milliseconds": "1000", "X-RateLimit-Remaining": "4999"}
FAST = RetryPolicy(max_retries=8, base_s=0.001, cap_s=0.01, max_elapsed_s=60)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FaultyAPI:
    """Contacts, notes and tasks of one location, with applied-then-lost create faults.

    :param fault_rate: probability that a create is applied and then answered by a dropped
        connection (half of them) or a 502 (the other half); seeded.
    :param clock_offset_s: the server's clock minus ours (``Date`` headers and ``dateAdded``).
    :param task_dates: whether tasks carry ``dateAdded`` (contacts.json: they do not).

    ``force`` queues the fault of the next creates: ``"drop"`` / ``"502"`` (applied, answer lost)
    or ``"lost"`` (the connection dropped before anything was applied).
    """

    def __init__(self, fault_rate: float = 0.0, seed: int = 14, clock_offset_s: float = 0.0,
                 task_dates: bool = False) -> None:
        api = self
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.clock_offset_s = clock_offset_s
        self.task_dates = task_dates
        self.force: list[str] = []
        self.faults: Counter[str] = Counter()
        self.creates = 0
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self._next = 0

        class Handler(BaseHTTPRequestHandler):
            def date_time_string(self, timestamp: float | None = None) -> str:  # the server's clock
                return formatdate(api.now_s() if timestamp is None else timestamp, usegmt=True)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in RATE_HEADERS.items():  # a generous budget: pacing is not under test
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                parts = urlsplit(self.path)
                outcome = api.route(self.command, parts.path, parse_qs(parts.query), body)
                if outcome is None:  # dropped: close without a byte of answer
                    self.close_connection = True
                    return
                self._answer(*outcome)

            do_GET = do_POST = _handle  # noqa: N815 - http.server naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def now_s(self) -> float:
        return time.time() + self.clock_offset_s

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}{self._next:05d}{self.rng.choice('abcdefgh')}"

    def _fault(self) -> str | None:
        if self.force:
            return self.force.pop(0)
        if self.rng.random() < self.fault_rate:
            return self.rng.choice(["drop", "502"])
        return None

    def _create(self, make: Any) -> tuple[int, Any] | None:
        """Apply ``make()`` unless the fault is "lost"; then answer, drop, or 502."""
        fault = self._fault()
        if fault is not None:
            self.faults[fault] += 1
        if fault == "lost":
            return None
        answer = make()
        self.creates += 1
        if fault == "drop":
            return None
        if fault == "502":
            return 502, {"statusCode": 502, "message": "Bad Gateway"}
        return 201, answer

    def add_note(self, contact_id: str, body: str, age_s: float = 0.0) -> dict[str, Any]:
        """Put a note there directly (made ``age_s`` seconds ago on the server's clock)."""
        with self.lock:
            note = {"id": self._id("n"), "body": body, "contactId": contact_id,
                    "dateAdded": _iso(int((self.now_s() - age_s) * 1000))}
            self.notes.setdefault(contact_id, []).append(note)
            return note

    def add_task(self, contact_id: str, title: str, due: str) -> dict[str, Any]:
        with self.lock:
            task = {"id": self._id("t"), "title": title, "dueDate": due, "completed": False, "contactId": contact_id}
            self.tasks.setdefault(contact_id, []).append(task)
            return task

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any] | None:
        parts = path.strip("/").split("/")
        with self.lock:
            now_ms = int(self.now_s() * 1000)
            if method == "POST" and len(parts) == 3 and parts[0] == "contacts" and parts[2] == "notes":
                def note() -> Any:
                    item = {"id": self._id("n"), "body": body["body"], "contactId": parts[1], "dateAdded": _iso(now_ms)}
                    self.notes.setdefault(parts[1], []).append(item)
                    return {"note": item}
                return self._create(note)
            if method == "POST" and len(parts) == 3 and parts[0] == "contacts" and parts[2] == "tasks":
                def task() -> Any:
                    item = {"id": self._id("t"), "title": body["title"], "dueDate": body["dueDate"],
                            "completed": False, "contactId": parts[1]}
                    if self.task_dates:
                        item["dateAdded"] = _iso(now_ms)
                    self.tasks.setdefault(parts[1], []).append(item)
                    return {"task": item}
                return self._create(task)
            if method == "GET" and len(parts) == 3 and parts[2] in ("notes", "tasks"):
                store = self.notes if parts[2] == "notes" else self.tasks
                return 200, {parts[2]: [dict(i) for i in store.get(parts[1], [])]}
            if method == "POST" and parts == ["contacts"]:
                def contact() -> Any:
                    item = {**{k: v for k, v in body.items() if k != "locationId"}, "id": self._id("c"),
                            "locationId": body["locationId"], "dateAdded": _iso(now_ms)}
                    self.contacts[item["id"]] = item
                    return {"contact": item}
                return self._create(contact)
            if method == "GET" and parts == ["contacts", "search", "duplicate"]:
                email = (query.get("email") or [None])[0]
                same = [c for c in self.contacts.values() if email and c.get("email") == email]
                return 200, {"contact": same[0] if same else None}  # the oldest, as HighLevel
            if method == "POST" and parts == ["contacts", "search"]:
                return 200, self._search(body)
        return 404, {"statusCode": 404, "message": f"no route {method} {path}"}

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        found = list(self.contacts.values())
        for f in body.get("filters") or []:
            if f["field"] == "dateAdded":
                gte = f["value"]["gte"]
                found = [c for c in found if c["dateAdded"] >= gte]  # same ISO format: text order is time order
            elif f["field"] == "email":
                found = [c for c in found if c.get("email") == f["value"]]
        found.sort(key=lambda c: (c["dateAdded"], c["id"]), reverse=True)
        return {"contacts": found[: body.get("pageLimit", 100)], "total": len(found)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    forget_process_state()
    yield
    forget_process_state()


@pytest.fixture
def faulty(monkeypatch) -> Iterator[Any]:
    """``start(**FaultyAPI kwargs) -> (api, hook)``."""
    started: list[FaultyAPI] = []

    def start(conn_id: str = "ghl_faulty", **kwargs: Any) -> tuple[FaultyAPI, ContactsHook]:
        api = FaultyAPI(**kwargs)
        started.append(api)
        conn = {"conn_type": "ghl", "host": api.base_url, "password": "t", "extra": {"location_id": "L1"}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return api, ContactsHook(conn_id, retry=FAST)

    yield start
    for api in started:
        api.close()


# ---------------------------------------------------------------------------------------------
# The scenario: 60 pairs of identical creates, back to back, under 15 % applied-then-lost
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clock_offset_s", [0.0, -420.0, 420.0], ids=["same-clock", "server-7min-behind",
                                                                      "server-7min-ahead"])
def test_pairs_of_identical_notes_and_tasks_give_two_records_each(faulty, clock_offset_s) -> None:
    api, hook = faulty(fault_rate=0.15, seed=14, clock_offset_s=clock_offset_s)
    note_ids, task_ids = [], []
    for i in range(60):
        contact = f"c{i % 4}"
        for _ in range(2):
            note_ids.append(hook.create_note(contact, {"body": f"Lead {i} came from the fair"}).id)
        for _ in range(2):
            task_ids.append(hook.create_task(contact, {"title": f"Call {i}", "dueDate": "2030-01-01T10:00:00Z"}).id)

    notes = [n for ns in api.notes.values() for n in ns]
    tasks = [t for ts in api.tasks.values() for t in ts]
    assert len(notes) == 120 and len(tasks) == 120
    assert len(set(note_ids)) == 120 and set(note_ids) == {n["id"] for n in notes}
    assert len(set(task_ids)) == 120 and set(task_ids) == {t["id"] for t in tasks}
    assert Counter(n["body"] for n in notes) == Counter({f"Lead {i} came from the fair": 2 for i in range(60)})
    assert api.faults["drop"] + api.faults["502"] >= 20  # ~15 % of ~240+ creates: the look-up did the work


def test_identical_notes_from_threads_on_one_contact_stay_distinct(faulty) -> None:
    api, hook = faulty(fault_rate=0.15, seed=7)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda _: hook.create_note("c1", {"body": "same text"}).id, range(40)))
    assert len(api.notes["c1"]) == 40
    assert sorted(ids) == sorted(n["id"] for n in api.notes["c1"])
    assert sum(api.faults.values()) > 0


# ---------------------------------------------------------------------------------------------
# What the look-up may adopt, and what it may not
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clock_offset_s", [-420.0, 420.0])
def test_an_identical_note_made_before_the_send_is_never_adopted(faulty, clock_offset_s) -> None:
    """Another process wrote the same note 10 s (server clock) before ours; ours is lost before
    being applied: the hook sends it again instead of returning the other note."""
    api, hook = faulty(clock_offset_s=clock_offset_s)
    hook.list_notes("c1")  # any answer teaches the hook the server's clock
    older = api.add_note("c1", "same text", age_s=10)
    api.force = ["lost"]
    made = hook.create_note("c1", {"body": "same text"})
    assert made.id != older["id"]
    assert [n["id"] for n in api.notes["c1"]] == [older["id"], made.id]


@pytest.mark.parametrize("clock_offset_s", [-420.0, 420.0])
@pytest.mark.parametrize("fault", ["drop", "502"])
def test_the_note_the_failed_attempt_made_is_found_whatever_the_clocks(faulty, clock_offset_s, fault) -> None:
    """Ours was applied and its answer lost; the server's clock is 7 minutes off ours and the create
    is the hook's very first request (the look-up's answer teaches the clock)."""
    api, hook = faulty(clock_offset_s=clock_offset_s)
    older = api.add_note("c1", "same text", age_s=10)
    api.force = [fault]
    made = hook.create_note("c1", {"body": "same text"})
    assert [n["id"] for n in api.notes["c1"]] == [older["id"], made.id]
    assert api.creates == 1


def test_an_identical_task_there_before_the_send_is_never_adopted(faulty) -> None:
    """Tasks carry no dateAdded (TaskSchema): a listing taken before the create tells them apart."""
    api, hook = faulty()
    older = api.add_task("c1", "Call", "2030-01-01T10:00:00Z")
    api.force = ["lost"]
    made = hook.create_task("c1", {"title": "Call", "dueDate": "2030-01-01T10:00:00Z"})
    assert made.id != older["id"]
    assert [t["id"] for t in api.tasks["c1"]] == [older["id"], made.id]
    api.force = ["drop"]
    again = hook.create_task("c1", {"title": "Call", "dueDate": "2030-01-01T10:00:00Z"})
    assert again.id not in (older["id"], made.id) and len(api.tasks["c1"]) == 3


def test_tasks_with_dates_need_no_listing_before_the_create(faulty) -> None:
    api, hook = faulty(task_dates=True)
    hook.create_task("c1", {"title": "First", "dueDate": "2030-01-01T10:00:00Z"})  # learns tasks are dated
    before = hook.stats.requests
    hook.create_task("c1", {"title": "Second", "dueDate": "2030-01-01T10:00:00Z"})
    assert hook.stats.requests == before + 1


def test_tasks_without_dates_cost_one_listing_per_create(faulty) -> None:
    api, hook = faulty()
    before = hook.stats.requests
    hook.create_task("c1", {"title": "First", "dueDate": "2030-01-01T10:00:00Z"})
    assert hook.stats.requests == before + 2
    before = hook.stats.requests
    hook.create_note("c1", {"body": "notes are dated"})
    assert hook.stats.requests == before + 1


@pytest.mark.parametrize("clock_offset_s", [0.0, -420.0, 420.0])
def test_pairs_of_identical_contacts_without_email_or_phone(faulty, clock_offset_s) -> None:
    """A contact without email or phone is found by a dateAdded + name search; the "not returned
    before" rule applies there too (the location allows duplicates here)."""
    api, hook = faulty(fault_rate=0.15, seed=3, clock_offset_s=clock_offset_s)
    ids = []
    for i in range(30):
        for _ in range(2):
            ids.append(hook.create_contact({"firstName": f"Walk{i}", "lastName": "In"}).id)
    assert len(api.contacts) == 60 and sorted(ids) == sorted(api.contacts)
    assert sum(api.faults.values()) >= 3


def test_pairs_of_identical_contacts_with_email_where_duplicates_are_allowed(faulty) -> None:
    """The duplicate look-up by email answers with the oldest contact; once returned, it is never
    returned again, so the search finds the new twin."""
    api, hook = faulty(fault_rate=0.2, seed=5)
    ids = []
    for i in range(20):
        for _ in range(2):
            ids.append(hook.create_contact({"email": f"twin{i}@example.com", "firstName": "Twin"}).id)
    assert len(api.contacts) == 40 and sorted(ids) == sorted(api.contacts)


# ---------------------------------------------------------------------------------------------
# The server's clock
# ---------------------------------------------------------------------------------------------


def test_the_server_clock_is_a_lower_bound_from_date_headers() -> None:
    clock = ServerClock()
    assert clock.server_time(1000.0) is None
    now = time.time()
    clock.observe(formatdate(now + 300.7, usegmt=True), received_at=now)
    assert 299.0 <= clock.offset_s <= 300.7  # truncated to the second: never above the true offset
    clock.observe("not a date", received_at=now)
    clock.observe(None)
    assert 299.0 <= clock.offset_s <= 300.7


def test_claims_are_per_key_and_forgotten_with_the_process_state() -> None:
    assert CLAIMS.claim(("u", "note", "c1"), "n1") is True
    assert CLAIMS.claim(("u", "note", "c1"), "n1") is False
    assert not CLAIMS.is_claimed(("u", "note", "c2"), "n1")
    forget_process_state()
    assert not CLAIMS.is_claimed(("u", "note", "c1"), "n1")
