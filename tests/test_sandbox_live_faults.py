"""Faults that apply a request and then lose its answer (``applied_lost``), as a gateway or a
network does in production: the write happened, the client never hears of it. Selected for writes
with ``write_fault_rate`` (searches are reads and never count as writes), or among ``fault_kinds``;
limited to some operations with ``fault_operations`` / ``fault_exempt_operations``."""

from __future__ import annotations

import httpx
import pytest

from ghl_sandbox.faults import is_write
from ghl_sandbox.testing import SandboxServer

#: What a client sees when the connection closes without a response, or mid-body.
LOST = (httpx.RemoteProtocolError, httpx.ReadError)


def _create(api: httpx.Client, sandbox: SandboxServer, name: str) -> httpx.Response:
    return api.post("/contacts/", json={"locationId": sandbox.location_id, "firstName": name})


def _named(sandbox: SandboxServer, prefix: str) -> list[str]:
    return sorted(c["firstName"] for c in sandbox.truth()["contacts"] if (c["firstName"] or "").startswith(prefix))


@pytest.mark.parametrize("mode", ["close", "drop", "502", "504"])
def test_a_write_is_applied_and_then_its_answer_is_lost(sandbox: SandboxServer, mode: str) -> None:
    sandbox.admin.configure(write_fault_rate=1.0, lost_answer_modes=[mode])
    with sandbox.client() as api:
        if mode in ("502", "504"):
            r = _create(api, sandbox, f"Lost {mode}")
            assert r.status_code == int(mode) and r.json()["statusCode"] == int(mode) and r.json()["traceId"]
        else:
            with pytest.raises(LOST):
                _create(api, sandbox, f"Lost {mode}")
    assert _named(sandbox, "Lost") == [f"Lost {mode}"]  # applied, exactly once
    counters = sandbox.admin.counters()
    assert counters["faults_by_kind"] == {"applied_lost": 1} and counters["faults"] == 1
    assert counters["lost_answers_by_mode"] == {mode: 1}
    assert counters["applied_then_lost"] == 1 and counters["applied_then_lost_by_operation"] == {"create-contact": 1}


def test_closing_without_a_response_looks_like_a_dead_connection(sandbox: SandboxServer) -> None:
    import requests

    sandbox.admin.configure(write_fault_rate=1.0, lost_answer_modes=["close"])
    with pytest.raises(requests.ConnectionError, match="without response"):
        requests.post(f"{sandbox.base_url}/contacts/", json={"locationId": sandbox.location_id, "firstName": "Gone"},
                      headers={"Authorization": f"Bearer {sandbox.token}", "Version": "2021-07-28"}, timeout=10)
    assert _named(sandbox, "Gone") == ["Gone"]


