"""The hook survives what HighLevel throws at a long run: faults, 429 bursts, quirky creates, daily limits."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_contacts.errors import (
    GHLDailyLimitError,
    GHLRateLimitError,
    GHLServerError,
    GHLTransportError,
    GHLValidationError,
)
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.hooks.retry import RetryPolicy

#: Fast backoff so fault tests stay quick; bounds are still enforced.
FAST = RetryPolicy(max_retries=6, base_s=0.01, cap_s=0.05, max_elapsed_s=30)


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def _hook(server, monkeypatch, conn_id: str = "ghl_test", retry: RetryPolicy = FAST, **extra) -> ContactsHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", server.conn_json(**extra))
    return ContactsHook(conn_id, retry=retry)


def test_five_percent_faults_lose_and_duplicate_nothing_on_a_full_read(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=400, rate_limit="2000/1", fault_rate=0.05, fault_kinds=("500", "502", "503", "drop"))
    hook = _hook(sb, monkeypatch, task_batch_size=None)
    hook.task_batch_size = 40

    contact_ids = Counter(c.id for c in hook.iter_search_contacts(page_limit=50))
    activities = list(hook.fetch_tasks_and_notes(list(contact_ids), max_workers=6))

    truth = sb.admin.dump()
    assert contact_ids == Counter(c["id"] for c in truth["contacts"])
    assert Counter(t.id for a in activities for t in a.tasks) == Counter(t["id"] for t in truth["tasks"])
    assert Counter(n.id for a in activities for n in a.notes) == Counter(n["id"] for n in truth["notes"])
    assert sb.admin.counters()["faults"] > 0
    assert hook.stats.retries >= sb.admin.counters()["faults"]


def test_creates_under_faults_make_exactly_one_record_each(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=0, rate_limit="2000/1", fault_rate=0.2, fault_kinds=("500", "503", "drop"))
    hook = _hook(sb, monkeypatch)

    contacts = [hook.create_contact({"email": f"buyer{i}@example.com", "firstName": f"Buyer{i}"}) for i in range(25)]
    for i, contact in enumerate(contacts):
        hook.create_task(contact.id, {"title": f"Call {i}", "dueDate": "2030-01-01T10:00:00Z"})
        hook.create_note(contact.id, {"body": f"Lead {i} came from the fair"})

    truth = sb.admin.dump()
    assert sorted(c["email"] for c in truth["contacts"]) == sorted(f"buyer{i}@example.com" for i in range(25))
    assert sorted(t["title"] for t in truth["tasks"]) == sorted(f"Call {i}" for i in range(25))
    assert sorted(n["body"] for n in truth["notes"]) == sorted(f"Lead {i} came from the fair" for i in range(25))
    assert sb.admin.counters()["faults"] > 5


def test_create_that_answers_422_after_creating_yields_one_contact(sandbox, ghl_conn) -> None:
    sandbox.admin.configure(create_422_after_create_rate=1.0)
    hook = ContactsHook(ghl_conn)

    with_email = hook.create_contact({"email": "quirk@example.com", "firstName": "Quirk"})
    by_name = hook.create_contact({"firstName": "Nameonly", "lastName": "Person"})

    contacts = sandbox.admin.dump()["contacts"]
    assert [c["id"] for c in contacts if c.get("email") == "quirk@example.com"] == [with_email.id]
    assert [c["id"] for c in contacts if c.get("firstName") == "Nameonly"] == [by_name.id]
    assert sandbox.admin.counters()["by_operation"]["create-contact"] == 2


def test_422_after_create_finds_the_new_twin_when_duplicates_are_allowed(sandbox, ghl_conn) -> None:
    """The duplicate lookup answers with the old contact; the new one is found by its dateAdded."""
    old = sandbox.admin.dump()["contacts"][0]
    sandbox.admin.set_location_settings(sandbox.location_id, allow_duplicates=True)
    sandbox.admin.configure(create_422_after_create_rate=1.0)
    made = ContactsHook(ghl_conn).create_contact({"email": old["email"], "firstName": "Twin"})
    twins = [c for c in sandbox.admin.dump()["contacts"] if c.get("email") == old["email"]]
    assert made.id != old["id"] and made.firstName == "Twin"
    assert sorted(c["id"] for c in twins) == sorted([old["id"], made.id])


def test_a_genuine_duplicate_is_reported_not_papered_over(sandbox, ghl_conn) -> None:
    old = sandbox.admin.dump()["contacts"][0]
    with pytest.raises(GHLValidationError) as err:
        ContactsHook(ghl_conn).create_contact({"email": old["email"], "firstName": "Again"})
    assert err.value.status == 400 and err.value.operation == "create-contact"
    assert [c["id"] for c in sandbox.admin.dump()["contacts"] if c.get("email") == old["email"]] == [old["id"]]


def test_a_burst_of_429s_is_absorbed(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=60, rate_limit="20/1")
    hook = _hook(sb, monkeypatch)
    # Another integration of the same location used up the window just now.
    with sb.client() as other:
        for _ in range(20):
            other.get("/contacts/", params={"locationId": sb.location_id, "limit": 1})
    sb.admin.reset_counters()
    ids = [c["id"] for c in sb.admin.dump()["contacts"]]

    with ThreadPoolExecutor(4) as pool:
        fetched = list(pool.map(lambda cid: hook.get_contact(cid).id, ids))

    assert fetched == ids
    counters = sb.admin.counters()
    assert counters["status_429"] >= 1 and hook.stats.throttled == counters["status_429"]
    assert counters["status_429"] <= 8  # every thread holds off after a 429 instead of hammering
    assert counters["total"] == 60 + counters["status_429"]


def test_sustained_threaded_run_stays_under_the_limit(sandbox_factory, monkeypatch) -> None:
    # A 2 s window (not 1 s): the limiter's padding is proportional to the window, so on a busy CI
    # machine a thread scheduled late cannot push a request into the server's next window.
    sb = sandbox_factory(contacts=150, rate_limit="30/2")
    hook = _hook(sb, monkeypatch)
    ids = [c["id"] for c in sb.admin.dump()["contacts"]]
    sb.admin.reset_counters()

    activities = list(hook.fetch_tasks_and_notes(ids, tasks=False, max_workers=6))

    counters = sb.admin.counters()
    assert len(activities) == 150 and counters["total"] >= 150
    assert counters["status_429"] <= 1  # < 1 % of 150
    print(f"sustained run at 30/2 s: {counters['total']} requests, {counters['status_429']} x 429, stats {hook.stats.as_dict()}")


def test_retries_are_bounded_in_count(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=5, fault_rate=1.0, fault_kinds=("503",))
    hook = _hook(sb, monkeypatch, retry=RetryPolicy(max_retries=3, base_s=0.01, cap_s=0.02))
    with pytest.raises(GHLServerError) as err:
        hook.get_contacts(limit=1)
    assert err.value.status == 503 and "gave up after 4 attempts" in err.value.message
    assert sb.admin.counters()["total"] == 4


def test_read_timeouts_are_retried_then_reported(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=5, fault_rate=1.0, fault_kinds=("delay",), fault_delay_ms=800)
    hook = _hook(sb, monkeypatch, retry=RetryPolicy(max_retries=1, base_s=0.01, cap_s=0.02), read_timeout=0.2)
    with pytest.raises(GHLTransportError) as err:
        hook.get_contacts(limit=1)
    assert "ReadTimeout" in err.value.message and err.value.status is None


def test_stops_before_the_daily_limit(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=50, daily_limit=40)
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DAILY", sb.conn_json())
    hook = ContactsHook("ghl_daily", daily_reserve=10, retry=FAST)
    ids = [c["id"] for c in sb.admin.dump()["contacts"]]

    with pytest.raises(GHLDailyLimitError, match="daily request limit.*10 are kept in reserve"):
        for cid in ids:
            hook.get_contact(cid)

    used = sb.admin.counters()["total"]
    assert 25 <= used <= 30  # stopped with the reserve untouched
    assert sb.admin.counters()["status_429"] == 0
    assert json.loads(sb.conn_json())["extra"]["location_id"] == sb.location_id


def test_retries_are_bounded_in_total_time(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=5, fault_rate=1.0, fault_kinds=("500",))
    hook = _hook(sb, monkeypatch, retry=RetryPolicy(max_retries=100, max_elapsed_s=0.6, base_s=0.2, cap_s=0.2))
    with pytest.raises(GHLServerError, match="gave up after"):
        hook.get_contacts(limit=1)
    assert sb.admin.counters()["total"] < 15  # the time budget, not the 100 retries, ended it


def test_429s_beyond_the_budget_raise_a_rate_limit_error(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(contacts=5, rate_limit="3/5")
    hook = _hook(sb, monkeypatch, retry=RetryPolicy(max_throttled=0))
    with sb.client() as other:  # another integration spends the whole window
        for _ in range(3):
            other.get("/contacts/", params={"locationId": sb.location_id, "limit": 1})
    with pytest.raises(GHLRateLimitError) as err:
        hook.get_contacts(limit=1)
    assert err.value.status == 429 and err.value.trace_id and "still rate limited" in err.value.message


class _CreatesThenFailsAPI:
    """A server whose first upsert creates the contact and then answers 502 (the worst case)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        api = self
        self.upserts = 0
        self.created: dict | None = None

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.upserts += 1
                api.created = {"id": f"c{api.upserts}", "email": sent["email"], "dateAdded": "2099-01-01T00:00:00Z"}
                if api.upserts == 1:
                    self._send(502, {"message": "Bad Gateway"})
                else:
                    self._send(201, {"contact": api.created, "new": True})

            def do_GET(self) -> None:  # noqa: N802 - the duplicate lookup
                self._send(200, {"contact": api.created})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_upsert_that_always_creates_is_not_resent_blindly(monkeypatch) -> None:
    api = _CreatesThenFailsAPI()
    try:
        conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{api.server.server_port}", "password": "t",
                "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_UPSERT", json.dumps(conn))
        hook = ContactsHook("ghl_upsert", retry=FAST)
        result = hook.upsert_contact({"email": "ada@example.com", "createNewIfDuplicateAllowed": True})
        assert api.upserts == 1, "the upsert that created the contact was sent again"
        assert result.contact.id == "c1" and result.new is True
    finally:
        api.close()


