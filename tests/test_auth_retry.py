"""The OAuth token calls retry under the hook's RetryPolicy (one rule for what is retried and how long
to wait), inside the token store's refresh lease, and a lost /oauth/token answer is handled as
before: resent with the same refresh token, never a 2xx whose body was lost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_contacts.auth import FileTokenStore, OAuthSettings, OAuthTokenSource, TokenSet
from airflow_provider_contacts.errors import (
    GHLAuthError,
    GHLRateLimitError,
    GHLServerError,
    GHLTransportError,
)
from airflow_provider_contacts.hooks.retry import RETRYABLE_STATUSES, RetryPolicy

TOKENS = {"access_token": "a2" * 10, "refresh_token": "r2" * 10, "expires_in": 86399, "userType": "Location"}


def answer(status: int, body: object = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
    resp = requests.Response()
    resp.status_code = status
    resp.reason = requests.status_codes._codes.get(status, ("",))[0].upper()  # noqa: SLF001
    resp._content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())  # noqa: SLF001
    resp.headers = CaseInsensitiveDict(headers or {})
    return resp


@dataclass
class Script:
    """A session answering each POST with the next scripted answer (an exception is raised)."""

    answers: list
    posts: list = field(default_factory=list)

    def __call__(self) -> Script:  # the ``http`` factory
        return self

    def post(self, url, data=None, headers=None, timeout=None):
        self.posts.append((url.rsplit("/", 2)[-1], dict(data or {})))
        item = self.answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    """The hook's policy, recording the backoffs it was asked for."""

    asked: list = field(default_factory=list, compare=False)

    def backoff_s(self, attempt: int) -> float:
        self.asked.append(attempt)
        return 0.001


def source(tmp_path, script: Script, policy: RetryPolicy | None = None, store=None, **settings) -> OAuthTokenSource:
    store = store or FileTokenStore(tmp_path / "tokens.json")
    store.save(TokenSet(access_token=None, refresh_token="r1" * 10))
    oauth = OAuthSettings(
        conn_id="c", base_url="http://127.0.0.1:9", client_id="id", client_secret="s" * 12, **settings
    )
    return OAuthTokenSource(oauth, store, http=script, process_cache=False, retry=policy)


def test_the_default_is_the_hooks_default_policy(tmp_path) -> None:
    assert source(tmp_path, Script([])).retry == RetryPolicy()


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUSES))
def test_retryable_statuses_are_retried_with_the_policys_backoff(tmp_path, status: int) -> None:
    script = Script([answer(status, {"message": "busy"}), requests.ConnectionError("reset"), answer(200, TOKENS)])
    policy = CountingPolicy()
    assert source(tmp_path, script, policy).get_access_token() == TOKENS["access_token"]
    assert policy.asked == [1, 2] and len(script.posts) == 3


def test_a_5xx_the_policy_does_not_retry_is_not_retried(tmp_path) -> None:
    script = Script([answer(501, {"message": "Not Implemented"}), answer(200, TOKENS)])
    with pytest.raises(GHLServerError, match="Not Implemented") as err:
        source(tmp_path, script, CountingPolicy()).get_access_token()
    assert err.value.status == 501 and len(script.posts) == 1


def test_the_policys_retry_bound_is_kept(tmp_path) -> None:
    script = Script([answer(503, {"message": "down"}) for _ in range(10)])
    store = FileTokenStore(tmp_path / "tokens.json")
    with pytest.raises(GHLServerError, match="gave up after 3 attempts, per the hook's retry policy"):
        source(tmp_path, script, CountingPolicy(max_retries=2), store=store).get_access_token()
    assert len(script.posts) == 3
    assert store.load().refresh_token == "r1" * 10


def test_a_429_waits_for_retry_after_within_max_throttled(tmp_path) -> None:
    script = Script([answer(429, {"message": "slow down"}, {"Retry-After": "0.01"}), answer(200, TOKENS)])
    assert source(tmp_path, script, CountingPolicy()).get_access_token() == TOKENS["access_token"]
    assert len(script.posts) == 2

    script = Script([answer(429, {"message": "slow down"}, {"Retry-After": "0.01"}), answer(200, TOKENS)])
    with pytest.raises(GHLRateLimitError, match="slow down"):
        source(tmp_path, script, CountingPolicy(max_throttled=0)).get_access_token()
    assert len(script.posts) == 1


