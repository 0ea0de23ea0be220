"""A user reads whole locations: contact search past 10,000, legacy listing, tasks in batches, fan-out."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_contacts.errors import GHLPaginationError, GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.models import SearchFilter, SearchSort


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def test_search_reads_more_than_10000_contacts_once_each(sandbox_factory, monkeypatch) -> None:
    big = sandbox_factory(contacts=10_200, tasks_per_contact=0.0, notes_per_contact=0.0, rate_limit="1000/1")
    monkeypatch.setenv("AIRFLOW_CONN_GHL_BIG", big.conn_json())
    hook = ContactsHook("ghl_big")

    seen = Counter(c.id for c in hook.iter_search_contacts())

    expected = {c["id"] for c in big.admin.dump()["contacts"]}
    assert len(expected) == 10_200
    assert set(seen) == expected and max(seen.values()) == 1
    # 500 per page: 21 pages (the last one short), each one request.
    assert big.admin.counters()["by_operation"]["search-contacts-advanced"] == 21


def test_search_filters_on_date_updated_and_sorts(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    contacts = sandbox.admin.dump()["contacts"]
    time.sleep(0.01)
    since = datetime.now(timezone.utc)
    touched = {sandbox.admin.update_contact(c["id"], city="Touched")["id"] for c in contacts[:7]}

    changed = list(
        hook.iter_search_contacts(
            filters=[SearchFilter(field="dateUpdated", operator="range", value={"gte": since})], page_limit=3
        )
    )
    assert {c.id for c in changed} == touched and len(changed) == 7

    newest_first = list(hook.iter_search_contacts(sort=[SearchSort(field="dateAdded", direction="desc")], page_limit=50))
    assert len(newest_first) == 200
    added = [c.dateAdded for c in newest_first]
    assert added == sorted(added, reverse=True)


def test_legacy_listing_reads_every_contact_once(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    seen = Counter(c.id for c in hook.iter_contacts_legacy(limit=30))
    assert set(seen) == {c["id"] for c in sandbox.admin.dump()["contacts"]}
    assert max(seen.values()) == 1


class _FakeAPI(BaseHTTPRequestHandler):
    """Base of the small fake HighLevel servers below: JSON answers, no request log."""

    def send_json(self, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def json_body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api(monkeypatch):
    """``start(handler)`` serves ``handler`` on a free port and returns a hook pointed at it."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> ContactsHook:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{server.server_port}", "password": "t", "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_FAKE", json.dumps(conn))
        return ContactsHook("ghl_fake")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class _RepeatingCursorAPI(_FakeAPI):
    """A broken server whose legacy listing hands out the same cursor forever."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.send_json(
            {
                "contacts": [{"id": f"c{i}"} for i in range(2)],
                "meta": {"startAfter": 1_700_000_000_000, "startAfterId": "c1", "total": 10},
            }
        )


def test_legacy_listing_stops_on_a_repeated_cursor(fake_api) -> None:
    hook = fake_api(_RepeatingCursorAPI)
    with pytest.raises(GHLPaginationError, match="cursor .* a second time"):
        list(hook.iter_contacts_legacy(limit=2))
    assert hook.stats.requests == 2


def test_skip_paging_stops_when_the_server_ignores_skip(fake_api) -> None:
    # The same broken server answers every GET with the same full page, whatever ``skip`` says.
    hook = fake_api(_RepeatingCursorAPI)
    with pytest.raises(GHLPaginationError, match="same page again for skip=2"):
        list(hook.iter_contacts_by_business("B1", limit=2))
    assert hook.stats.requests == 2


def test_location_tasks_come_in_batches_of_contact_ids(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn, task_batch_size=40)
    dump = sandbox.admin.dump()
    ids = [c["id"] for c in dump["contacts"][:100]]
    sandbox.admin.reset_counters()

    tasks = list(hook.iter_location_tasks(contact_ids=ids, page_limit=25))

    expected = {t["id"] for t in dump["tasks"] if t["contactId"] in set(ids)}
    assert Counter(t.id for t in tasks) == Counter(expected)
    assert all(t.contactId in ids for t in tasks)
    searches = sandbox.admin.counters()["by_operation"]["task-search"]
    assert searches >= 3  # three batches of ids, more pages where a batch has many tasks

    open_tasks = list(hook.iter_location_tasks(completed=False))
    assert {t.id for t in open_tasks} == {t["id"] for t in dump["tasks"] if not t["completed"]}


def test_fan_out_fetches_every_task_and_note_once(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn, task_batch_size=50)
    dump = sandbox.admin.dump()
    ids = [c["id"] for c in dump["contacts"]]

    activities = list(hook.fetch_tasks_and_notes(iter(ids), max_workers=6))

    assert sorted(a.contact_id for a in activities) == sorted(ids)
    tasks = Counter(t.id for a in activities for t in a.tasks)
    notes = Counter(n.id for a in activities for n in a.notes)
    assert tasks == Counter(t["id"] for t in dump["tasks"])
    assert notes == Counter(n["id"] for n in dump["notes"])
    assert all(t.contactId == a.contact_id for a in activities for t in a.tasks)
    assert all(n.contactId == a.contact_id for a in activities for n in a.notes)
    # Tasks came from 4 batched searches (not 200 calls); notes need one call per contact.
    by_op = sandbox.admin.counters()["by_operation"]
    assert by_op.get("get-all-tasks", 0) == 0 and by_op["get-all-notes"] == 200


def test_fan_out_falls_back_per_contact_without_the_task_search_scope(sandbox, monkeypatch, caplog) -> None:
    token = sandbox.admin.issue_token(scopes=["contacts.readonly", "contacts.write"])
    conn = json.loads(sandbox.conn_json())
    conn["password"] = token
    monkeypatch.setenv("AIRFLOW_CONN_GHL_NARROW", json.dumps(conn))
    hook = ContactsHook("ghl_narrow", task_batch_size=25)
    dump = sandbox.admin.dump()
    ids = [c["id"] for c in dump["contacts"][:60]]

    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts"):
        activities = list(hook.fetch_tasks_and_notes(ids, max_workers=4))
        more = list(hook.iter_location_tasks(contact_ids=ids[:5]))

    expected = Counter(t["id"] for t in dump["tasks"] if t["contactId"] in set(ids))
    assert Counter(t.id for a in activities for t in a.tasks) == expected
    assert {t.id for t in more} == {t["id"] for t in dump["tasks"] if t["contactId"] in set(ids[:5])}
    fallbacks = [r for r in caplog.records if "falling back" in r.getMessage()]
    assert len(fallbacks) == 1 and "locations/tasks.readonly" in fallbacks[0].getMessage()
    assert sandbox.admin.counters()["by_operation"]["get-all-tasks"] == 65


def test_fan_out_pulls_ids_lazily_in_a_bounded_window(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn, task_batch_size=20)
    ids = [c["id"] for c in sandbox.admin.dump()["contacts"]]
    pulled = 0
    widest = 0

    def id_stream():
        nonlocal pulled
        for cid in ids:
            pulled += 1
            yield cid

    done = 0
    for _ in hook.fetch_tasks_and_notes(id_stream(), max_workers=3):
        done += 1
        widest = max(widest, pulled - done)
    assert done == 200
    assert widest <= 3 * 20  # never more than a few batches ahead of what was yielded


def test_business_read_with_a_limit_above_the_cap_returns_every_contact_once(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    ids = [c["id"] for c in sandbox.admin.dump()["contacts"][:130]]
    hook.bulk_update_business(ids, "big-business")
    sandbox.admin.reset_counters()

    seen = Counter(c.id for c in hook.iter_contacts_by_business("big-business", limit=200))

    assert seen == Counter(ids)  # all 130, each once (the endpoint answers at most 100 per page)
    assert sandbox.admin.counters()["by_operation"]["get-contacts-by-businessId"] == 2
    requests = hook.stats.requests
    with pytest.raises(GHLValidationError, match=r"parameter 'limit' must be 1\.\.100 \(got 200\).*iter_contacts_by_business"):
        hook.get_contacts_by_business("big-business", limit=200)
    assert hook.stats.requests == requests  # refused before any request


class _CappingAPI(_FakeAPI):
    """A server that silently answers at most 25 items per page, whatever ``limit`` asks, with no
    total: 60 contacts of business B1, 55 tasks in the location task search."""

    CAP = 25
    COUNT = False  # True: business pages carry ``count``, the number of matches
    CONTACTS = [{"id": f"c{i}"} for i in range(60)]
    TASKS = [{"id": f"t{i}", "contactId": "c0", "completed": False} for i in range(55)]

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        query = parse_qs(urlsplit(self.path).query)
        skip = int(query.get("skip", ["0"])[0])
        limit = min(int(query.get("limit", ["25"])[0]), self.CAP)
        page = {"contacts": self.CONTACTS[skip:skip + limit]}
        self.send_json({**page, "count": len(self.CONTACTS)} if self.COUNT else page)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.json_body()
        skip, limit = body.get("skip", 0), min(body.get("limit", 25), self.CAP)
        self.send_json({"tasks": self.TASKS[skip:skip + limit]})


def test_skip_paging_reads_past_a_server_that_caps_the_page_size(fake_api) -> None:
    hook = fake_api(_CappingAPI)

    contacts = [c.id for c in hook.iter_contacts_by_business("B1", limit=40)]
    assert contacts == [f"c{i}" for i in range(60)]
    assert hook.stats.requests == 3  # 25 + 25 + 10: the short third page ends it

    before = hook.stats.requests
    tasks = [t.id for t in hook.iter_location_tasks(page_limit=40)]
    assert tasks == [f"t{i}" for i in range(55)]
    assert hook.stats.requests - before == 3


def test_a_reported_total_reveals_a_cap_of_any_size(fake_api, monkeypatch) -> None:
    monkeypatch.setattr(_CappingAPI, "CAP", 30)
    monkeypatch.setattr(_CappingAPI, "COUNT", True)
    monkeypatch.setattr(_CappingAPI, "CONTACTS", [{"id": f"c{i}"} for i in range(70)])
    hook = fake_api(_CappingAPI)
    assert [c.id for c in hook.iter_contacts_by_business("B1", limit=40)] == [f"c{i}" for i in range(70)]
    assert hook.stats.requests == 3  # 30 + 30 + 10: the total tells the end


@pytest.mark.parametrize(("count", "requests"), [(7, 1), (25, 2)])
def test_only_a_short_first_page_that_could_be_a_cap_costs_a_confirming_request(fake_api, monkeypatch, count, requests) -> None:
    monkeypatch.setattr(_CappingAPI, "CONTACTS", [{"id": f"c{i}"} for i in range(count)])
    hook = fake_api(_CappingAPI)
    assert [c.id for c in hook.iter_contacts_by_business("B1", limit=40)] == [f"c{i}" for i in range(count)]
    assert hook.stats.requests == requests  # 25 (a cap-sized page) is confirmed by an empty next page


class _RepeatingSearchAPI(_FakeAPI):
    """A broken server whose advanced search hands out the same searchAfter cursor forever."""

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.json_body()
        contacts = [{"id": f"c{i}", "searchAfter": [1_700_000_000_000, "c1"]} for i in range(2)]
        self.send_json({"contacts": contacts, "total": 10})


def test_repeated_cursor_errors_give_advice_that_fits_the_operation(fake_api) -> None:
    search = fake_api(_RepeatingSearchAPI)
    with pytest.raises(GHLPaginationError) as caught:
        list(search.iter_search_contacts(page_limit=2))
    message = str(caught.value)
    assert message.startswith("search-contacts-advanced: the API returned the cursor")
    assert "iter_search_contacts" not in message and "split the read with filters" in message

    legacy = fake_api(_RepeatingCursorAPI)
    with pytest.raises(GHLPaginationError, match=r"get-contacts: .*Use the advanced search \(iter_search_contacts\)"):
        list(legacy.iter_contacts_legacy(limit=2))