# ------------------------------------------------------------------------------------------------
# Writes whose answer was lost after they were applied (the sandbox's ``applied_lost`` fault)
# ------------------------------------------------------------------------------------------------


def _lose_the_next_answer(sb, hook: ContactsHook, monkeypatch) -> None:
    """Arm the sandbox's write fault for one request of ``hook``: it is applied and its answer
    lost; the fault is switched off as soon as that request has returned or raised, so the
    transport's resend is answered (whatever the lost-answer mode: with or without a response)."""
    session = hook._shared_session()
    real = type(session).request

    def request_once(self, *args, **kwargs):
        try:
            return real(self, *args, **kwargs)
        finally:
            sb.admin.configure(write_fault_rate=0.0)
            monkeypatch.setattr(session, "request", real.__get__(session), raising=False)

    monkeypatch.setattr(session, "request", request_once.__get__(session), raising=False)
    sb.admin.configure(write_fault_rate=1.0)


@pytest.mark.parametrize("mode", ["502", "504", "close", "drop"])
def test_a_delete_whose_answer_was_lost_is_reported_as_done(sandbox_factory, monkeypatch, mode) -> None:
    from airflow_provider_contacts.errors import GHLNotFoundError

    sb = sandbox_factory(
        contacts=5, write_fault_rate=0.0, write_fault_kinds=["applied_lost"], lost_answer_modes=[mode],
        fault_operations=["delete-contact", "delete-task", "delete-note"],
    )
    hook = _hook(sb, monkeypatch)
    contact_id = sb.truth()["contacts"][0]["id"]
    note = hook.create_note(contact_id, {"body": "delete me once"})
    task = hook.create_task(contact_id, {"title": "delete me once", "dueDate": "2030-01-01T00:00:00Z"})
    lost_before = sb.admin.counters()["applied_then_lost"]
    deletes = [
        ("notes", note.id, lambda **kw: hook.delete_note(contact_id, note.id, **kw)),
        ("tasks", task.id, lambda **kw: hook.delete_task(contact_id, task.id, **kw)),
        ("contacts", contact_id, lambda **kw: hook.delete_contact(contact_id, **kw)),
    ]
    for kind, record_id, delete in deletes:
        _lose_the_next_answer(sb, hook, monkeypatch)
        retries = hook.stats.retries
        assert delete() is True, f"{kind}: the delete that happened was reported as failed"
        assert hook.stats.retries == retries + 1, f"{kind}: the lost answer was resent once"
        assert record_id not in {r["id"] for r in sb.truth()[kind]}
    assert sb.admin.counters()["applied_then_lost"] == lost_before + 3
    # A delete of a record that is not there, answered at once, still says so.
    with pytest.raises(GHLNotFoundError):
        hook.delete_note(contact_id, note.id)
    assert hook.delete_contact(contact_id, missing_ok=True) is False


