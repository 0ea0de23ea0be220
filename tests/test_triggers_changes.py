"""The trigger behind deferrable sensors: JSON-only serialisation, the hook's auth/pacing rules,
and an event for every outcome (never a hang)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from test_sensors_contacts import after_check, run_trigger

from airflow.sdk.module_loading import import_string
from airflow_provider_contacts.sensors.conditions import (
    GHLCondition,
    GHLContactsChangedCondition,
    GHLNoteAddedCondition,
    GHLTaskCreatedCondition,
)
from airflow_provider_contacts.triggers.changes import GHLChangeTrigger


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def test_serialize_round_trips_through_json(sandbox, ghl_conn) -> None:
    condition = GHLTaskCreatedCondition(contact_id="c1", since="2024-05-01T10:00:00+02:00", known_ids=["t1"], title="demo")
    trigger = GHLChangeTrigger(condition.to_kwargs(), ghl_conn_id="crm", location_id="loc1", poll_interval=5, timeout=60)
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["condition"]["since"] == "2024-05-01T08:00:00.000Z"
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert GHLCondition.from_kwargs(kwargs["condition"]) == condition


def test_run_yields_success_once_the_change_happens(sandbox, ghl_conn) -> None:
    contact = sandbox.admin.dump()["contacts"][5]
    trigger = GHLChangeTrigger(GHLNoteAddedCondition(contact_id=contact["id"], since=_now()).to_kwargs(), poll_interval=0.05, timeout=60)
    with after_check(sandbox, "get-all-notes", lambda: sandbox.admin.create_note(contact["id"], body="hi"), checks=3) as box:
        payload = run_trigger(trigger)
    assert payload["status"] == "success" and payload["checks"] >= 3
    assert payload["result"]["note_ids"] == [box["result"]["id"]]


def test_errors_become_error_events_without_secrets(sandbox, monkeypatch) -> None:
    condition = GHLContactsChangedCondition(since=_now()).to_kwargs()
    # A revoked token: 401, not retried forever, the token never appears in the event.
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json())
    monkeypatch.setenv("AIRFLOW_CONN_GHL_BAD_TOKEN", json.dumps({**json.loads(sandbox.conn_json()), "password": "revoked-token-123"}))
    payload = run_trigger(GHLChangeTrigger(condition, ghl_conn_id="ghl_bad_token", poll_interval=0.05, timeout=30))
    assert payload["status"] == "error" and payload["error_type"] == "GHLAuthError"
    assert "revoked-token-123" not in json.dumps(payload) and "401" in payload["message"]
    # A connection that does not exist.
    payload = run_trigger(GHLChangeTrigger(condition, ghl_conn_id="no_such_conn", poll_interval=0.05, timeout=30))
    assert payload["status"] == "error" and "no_such_conn" in payload["message"]
    # A condition the trigger cannot rebuild.
    payload = run_trigger(GHLChangeTrigger({"kind": "moon_phase"}, poll_interval=0.05, timeout=30))
    assert payload["status"] == "error" and "moon_phase" in payload["message"]


def test_the_trigger_paces_itself_under_the_rate_limit(sandbox_factory, monkeypatch) -> None:
    from airflow_provider_contacts.hooks.pacing import reset_limiters

    reset_limiters()
    server = sandbox_factory(contacts=30, rate_limit="3/1")
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", server.conn_json())
    contact = server.admin.dump()["contacts"][0]
    trigger = GHLChangeTrigger(GHLNoteAddedCondition(contact_id=contact["id"], since=_now()).to_kwargs(), poll_interval=0.01, timeout=60)
    with after_check(server, "get-all-notes", lambda: server.admin.create_note(contact["id"], body="x"), checks=8):
        payload = run_trigger(trigger)
    assert payload["status"] == "success" and payload["checks"] >= 8
    # 8+ polls at 3 requests/s with no 429 at all: the shared limiter spaced them.
    assert server.admin.counters()["status_429"] == 0


def test_an_oauth_connection_is_refreshed_in_the_trigger_like_in_the_hook(sandbox, monkeypatch, tmp_path) -> None:
    from test_auth_oauth import install_app, oauth_conn

    from airflow_provider_contacts.hooks.contacts import forget_process_state

    forget_process_state()
    app = install_app(sandbox)
    conn_id = oauth_conn(
        sandbox, app, monkeypatch, access_token="revoked-access-token", rotation_store=f"file:{tmp_path}/tokens.json"
    )
    contact = sandbox.admin.dump()["contacts"][0]
    condition = GHLNoteAddedCondition(contact_id=contact["id"], since="2020-01-01T00:00:00Z").to_kwargs()
    token_calls = sandbox.admin.counters()["by_operation"]["get-access-token"]  # the install's code exchange
    try:
        payload = run_trigger(GHLChangeTrigger(condition, ghl_conn_id=conn_id, poll_interval=0.05, timeout=30))
    finally:
        forget_process_state()
    assert payload["status"] == "success", payload
    counters = sandbox.admin.counters()
    assert counters["status_401"] == 1 and counters["by_operation"]["get-access-token"] == token_calls + 1
    assert "revoked-access-token" not in (tmp_path / "tokens.json").read_text()


def test_the_location_task_search_stops_when_the_server_ignores_skip(monkeypatch) -> None:
    """A broken server that answers every page with the same full page must not be read forever
    (the triggerer would poll it until the daily request limit)."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from airflow_provider_contacts.errors import GHLPaginationError
    from airflow_provider_contacts.sensors.sources import TASK_SEARCH_PAGE_LIMIT, GHLAsyncHookSource

    calls: list[int] = []

    class SamePage(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            calls.append(1)
            tasks = [{"id": f"t{i}", "contactId": "c", "completed": False} for i in range(TASK_SEARCH_PAGE_LIMIT)]
            body = json.dumps({"tasks": tasks}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SamePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = {"conn_type": "ghl", "host": f"http://127.0.0.1:{server.server_port}", "password": "t", "extra": {"location_id": "L"}}
        monkeypatch.setenv("AIRFLOW_CONN_GHL_BROKEN", json.dumps(conn))

        async def read() -> None:
            source = await GHLAsyncHookSource.connect("ghl_broken")
            await source.open_tasks(None)

        with pytest.raises(GHLPaginationError, match="same page again for skip=100"):
            asyncio.run(asyncio.wait_for(read(), 30))
        assert len(calls) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_a_zero_or_negative_poll_interval_is_refused_and_no_timeout_is_described_safely() -> None:
    import pytest

    from airflow_provider_contacts.triggers.changes import describe_timeout
    from airflow_provider_contacts.triggers.events import GHLContactsChangedEventTrigger

    condition = GHLContactsChangedCondition(since=_now()).to_kwargs()
    for bad in (0, -5, "soon", float("nan")):
        with pytest.raises(ValueError, match=r"parameter 'poll_interval' must be a positive number of seconds.*poll_interval=60"):
            GHLChangeTrigger(condition, poll_interval=bad)
        with pytest.raises(ValueError, match=r"GHLContactsChangedEventTrigger: parameter 'poll_interval'"):
            GHLContactsChangedEventTrigger(location_id="loc1", poll_interval=bad)
    assert GHLChangeTrigger(condition, poll_interval=0.5).poll_interval == 0.5
    assert describe_timeout(None) == "before the deferral timeout" and describe_timeout(30) == "within 30 s"


class _FakeSearch:
    """A condition source answering the advanced search over fixed records (dateUpdated asc, id)."""

    def __init__(self, records: list[dict]) -> None:
        self.records = sorted(records, key=lambda r: (r["dateUpdated"], r["id"]))

    def search_contacts(self, filters: list[dict], sort: list[dict], limit: int) -> list[dict]:
        (bound, since), = filters[0]["value"].items()
        match = [r for r in self.records if (r["dateUpdated"] > since if bound == "gt" else r["dateUpdated"] >= since)]
        return match[:limit]


def test_contacts_changed_continues_exactly_at_the_watermark_through_the_trigger_kwargs() -> None:
    same_ms = "2024-05-01T10:00:00.000Z"
    source = _FakeSearch(
        [{"id": f"c{i}", "dateUpdated": same_ms} for i in range(5)]
        + [{"id": "old", "dateUpdated": "2024-05-01T08:00:00.000Z"}, {"id": "late", "dateUpdated": "2024-05-01T10:00:00.001Z"}]
    )
    condition: GHLCondition = GHLContactsChangedCondition(since="2024-05-01T09:00:00Z", max_ids=2)
    batches = []
    while (result := condition.check(source)) is not None:
        batches.append(result["contact_ids"])
        follow_up = condition.next_after(result)  # type: ignore[attr-defined]
        # what a deferred sensor or a restarted trigger carries: JSON kwargs only
        kwargs = GHLChangeTrigger(follow_up.to_kwargs(), poll_interval=1).serialize()[1]
        condition = GHLCondition.from_kwargs(json.loads(json.dumps(kwargs))["condition"])
        assert condition == follow_up
    assert batches == [["c0", "c1"], ["c2", "c3"], ["c4", "late"]]
    assert condition.since == "2024-05-01T10:00:00.001Z" and condition.seen_ids == ["late"]  # type: ignore[attr-defined]
    # the default stays "strictly after since"
    assert GHLContactsChangedCondition(since=same_ms).check(source)["contact_ids"] == ["late"]  # type: ignore[index]
