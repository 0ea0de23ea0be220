"""The hook copes with the statuses the LIVE HighLevel API gives (ghl-live-notes.md, "Statuses and
error bodies"), on the sync transport and on the async one (they share ``_RequestRules``):

* an unknown or deleted contact, task or note is a 400 ``... not found`` (contacts.json lists no
  404): ``GHLNotFoundError``, exactly like a 404, for get/update/delete, ``missing_ok`` and
  ``contact_exists``;
* a 401 ``The token is not authorized for this scope.`` / ``This authClass type is not allowed to
  access this scope`` is a ``GHLScopeError`` naming the scope and the fix, and never spends a token
  refresh (with OAuth a refresh burns a single-use refresh token); a plain 401 still refreshes once;
* a 403 ``The token does not have access to this location.`` is a ``GHLLocationAccessError``;
* the location task search refused with a scope 401 falls back to per-contact task lists, with one
  warning per hook naming ``locations/tasks.readonly``, and is not tried again;
* ``/oauth/locationToken`` answering 201 (the spec says 200) still gives a location token.

The API is a small in-test HTTP stub (:class:`StubAPI`), so these tests do not depend on the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_contacts.errors import (
    GHLAuthError,
    GHLLocationAccessError,
    GHLNotFoundError,
    GHLScopeError,
    GHLValidationError,
)
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.hooks.retry import RetryPolicy

SCOPE_401 = "The token is not authorized for this scope."
AUTH_CLASS_401 = (
    "This authClass type is not allowed to access this scope. Please verify your IAM configuration if this is "
    "not the case."
)
LOCATION_403 = "The token does not have access to this location."
FAST = RetryPolicy(max_retries=2, base_s=0.01, cap_s=0.02, max_elapsed_s=10)

#: ``route(method, path, query, body, headers) -> (status, json body)`` of a :class:`StubAPI`.
Route = Callable[[str, str, dict[str, list[str]], Any, dict[str, str]], tuple[int, Any]]


class StubAPI:
    """A tiny HighLevel stand-in on a free local port: every request goes to ``route`` and is
    recorded in :attr:`calls` as ``(method, path, body, authorization)``."""

    def __init__(self, route: Route) -> None:
        stub = self
        self.route = route
        self.calls: list[tuple[str, str, Any, str | None]] = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type") or ""
                if not raw:
                    body: Any = None
                elif "json" in ctype:
                    body = json.loads(raw)
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                parts = urlsplit(self.path)
                with stub._lock:
                    stub.calls.append((self.command, parts.path, body, self.headers.get("Authorization")))
                status, answer = stub.route(self.command, parts.path, parse_qs(parts.query), body, dict(self.headers))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - http.server naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def paths(self, method: str | None = None) -> list[str]:
        """The paths requested so far (of ``method`` only, when given)."""
        return [p for m, p, _, _ in self.calls if method is None or m == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


@pytest.fixture
def stub_api(monkeypatch) -> Iterator[Callable[..., tuple[StubAPI, ContactsHook]]]:
    """``start(route, conn_id="ghl_stub", **extra)``: a :class:`StubAPI` and a hook on it (private token "t")."""
    stubs: list[StubAPI] = []

    def start(route: Route, conn_id: str = "ghl_stub", password: str = "t", **extra: Any) -> tuple[StubAPI, ContactsHook]:
        stub = StubAPI(route)
        stubs.append(stub)
        conn = {"conn_type": "ghl", "host": stub.base_url, "password": password,
                "extra": {"location_id": "L1", **extra}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return stub, ContactsHook(conn_id, retry=FAST)

    yield start
    for stub in stubs:
        stub.close()


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "message": message, "traceId": "trace-1"}


# ---------------------------------------------------------------------------------------------
# 400 "not found" is GHLNotFoundError, like 404
# ---------------------------------------------------------------------------------------------


def _gone_api(status: int) -> Route:
    """A location where contact ``c1`` exists (with no tasks or notes) and everything else is gone:
    answered with ``status`` (400 like the live API, or 404) and a "... not found" message."""

    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        if path == "/contacts/c1" and method == "GET":
            return 200, {"contact": {"id": "c1", "locationId": "L1"}}
        if path.startswith("/contacts/c1/tasks/"):
            return _error(status, "Task not found")
        if path.startswith("/contacts/c1/notes/"):
            return _error(status, "Note not found")
        if path.startswith("/contacts/c1/"):
            return 200, {"tasks": [], "notes": []}
        return _error(status, "Contact not found")

    return route


@pytest.mark.parametrize("status", [400, 404])
def test_a_deleted_contact_task_or_note_is_not_found_whether_400_or_404(stub_api, status) -> None:
    stub, hook = stub_api(_gone_api(status))
    calls = {
        "get-contact": lambda: hook.get_contact("gone"),
        "update-contact": lambda: hook.update_contact("gone", {"firstName": "X"}),
        "delete-contact": lambda: hook.delete_contact("gone"),
        "get-task": lambda: hook.get_task("c1", "t9"),
        "update-task": lambda: hook.update_task("c1", "t9", {"title": "x"}),
        "delete-task": lambda: hook.delete_task("c1", "t9"),
        "get-note": lambda: hook.get_note("c1", "n9"),
        "update-note": lambda: hook.update_note("c1", "n9", {"body": "x"}),
        "delete-note": lambda: hook.delete_note("c1", "n9"),
        "get-all-tasks": lambda: hook.list_tasks("gone"),
    }
    for operation, call in calls.items():
        with pytest.raises(GHLNotFoundError) as err:
            call()
        assert (err.value.status, err.value.operation, err.value.trace_id) == (status, operation, "trace-1")
        assert "not found" in err.value.message
    assert len(stub.calls) == len(calls)  # a not-found is never retried
    assert hook.stats.retries == 0

    # Idempotent deletes and "does it exist" treat both statuses alike.
    assert hook.delete_contact("gone", missing_ok=True) is False
    assert hook.delete_task("c1", "t9", missing_ok=True) is False
    assert hook.delete_note("c1", "n9", missing_ok=True) is False
    assert hook.contact_exists("gone") is False and hook.contact_exists("c1") is True


def test_the_issue_example_get_of_a_deleted_contact_answering_400_raises_not_found(stub_api) -> None:
    stub, hook = stub_api(lambda *a: (400, {"statusCode": 400, "message": "Contact not found"}))
    with pytest.raises(GHLNotFoundError) as err:
        hook.get_contact("deleted1")
    assert err.value.status == 400 and err.value.operation == "get-contact"
    assert not isinstance(err.value, GHLValidationError)


def test_a_400_that_is_not_a_not_found_stays_a_validation_error(stub_api) -> None:
    stub, hook = stub_api(lambda *a: _error(400, "email must be an email"))
    with pytest.raises(GHLValidationError) as err:
        hook.update_contact("c1", {"firstName": "X"})
    assert err.value.status == 400 and not isinstance(err.value, GHLNotFoundError)


@pytest.mark.parametrize("status", [400, 404])
def test_async_not_found_is_the_same_for_400_and_404(stub_api, status) -> None:
    stub, hook = stub_api(_gone_api(status))

    async def run() -> list[Any]:
        for read in (hook.aget_contact("gone"), hook.alist_tasks("gone"), hook.aget_task("c1", "t1"),
                     hook.alist_notes("gone"), hook.aget_note("c1", "n1")):
            with pytest.raises(GHLNotFoundError) as err:
                await read
            assert err.value.status == status
        return await hook.alist_tasks("c1")

    assert asyncio.run(run()) == []
    assert len(stub.calls) == 6


# ---------------------------------------------------------------------------------------------
# 401 scope / authClass: GHLScopeError naming the scope, no refresh
# ---------------------------------------------------------------------------------------------


def test_a_scope_401_names_the_scope_and_the_fix_and_is_not_retried(stub_api) -> None:
    stub, hook = stub_api(lambda *a: _error(401, SCOPE_401))
    with pytest.raises(GHLScopeError) as err:
        hook.update_contact("c1", {"firstName": "X"})
    error = err.value
    assert isinstance(error, GHLAuthError)  # callers catching auth errors still catch it
    assert (error.status, error.scope, error.operation) == (401, "contacts.write", "update-contact")
    assert SCOPE_401 in error.message and "'contacts.write'" in error.message
    assert "Add 'contacts.write' to the scopes of the Private Integration / OAuth app" in error.message
    assert "re-authorise" in error.message and "no token refresh was spent" in error.message
    assert len(stub.calls) == 1 and hook.stats.refreshes == 0
    # Scope errors survive pickling (XCom, multiprocessing) with their scope.
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert type(again) is GHLScopeError and again.scope == "contacts.write" and again.status == 401


def test_an_auth_class_401_says_to_use_a_location_token(stub_api) -> None:
    stub, hook = stub_api(lambda *a: _error(401, AUTH_CLASS_401))
    with pytest.raises(GHLScopeError) as err:
        hook.get_contact("c1")
    assert err.value.scope == "contacts.readonly"
    assert "Use a location token, not an agency token" in err.value.message
    assert "'contacts.readonly'" in err.value.message
    assert len(stub.calls) == 1


def test_a_location_403_says_to_check_the_location_id(stub_api) -> None:
    stub, hook = stub_api(lambda *a: _error(403, LOCATION_403))
    with pytest.raises(GHLLocationAccessError) as err:
        hook.search_contacts(page_limit=1)
    assert err.value.status == 403 and isinstance(err.value, GHLAuthError)
    assert "issued for another location" in err.value.message and "location_id" in err.value.message
    ok, message = hook.test_connection()
    assert not ok and "403" in message and "location_id" in message


def test_test_connection_explains_a_scope_401(stub_api) -> None:
    _, hook = stub_api(lambda *a: _error(401, SCOPE_401))
    ok, message = hook.test_connection()
    assert not ok and "'contacts.readonly'" in message and "invalid or expired" not in message


def test_a_plain_401_is_still_an_auth_error_naming_the_token(stub_api) -> None:
    stub, hook = stub_api(lambda *a: _error(401, "Invalid JWT"))
    with pytest.raises(GHLAuthError) as err:
        hook.get_contact("c1")
    assert not isinstance(err.value, GHLScopeError)
    assert "invalid or expired" in err.value.message
    assert len(stub.calls) == 1  # a private token cannot be refreshed


def test_async_scope_and_location_errors_match_the_sync_ones(stub_api) -> None:
    answers = {"/contacts/scope": _error(401, SCOPE_401), "/contacts/class": _error(401, AUTH_CLASS_401),
               "/contacts/elsewhere": _error(403, LOCATION_403)}
    stub, hook = stub_api(lambda method, path, *a: answers[path])

    async def run() -> list[BaseException]:
        errors = []
        async with hook.async_transport() as api:
            for path in answers:
                try:
                    await api.request("GET", path, operation="get-contact", scope="contacts.readonly")
                except Exception as exc:  # noqa: BLE001 - collected and checked below
                    errors.append(exc)
        return errors

    scope, auth_class, elsewhere = asyncio.run(run())
    assert type(scope) is GHLScopeError and scope.scope == "contacts.readonly" and "re-authorise" in scope.message
    assert type(auth_class) is GHLScopeError and "location token" in auth_class.message
    assert type(elsewhere) is GHLLocationAccessError
    assert len(stub.calls) == 3 and hook.stats.refreshes == 0


class _OAuthAPI:
    """OAuth token endpoints plus a contacts endpoint answering ``api_answer`` with the first
    ``failures`` requests (then 200). Counts the refreshes spent."""

    def __init__(self, api_answer: tuple[int, Any], failures: int = 1, location_status: int = 200) -> None:
        self.api_answer = api_answer
        self.failures = failures
        self.location_status = location_status
        self.refreshes = 0
        self.location_tokens = 0
        self.api_calls = 0

    def __call__(self, method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        if path == "/oauth/token":
            self.refreshes += 1
            return 200, {"access_token": f"access-{self.refreshes}", "refresh_token": f"refresh-{self.refreshes}",
                         "expires_in": 86399, "userType": body.get("user_type", "Location")}
        if path == "/oauth/locationToken":
            self.location_tokens += 1
            return self.location_status, {"access_token": f"location-{self.location_tokens}", "expires_in": 86399,
                                          "locationId": body["locationId"], "userType": "Location"}
        self.api_calls += 1
        if self.api_calls <= self.failures:
            return self.api_answer
        return 200, {"contact": {"id": "c1"}}


def _oauth_hook(stub_api, api: _OAuthAPI, tmp_path, **extra: Any) -> tuple[StubAPI, ContactsHook]:
    return stub_api(
        api, conn_id="ghl_stub_oauth", password="seed-access",
        auth_type="oauth", client_id="cid", client_secret="secret", refresh_token="seed-refresh",
        rotation_store=f"file:{tmp_path}/tokens.json", **extra,
    )


def test_a_scope_401_never_spends_an_oauth_refresh_token(stub_api, tmp_path) -> None:
    api = _OAuthAPI(_error(401, SCOPE_401), failures=99)
    stub, hook = _oauth_hook(stub_api, api, tmp_path)
    with pytest.raises(GHLScopeError):
        hook.get_contact("c1")
    assert api.refreshes == 0 and hook.stats.refreshes == 0 and api.api_calls == 1

    with pytest.raises(GHLScopeError):
        asyncio.run(hook.aget_contact("c1"))
    assert api.refreshes == 0 and api.api_calls == 2
    assert json.loads((tmp_path / "tokens.json").read_text())["refresh_token"] == "seed-refresh"


def test_a_plain_401_still_refreshes_the_oauth_token_once(stub_api, tmp_path) -> None:
    api = _OAuthAPI(_error(401, "Invalid JWT"), failures=1)
    stub, hook = _oauth_hook(stub_api, api, tmp_path)
    assert hook.get_contact("c1").id == "c1"
    assert api.refreshes == 1 and hook.stats.refreshes == 1 and api.api_calls == 2
    assert [auth for _, path, _, auth in stub.calls if path == "/contacts/c1"] == ["Bearer seed-access", "Bearer access-1"]


def test_a_location_token_answered_with_201_is_accepted(stub_api, tmp_path) -> None:
    """``/oauth/locationToken`` has been seen answering 201 where the spec says 200: any 2xx is fine."""
    api = _OAuthAPI(_error(500, "unused"), failures=0, location_status=201)
    stub, hook = _oauth_hook(stub_api, api, tmp_path, user_type="Company", company_id="comp1")
    assert hook.get_contact("c1").id == "c1"
    assert api.location_tokens == 1
    assert [auth for _, path, _, auth in stub.calls if path == "/contacts/c1"] == ["Bearer location-1"]


# ---------------------------------------------------------------------------------------------
# Task search refused by scope: per-contact fallback, one warning, no second try, no refresh
# ---------------------------------------------------------------------------------------------


TASKS = {"c1": [{"id": "t1", "completed": False}, {"id": "t2", "completed": True}], "c2": [{"id": "t3", "completed": False}]}


def _no_task_scope_api(status: int = 401, message: str = SCOPE_401) -> Route:
    """Contacts c1, c2 (c3 vanished: 400 not found); the location task search is refused."""

    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        if path.endswith("/tasks/search"):
            return _error(status, message)
        if path == "/contacts/search":
            return 200, {"contacts": [{"id": "c1", "searchAfter": [1, "c1"]}, {"id": "c2", "searchAfter": [2, "c2"]}],
                         "total": 2}
        for cid, tasks in TASKS.items():
            if path == f"/contacts/{cid}/tasks":
                return 200, {"tasks": tasks}
            if path == f"/contacts/{cid}/notes":
                return 200, {"notes": []}
        return _error(400, "Contact not found")

    return route


def test_task_search_scope_401_falls_back_per_contact_once_per_hook(stub_api, caplog) -> None:
    """The issue's case: the search answers 401 "not authorized for this scope"."""
    stub, hook = stub_api(_no_task_scope_api())
    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts"):
        every = sorted(t.id for t in hook.iter_location_tasks())
        open_ones = sorted(t.id for t in hook.iter_location_tasks(completed=False))
        given = sorted(t.id for t in hook.iter_location_tasks(contact_ids=["c1", "c2", "c3"]))
        grouped = hook.tasks_for_contacts(["c1"])
        activity = {a.contact_id: sorted(t.id for t in a.tasks) for a in hook.fetch_tasks_and_notes(["c1", "c2"])}

    assert every == ["t1", "t2", "t3"] and open_ones == ["t1", "t3"] and given == ["t1", "t2", "t3"]
    assert grouped is None and activity == {"c1": ["t1", "t2"], "c2": ["t3"]}
    assert stub.paths("POST").count("/locations/L1/tasks/search") == 1  # never tried again by this hook
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "locations/tasks.readonly" in warnings[0] and "falling back" in warnings[0]
    assert hook.stats.refreshes == 0

    # Another hook instance tries the search again (its own token may differ) and warns once itself.
    other = ContactsHook("ghl_stub", retry=FAST)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts"):
        assert sorted(t.id for t in other.iter_location_tasks(contact_ids=["c2"])) == ["t3"]
    assert stub.paths("POST").count("/locations/L1/tasks/search") == 2
    assert len([r for r in caplog.records if "locations/tasks.readonly" in r.getMessage()]) == 1


