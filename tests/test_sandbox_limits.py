"""Rate limits per (integration, location): the five X-RateLimit-* headers on every response and
429 "Too many requests" past the burst window or the daily budget."""

from __future__ import annotations

import time

from ghl_sandbox.testing import SandboxServer

RATE_HEADERS = ("X-RateLimit-Limit-Daily", "X-RateLimit-Daily-Remaining", "X-RateLimit-Interval-Milliseconds",
                "X-RateLimit-Max", "X-RateLimit-Remaining")


def test_every_api_response_carries_the_rate_limit_headers(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(rate_limit="100/10")
    with sandbox.client() as api:
        first = api.get(f"/contacts/?locationId={sandbox.location_id}")
        second = api.get("/contacts/AAAAAAAAAAAAAAAAAAAA")  # a 404 counts too
    for r in (first, second):
        assert all(h in r.headers for h in RATE_HEADERS)
    assert first.headers["X-RateLimit-Max"] == "100"
    assert first.headers["X-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-RateLimit-Limit-Daily"] == "200000"
    assert int(first.headers["X-RateLimit-Remaining"]) - int(second.headers["X-RateLimit-Remaining"]) == 1
    assert int(first.headers["X-RateLimit-Daily-Remaining"]) - int(second.headers["X-RateLimit-Daily-Remaining"]) == 1


def test_rejections_after_auth_carry_the_headers_too(sandbox: SandboxServer) -> None:
    readonly = sandbox.admin.issue_token(scopes=["contacts.readonly"])
    with sandbox.client(version=None) as api:
        no_version = api.get(f"/contacts/?locationId={sandbox.location_id}")
    with sandbox.client(token=readonly) as api:
        no_scope = api.post("/contacts/", json={"locationId": sandbox.location_id})
    assert no_version.status_code == 400 and no_scope.status_code == 401  # live: a missing scope is 401
    assert all(h in r.headers for r in (no_version, no_scope) for h in RATE_HEADERS)


def test_burst_limit_answers_429_with_retry_after_then_recovers(sandbox_factory) -> None:
    sb = sandbox_factory(contacts=5, rate_limit="4/60")
    with sb.client() as api:
        answers = [api.get(f"/contacts/?locationId={sb.location_id}") for _ in range(6)]
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 429, 429]
        limited = answers[-1]
        assert limited.json() == {"statusCode": 429, "message": "Too many requests",
                                  "traceId": limited.headers["X-Trace-Id"]}
        assert limited.headers["X-RateLimit-Remaining"] == "0" and 1 <= int(limited.headers["Retry-After"]) <= 60
        sb.admin.configure(rate_limit="4/1")  # same history, shorter window
        time.sleep(1.05)  # the sliding window has moved past the first four requests
        recovered = api.get(f"/contacts/?locationId={sb.location_id}")
        assert recovered.status_code == 200 and recovered.headers["X-RateLimit-Remaining"] == "3"
    assert sb.admin.counters()["status_429"] == 2


def test_limits_are_per_integration_and_location(sandbox_factory) -> None:
    sb = sandbox_factory(contacts=5, rate_limit="2/60")
    other_integration = sb.admin.issue_token()
    with sb.client() as api, sb.client(token=other_integration) as other:
        assert [api.get("/contacts/", params={"locationId": sb.location_id}).status_code for _ in range(3)] == [
            200, 200, 429]
        assert other.get("/contacts/", params={"locationId": sb.location_id}).status_code == 200


def test_daily_limit_answers_429_once_spent(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(daily_limit=3)
    with sandbox.client() as api:
        codes = [api.get("/contacts/", params={"locationId": sandbox.location_id}) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[2].headers["X-RateLimit-Daily-Remaining"] == "0"
    assert codes[3].headers["X-RateLimit-Limit-Daily"] == "3"


def test_rate_limit_off_by_default_in_the_fixture(sandbox: SandboxServer) -> None:
    with sandbox.client() as api:
        answers = [api.get("/contacts/", params={"locationId": sandbox.location_id, "limit": 1}) for _ in range(120)]
    assert {r.status_code for r in answers} == {200}
    assert answers[-1].headers["X-RateLimit-Remaining"] == answers[-1].headers["X-RateLimit-Max"] == "100"


def test_limits_switched_off_never_run_down_in_the_headers(sandbox: SandboxServer) -> None:
    sandbox.admin.configure(daily_limit=None, rate_limit=None)
    with sandbox.client() as api:
        answers = [api.get("/contacts/", params={"locationId": sandbox.location_id, "limit": 1}) for _ in range(3)]
    assert {r.headers["X-RateLimit-Daily-Remaining"] for r in answers} == {"200000"}
    assert {r.headers["X-RateLimit-Remaining"] for r in answers} == {"100"}


def test_bad_rate_limit_setting_is_refused_with_the_expected_format(sandbox: SandboxServer) -> None:
    import pytest

    from ghl_sandbox.client import SandboxAdminError

    with pytest.raises(SandboxAdminError, match="100/10"):
        sandbox.admin.configure(rate_limit="fast")
