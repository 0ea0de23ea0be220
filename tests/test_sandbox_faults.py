"""Injected faults (5xx, delays, dropped connections), latency and the 422-after-create quirk:
what a resilient client must survive, and the guarantee that a faulted request was not applied.
The tests of faults that apply the request and then lose its answer are in
``test_sandbox_live_faults.py``."""

from __future__ import annotations

import httpx
import pytest

from ghl_sandbox.testing import SandboxServer


def _create(api: httpx.Client, sandbox: SandboxServer, name: str) -> httpx.Response:
    return api.post("/contacts/", json={"locationId": sandbox.location_id, "firstName": name})


def test_5xx_faults_do_not_apply_the_request(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["500", "502", "503"])
    with sandbox.client() as api:
        answers = [_create(api, sandbox, f"Faulted {i}") for i in range(12)]
    assert {r.status_code for r in answers} == {500, 502, 503}
    assert all(r.json()["statusCode"] == r.status_code and r.json()["traceId"] for r in answers)
    sandbox.admin.configure(fault_rate=0.0)
    assert not [c for c in sandbox.admin.dump()["contacts"] if (c["firstName"] or "").startswith("Faulted")]
    assert sandbox.admin.counters()["faults"] == 12


def test_a_fraction_of_requests_fail_and_retrying_loses_nothing(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=0.25, fault_kinds=["500", "503"])
    created: list[str] = []
    failures = 0
    with sandbox.client() as api:
        for i in range(40):
            while True:
                r = _create(api, sandbox, f"Retry {i}")
                if r.status_code == 201:
                    created.append(r.json()["contact"]["id"])
                    break
                failures += 1
    assert failures > 0 and sandbox.admin.counters()["faults"] == failures
    names = [c["firstName"] for c in sandbox.admin.dump()["contacts"] if (c["firstName"] or "").startswith("Retry")]
    assert sorted(names) == sorted(f"Retry {i}" for i in range(40))  # none lost, none duplicated


# A connection closed after part of the body reaches the client as an incomplete message, or, when
# the close overtakes the unread bytes in the kernel, as a reset: both are a dropped response.
BROKEN_RESPONSE = (httpx.RemoteProtocolError, httpx.ReadError)


def test_dropped_connection_breaks_the_response_mid_body(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["drop"])
    with sandbox.client() as api, pytest.raises(BROKEN_RESPONSE):
        api.post("/contacts/search", json={"locationId": sandbox.location_id})
    with sandbox.client() as api, pytest.raises(BROKEN_RESPONSE):
        _create(api, sandbox, "Dropped")
    sandbox.admin.configure(fault_rate=0.0)
    assert not [c for c in sandbox.admin.dump()["contacts"] if c["firstName"] == "Dropped"]


def test_delay_fault_and_latency_still_answer_correctly(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["delay"], fault_delay_ms=30, latency_ms=10)
    with sandbox.client() as api:
        r = api.post("/contacts/search", json={"locationId": sandbox.location_id, "pageLimit": 3})
    assert r.status_code == 200 and len(r.json()["contacts"]) == 3
    assert sandbox.admin.counters()["faults"] == 1


def test_admin_routes_are_never_faulted(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(fault_rate=1.0, fault_kinds=["500", "drop"])
    for _ in range(10):
        assert sandbox.admin.counters()["faults"] == 0
    assert len(sandbox.admin.dump()["contacts"]) == 200


def test_create_can_answer_422_after_it_created_the_contact(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(create_422_after_create_rate=1.0)
    with sandbox.client() as api:
        r = api.post("/contacts/", json={"locationId": sandbox.location_id, "email": "ghost@example.com"})
        assert r.status_code == 422
        dup = api.get("/contacts/search/duplicate", params={"locationId": sandbox.location_id,
                                                             "email": "ghost@example.com"}).json()
    assert dup["contact"] is not None and dup["contact"]["email"] == "ghost@example.com"


def test_unknown_fault_kind_is_refused(sandbox: SandboxServer) -> None:
    from ghl_sandbox.client import SandboxAdminError

    with pytest.raises(SandboxAdminError, match="fault_kinds"):
        sandbox.admin.configure(fault_kinds=["418"])
    with pytest.raises(SandboxAdminError, match="lost_answer_modes"):
        sandbox.admin.configure(lost_answer_modes=["vanish"])
    with pytest.raises(SandboxAdminError, match="fault_operations.*create-kontakt"):
        sandbox.admin.configure(fault_operations=["create-kontakt"])
    with pytest.raises(SandboxAdminError, match="write_fault_rate"):
        sandbox.admin.configure(write_fault_rate=1.5)