@pytest.mark.parametrize(("status", "message"), [(401, AUTH_CLASS_401), (403, "Forbidden"), (401, "Unauthorized")])
def test_task_search_falls_back_on_other_401s_and_403s(stub_api, status, message) -> None:
    stub, hook = stub_api(_no_task_scope_api(status, message))
    assert sorted(t.id for t in hook.iter_location_tasks(contact_ids=["c1", "c2"])) == ["t1", "t2", "t3"]
    assert stub.paths("POST").count("/locations/L1/tasks/search") == 1


def test_task_search_for_another_location_is_not_papered_over(stub_api) -> None:
    stub, hook = stub_api(_no_task_scope_api(403, LOCATION_403))
    with pytest.raises(GHLLocationAccessError):
        list(hook.iter_location_tasks())
    assert hook.task_search_access.allowed


def test_async_task_search_scope_401_falls_back_per_contact_once_per_hook(stub_api, caplog) -> None:
    stub, hook = stub_api(_no_task_scope_api())

    async def run() -> tuple[list[str], list[str], list[str]]:
        every = [t.id async for t in hook.aiter_location_tasks()]
        open_ones = [t.id async for t in hook.aiter_location_tasks(completed=False)]
        given = [t.id async for t in hook.aiter_location_tasks(contact_ids=["c1", "c2", "c3"], batch_size=2)]
        return every, open_ones, given

    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts"):
        every, open_ones, given = asyncio.run(run())
        sync_too = sorted(t.id for t in hook.iter_location_tasks(contact_ids=["c2"]))  # the sync side shares it

    assert sorted(every) == ["t1", "t2", "t3"] and sorted(open_ones) == ["t1", "t3"] and sorted(given) == ["t1", "t2", "t3"]
    assert sync_too == ["t3"]
    assert stub.paths("POST").count("/locations/L1/tasks/search") == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "locations/tasks.readonly" in warnings[0]
    assert hook.stats.refreshes == 0


def test_async_task_search_pages_like_the_sync_one_when_allowed(stub_api) -> None:
    tasks = [{"id": f"t{i}", "contactId": f"c{i % 3}", "completed": bool(i % 2)} for i in range(7)]

    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        assert path == "/locations/L1/tasks/search"
        picked = [t for t in tasks if "contactId" not in body or t["contactId"] in body["contactId"]]
        if "completed" in body:
            picked = [t for t in picked if t["completed"] == body["completed"]]
        return 200, {"tasks": picked[body["skip"]:body["skip"] + body["limit"]]}

    stub, hook = stub_api(route)

    async def run() -> tuple[list[str], list[str]]:
        every = [t.id async for t in hook.aiter_location_tasks(page_limit=3)]
        some = [t.id async for t in hook.aiter_location_tasks(contact_ids=["c0", "c1"], completed=False,
                                                              batch_size=1, page_limit=3)]
        return every, some

    every, some = asyncio.run(run())
    assert every == [t.id for t in hook.iter_location_tasks(page_limit=3)] == [f"t{i}" for i in range(7)]
    assert sorted(some) == ["t0", "t4", "t6"]
    assert stub.calls[0][2] == {"limit": 3, "skip": 0}