def test_no_retry_wait_reaches_past_the_refresh_lease(tmp_path) -> None:
    class ShortLease(FileTokenStore):
        lease_s = 3.0  # the source keeps 20 %: 2.4 s for the call, none started with < 1 s left

    script = Script([answer(429, {"message": "slow down"}, {"Retry-After": "5"}), answer(200, TOKENS)])
    store = ShortLease(tmp_path / "tokens.json")
    with pytest.raises(GHLTransportError, match="before the token store's refresh lease ends.*slow down"):
        source(tmp_path, script, CountingPolicy(), store=store).get_access_token()
    assert len(script.posts) == 1
    assert store.load().refresh_token == "r1" * 10


def test_a_lost_token_answer_is_resent_with_the_same_refresh_token(tmp_path) -> None:
    # As before: the resend carries the same refresh token. If the server had rotated it, the resend
    # is refused with invalid_grant, the store is re-read, and the error says what to re-authorise.
    script = Script([
        requests.ReadTimeout("read timed out"),
        answer(400, {"error": "invalid_grant", "error_description": "refresh token already used"}),
    ])
    with pytest.raises(GHLAuthError, match="invalid_grant: already used or revoked"):
        source(tmp_path, script, CountingPolicy()).get_access_token()
    assert [data["refresh_token"] for _, data in script.posts] == ["r1" * 10] * 2

    script = Script([requests.ReadTimeout("read timed out"), answer(200, TOKENS)])
    assert source(tmp_path, script, CountingPolicy()).get_access_token() == TOKENS["access_token"]


def test_a_token_answer_whose_body_was_lost_is_not_resent(tmp_path) -> None:
    script = Script([answer(200, raw=b'{"access_token": "a2a2'), answer(200, TOKENS)])
    store = FileTokenStore(tmp_path / "tokens.json")
    with pytest.raises(GHLAuthError, match="without access_token/refresh_token.*re-authorised"):
        source(tmp_path, script, CountingPolicy(), store=store).get_access_token()
    assert len(script.posts) == 1  # the server rotated for sure: a resend would only count as a reuse
    assert store.load().refresh_token == "r1" * 10


def _agency(tmp_path, script: Script) -> OAuthTokenSource:
    return source(tmp_path, script, CountingPolicy(), user_type="Company", company_id="cmp", location_id="loc")


def test_the_location_token_is_taken_from_any_2xx(tmp_path) -> None:
    location = {"access_token": "l1" * 10, "expires_in": 86399, "locationId": "loc", "userType": "Location"}
    for status in (200, 201):
        script = Script([answer(200, {**TOKENS, "userType": "Company"}), answer(status, location)])
        assert _agency(tmp_path, script).get_access_token() == location["access_token"]
        assert [path for path, _ in script.posts] == ["token", "locationToken"]


def test_the_location_token_call_follows_the_same_policy(tmp_path) -> None:
    location = {"access_token": "l1" * 10, "expires_in": 86399, "locationId": "loc"}
    script = Script([
        answer(200, {**TOKENS, "userType": "Company"}),
        answer(201, raw=b'{"access_tok'),  # a broken answer: nothing was rotated, so it is retried
        answer(502, {"message": "Bad Gateway"}),
        answer(429, {}, {"Retry-After": "0.01"}),
        answer(201, location),
    ])
    assert _agency(tmp_path, script).get_access_token() == location["access_token"]
    assert [path for path, _ in script.posts] == ["token"] + ["locationToken"] * 4

    script = Script([answer(200, {**TOKENS, "userType": "Company"}), answer(403, {"message": "Forbidden"})])
    with pytest.raises(GHLAuthError, match="Forbidden; check the connection's OAuth extras"):
        _agency(tmp_path, script).get_access_token()
    assert len(script.posts) == 2


def test_the_hook_gives_its_own_policy_to_the_token_calls(monkeypatch, tmp_path) -> None:
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    extra = {"location_id": "L", "auth_type": "oauth", "client_id": "id", "client_secret": "s" * 12,
             "refresh_token": "r" * 20, "rotation_store": f"file:{tmp_path}/t.json"}
    conn = {"conn_type": "ghl", "host": "http://127.0.0.1:9", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_GHL_RETRY_POLICY", json.dumps(conn))
    policy = RetryPolicy(max_retries=1, base_s=0.01, cap_s=0.01)
    assert ContactsHook("ghl_retry_policy", retry=policy).token_source.retry is policy
