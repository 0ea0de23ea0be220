"""A user reads whole locations: contact search past 10,000, legacy listing, tasks in batches, fan-out."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_contacts.errors import GHLPaginationError
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


class _RepeatingCursorAPI(BaseHTTPRequestHandler):
    """A broken server whose legacy listing hands out the same cursor forever."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        body = json.dumps(
            {
                "contacts": [{"id": f"c{i}"} for i in range(2)],
                "meta": {"startAfter": 1_700_000_000_000, "startAfterId": "c1", "total": 10},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_legacy_listing_stops_on_a_repeated_cursor(monkeypatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RepeatingCursorAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{server.server_port}", "password": "t", "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_BROKEN", json.dumps(conn))
        hook = ContactsHook("ghl_broken")
        with pytest.raises(GHLPaginationError, match="cursor .* a second time"):
            list(hook.iter_contacts_legacy(limit=2))
        assert hook.stats.requests == 2
    finally:
        server.shutdown()
        server.server_close()


def test_skip_paging_stops_when_the_server_ignores_skip(monkeypatch) -> None:
    # The same broken server answers every GET with the same full page, whatever ``skip`` says.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RepeatingCursorAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{server.server_port}", "password": "t", "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_BROKEN", json.dumps(conn))
        hook = ContactsHook("ghl_broken")
        with pytest.raises(GHLPaginationError, match="same page again for skip=2"):
            list(hook.iter_contacts_by_business("B1", limit=2))
        assert hook.stats.requests == 2
    finally:
        server.shutdown()
        server.server_close()


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