def test_a_delete_resent_after_a_429_still_reports_a_missing_record(monkeypatch) -> None:
    """Only an attempt that may have been applied turns a not-found into "deleted": a 429 (never
    applied) before the not-found leaves it an error."""
    from airflow_provider_contacts.errors import GHLNotFoundError
    from airflow_provider_contacts.hooks.transport import CallReport

    answers = iter([(429, {"message": "Too many requests"}), (400, {"statusCode": 400, "message": "Note not found"})])
    server = _ScriptedAPI(answers)
    try:
        conn = {"conn_type": "ghl", "host": server.url, "password": "t", "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_SCRIPTED", json.dumps(conn))
        hook = ContactsHook("ghl_scripted", retry=FAST)
        report = CallReport()
        with pytest.raises(GHLNotFoundError):
            hook.transport.request("DELETE", "/contacts/c1/notes/n1", operation="delete-note", report=report)
        assert report.attempts == 2 and not report.maybe_applied
        server.answers = iter([(503, {"message": "Service Unavailable"}), (400, {"message": "Note not found"})])
        assert hook.delete_note("c1", "n1") is True  # the 503'd attempt may have deleted it
        server.answers = iter([(400, {"message": "Note not found"})])
        with pytest.raises(GHLNotFoundError):
            hook.delete_note("c1", "n1")
    finally:
        server.close()