def test_a_client_that_resends_blindly_makes_the_write_twice(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(write_fault_rate=1.0, lost_answer_modes=["502"])
    with sandbox.client() as api:
        assert _create(api, sandbox, "Twice").status_code == 502
        sandbox.admin.configure(write_fault_rate=0.0)
        assert _create(api, sandbox, "Twice").status_code == 201
    assert _named(sandbox, "Twice") == ["Twice", "Twice"]


def test_updates_deletes_tasks_and_notes_are_writes_too(sandbox: SandboxServer) -> None:
    contact = sandbox.truth()["contacts"][0]
    cid = contact["id"]
    sandbox.admin.configure(write_fault_rate=1.0, lost_answer_modes=["504"])
    with sandbox.client() as api:
        assert api.put(f"/contacts/{cid}", json={"city": "Lostville"}).status_code == 504
        assert api.post(f"/contacts/{cid}/tasks", json={"title": "Lost task", "dueDate": "2031-01-01T00:00:00Z",
                                                        "completed": False}).status_code == 504
        assert api.post(f"/contacts/{cid}/notes", json={"body": "Lost note"}).status_code == 504
        note = next(n for n in sandbox.truth()["notes"] if n["body"] == "Lost note")
        assert api.delete(f"/contacts/{cid}/notes/{note['id']}").status_code == 504
        # A retry of the delete finds nothing: HighLevel's 400 "Note not found".
        sandbox.admin.configure(write_fault_rate=0.0)
        again = api.delete(f"/contacts/{cid}/notes/{note['id']}")
        assert again.status_code == 400 and again.json()["message"] == "Note not found"
    truth = sandbox.truth()
    assert next(c for c in truth["contacts"] if c["id"] == cid)["city"] == "Lostville"
    assert [t["title"] for t in truth["tasks"] if t["title"] == "Lost task"] == ["Lost task"]
    assert not [n for n in truth["notes"] if n["body"] == "Lost note"]
    assert sandbox.admin.counters()["applied_then_lost_by_operation"] == {
        "update-contact": 1, "create-task": 1, "create-note": 1, "delete-note": 1}


def test_searches_are_reads_and_never_take_the_write_draw(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(write_fault_rate=1.0)
    with sandbox.client() as api:
        for _ in range(5):
            assert api.post("/contacts/search", json={"locationId": sandbox.location_id, "pageLimit": 2}).status_code == 200
            r = api.post(f"/locations/{sandbox.location_id}/tasks/search", json={"limit": 2})
            assert r.status_code == 200
            assert api.get(f"/contacts/?locationId={sandbox.location_id}&limit=2").status_code == 200
    assert sandbox.admin.counters()["faults"] == 0
    assert is_write("POST", "create-contact") and is_write("DELETE", "delete-note") and is_write("POST", "get-access-token")
    assert not is_write("POST", "search-contacts-advanced") and not is_write("GET", "get-contact")


def test_applied_lost_among_fault_kinds_also_loses_answers_of_reads(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["applied_lost"], lost_answer_modes=["502"])
    with sandbox.client() as api:
        assert api.post("/contacts/search", json={"locationId": sandbox.location_id}).status_code == 502
    counters = sandbox.admin.counters()
    assert counters["faults_by_kind"] == {"applied_lost": 1}
    assert counters["applied_then_lost_by_operation"] == {"search-contacts-advanced": 1}


def test_faults_can_be_limited_to_some_operations_or_spare_others(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["503"], fault_operations=["create-note"])
    cid = sandbox.truth()["contacts"][0]["id"]
    with sandbox.client() as api:
        assert api.post("/contacts/search", json={"locationId": sandbox.location_id}).status_code == 200
        assert api.post(f"/contacts/{cid}/notes", json={"body": "x"}).status_code == 503
        sandbox.admin.configure(fault_operations=[], fault_exempt_operations=["search-contacts-advanced"])
        assert api.post("/contacts/search", json={"locationId": sandbox.location_id}).status_code == 200
        assert api.get(f"/contacts/{cid}").status_code == 503
    assert sandbox.admin.counters()["faults_by_kind"] == {"503": 2}


def test_a_lost_answer_of_a_token_refresh_spends_the_refresh_token(sandbox: SandboxServer) -> None:
    """The OAuth token endpoint is a write: a refresh applied and then lost leaves the client with a
    spent refresh token; sending it again counts as a reuse."""
    app = sandbox.admin.install_oauth_app()
    form = {"client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "refresh_token",
            "refresh_token": app["refresh_token"]}
    sandbox.admin.configure(write_fault_rate=1.0, fault_operations=["get-access-token"], lost_answer_modes=["504"])
    assert httpx.post(f"{sandbox.base_url}/oauth/token", data=form).status_code == 504
    sandbox.admin.configure(write_fault_rate=0.0)
    again = httpx.post(f"{sandbox.base_url}/oauth/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    oauth = sandbox.admin.oauth_stats()
    assert oauth["refresh_grants"] == 1 and oauth["refresh_token_reuses"] == 1


def test_write_faults_are_repeatable_for_the_same_request_sequence(sandbox_factory) -> None:
    def pattern() -> list[int]:
        sb = sandbox_factory(contacts=3, write_fault_rate=0.5, lost_answer_modes=["502"])
        with sb.client() as api:
            return [_create(api, sb, f"R{i}").status_code for i in range(12)]

    first, second = pattern(), pattern()
    assert first == second and {201, 502} <= set(first)


def test_the_command_line_takes_the_write_fault_options() -> None:
    from ghl_sandbox.__main__ import _parser, config_from_args

    args = _parser().parse_args(["--write-fault-rate", "0.2", "--write-fault-kinds", "applied_lost,504",
                                 "--lost-answer-modes", "close,502", "--fault-kinds", "503,applied_lost",
                                 "--fault-exempt-operations", "get-access-token"])
    config = config_from_args(args)
    assert config.write_fault_rate == 0.2 and config.write_fault_kinds == ("applied_lost", "504")
    assert config.lost_answer_modes == ("close", "502") and config.fault_kinds == ("503", "applied_lost")
    assert config.fault_exempt_operations == ("get-access-token",) and config.fault_operations == ()