class _ScriptedAPI:
    """A server answering each request with the next ``(status, body)`` of ``answers``."""

    def __init__(self, answers) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        api = self
        self.answers = answers

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                status, body = next(api.answers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["502", "close"])
def test_an_upsert_whose_answer_was_lost_reports_new_as_before_the_call(sandbox_factory, monkeypatch, mode) -> None:
    sb = sandbox_factory(
        contacts=5, write_fault_rate=0.0, write_fault_kinds=["applied_lost"], lost_answer_modes=[mode],
        fault_operations=["upsert-contact"],
    )
    hook = _hook(sb, monkeypatch)
    lost_before = sb.admin.counters()["applied_then_lost"]

    # The lost attempt created the contact; the resend updated it and answered new=false.
    _lose_the_next_answer(sb, hook, monkeypatch)
    created = hook.upsert_contact({"email": "lost.answer@example.com", "firstName": "Lost"})
    assert created.new is True, "the contact did not exist before the upsert"
    assert [c["id"] for c in sb.truth()["contacts"] if c.get("email") == "lost.answer@example.com"] == [created.contact.id]

    # A contact that was there (seeded, added long before): the lost attempt updated it.
    existing = next(c for c in sb.truth()["contacts"] if c.get("email") and c["id"] != created.contact.id)
    _lose_the_next_answer(sb, hook, monkeypatch)
    updated = hook.upsert_contact({"email": existing["email"], "companyName": "Lost Answers Ltd"})
    assert updated.new is False and updated.contact.id == existing["id"]

    assert sb.admin.counters()["applied_then_lost"] == lost_before + 2
    assert hook.stats.retries == 2
    # Answered at once: HighLevel's own ``new``.
    assert hook.upsert_contact({"email": "lost.answer@example.com"}).new is False
    assert hook.upsert_contact({"email": "fresh.answer@example.com"}).new is True
