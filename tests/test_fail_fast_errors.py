"""Errors that no retry can cure fail the task at once; transient ones stay retryable; deletes are
idempotent whether HighLevel says "gone" with 404 or - as the live API does - with 400
``{"statusCode": 400, "message": "Contact not found"}``; credentials inside URLs never show.

A stub hook stands in for HighLevel where the exact error class matters; a stub HTTP server that
answers every request with the live API's 400 shows the whole path (hook, operator, sensor, trigger).
"""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_sensors_contacts import PokeTI, RescheduledTask, run_trigger

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLDailyLimitError,
    GHLLocationAccessError,
    GHLNotFoundError,
    GHLPaginationError,
    GHLRateLimitError,
    GHLScopeError,
    GHLServerError,
    GHLTransportError,
    GHLValidationError,
)
from airflow_provider_contacts.operators.campaigns import (
    GHLRemoveContactFromAllCampaignsOperator,
    GHLRemoveContactFromCampaignOperator,
)
from airflow_provider_contacts.operators.contacts import GHLDeleteContactOperator, GHLGetContactOperator
from airflow_provider_contacts.failures import GHLFailFast, error_event, error_from_event, fail_fast, is_retryable
from airflow_provider_contacts.operators.followers import GHLRemoveFollowersOperator
from airflow_provider_contacts.operators.notes import GHLDeleteNoteOperator
from airflow_provider_contacts.operators.output import JsonLinesWriter
from airflow_provider_contacts.operators.tags import GHLRemoveTagsOperator
from airflow_provider_contacts.operators.tasks import GHLDeleteTaskOperator, GHLUpdateTaskOperator
from airflow_provider_contacts.operators.workflows import GHLRemoveContactFromWorkflowOperator
from airflow_provider_contacts.params import GHLInputError
from airflow_provider_contacts.sensors.conditions import GHLNoteAddedCondition
from airflow_provider_contacts.sensors.notes import GHLNoteAddedSensor
from airflow_provider_contacts.sensors.tasks import GHLTaskCompletedSensor
from airflow_provider_contacts.task_mixin import GUARDED_METHODS, GHLTaskMixin
from airflow_provider_contacts.triggers.changes import GHLChangeTrigger

TRACE = "4f1c2b9e-trace"
LIVE_NOT_FOUND = {"statusCode": 400, "message": "Contact not found", "traceId": TRACE}


class StubHook:
    """Every hook method raises ``error`` (or returns ``result``)."""

    location_id = "loc1"

    def __init__(self, error: BaseException | None = None, result: Any = True) -> None:
        self.error = error
        self.result = result
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.error is not None:
                raise self.error
            return self.result

        return method


def _run(task: Any, hook: StubHook, **context: Any) -> Any:
    task.hook = hook  # the cached hook property, stubbed
    task.render_template_fields(context)
    return task.execute(context)


def _live_400(message: str = "Contact not found", cls: type[GHLAPIError] = GHLNotFoundError) -> GHLAPIError:
    return cls(message, status=400, trace_id=TRACE, operation="delete-contact")


# -- one place: every operator's and sensor's entry points are guarded ---------------------------------
def _concrete_tasks() -> list[type]:
    from test_operators_base import operator_classes

    from airflow_provider_contacts.sensors import contacts, notes, tasks

    sensors = [
        cls for module in (contacts, notes, tasks) for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, GHLTaskMixin) and cls.__module__ == module.__name__
    ]
    return [*operator_classes(), *sensors]


def test_every_operator_and_sensor_runs_its_entry_points_under_the_one_guard() -> None:
    classes = _concrete_tasks()
    assert len(classes) > 35
    for cls in classes:
        for name in GUARDED_METHODS:
            owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
            if owner is None or not issubclass(owner, GHLTaskMixin):
                continue  # Airflow's own (e.g. BaseOperator.execute_complete)
            assert getattr(getattr(cls, name), "__ghl_guarded__", False), f"{cls.__name__}.{name} is not guarded"
        assert getattr(cls.execute, "__ghl_guarded__", False), cls


# -- which errors fail at once --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (GHLNotFoundError("Contact not found", status=400, trace_id=TRACE), False),
        (GHLNotFoundError("Not Found", status=404), False),
        (GHLValidationError("Contact not found", status=400, trace_id=TRACE), False),  # a hook without the 400 rule
        (GHLValidationError("email must be an email", status=422), False),
        (GHLValidationError("field 'dueDate' is required"), False),  # refused before sending
        (GHLScopeError("The token is not authorized for this scope.", status=401, scope="contacts.write"), False),
        (GHLAuthError("The token is not authorized for this scope.", status=401), False),
        (GHLLocationAccessError("The token does not have access to this location.", status=403), False),
        (GHLAuthError("The token does not have access to this location.", status=403), False),
        (GHLAuthError("Forbidden: the token lacks the 'contacts.write' scope", status=403), False),
        (GHLConfigError("connection 'ghl_default': extra 'auth_type' is 'magic'"), False),
        (GHLServerError("Bad Gateway (gave up after 6 attempts)", status=502), True),
        (GHLTransportError("no usable answer (ReadTimeout)"), True),
        (GHLRateLimitError("Too many requests", status=429), True),
        (GHLDailyLimitError("the daily reserve of 1000 requests is reached"), True),
        (GHLPaginationError("the API repeated a cursor"), True),
        (GHLAuthError("Invalid JWT: the token is invalid or expired", status=401), True),
        (RuntimeError("something else"), True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_errors_no_retry_can_cure_fail_at_once_and_keep_the_original(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable
    op = GHLUpdateTaskOperator(task_id="move", contact_id="c1", ghl_task_id="t1", body={"title": "x"}, retries=2)
    with pytest.raises(type(error)) as err:
        _run(op, StubHook(error))
    raised = err.value
    assert isinstance(raised, AirflowFailException) is (not retryable)
    if retryable:
        assert raised is error  # untouched: Airflow retries it
        return
    # Still the original class (``except GHLNotFoundError`` works), and an AirflowFailException.
    assert isinstance(raised, GHLFailFast) and raised.__cause__ is error
    assert f"GHLUpdateTaskOperator(task_id='move'): {type(error).__name__}: " in str(raised)
    # Config and mapping errors name the field and the fix themselves: no second "fix" restating it.
    assert (" - fix: " in str(raised)) is not isinstance(error, GHLConfigError)
    assert "Not retried" in str(raised)
    if isinstance(error, GHLAPIError):
        assert (raised.message, raised.status, raised.trace_id, raised.operation) == (
            error.message, error.status, error.trace_id, error.operation
        )
    if "not found" in str(error).lower():
        assert "contact_id='c1', ghl_task_id='t1'" in str(raised) and "deleted" in str(raised)
    restored = pickle.loads(pickle.dumps(raised))  # e.g. kept by a failure callback or a result backend
    assert type(restored) is type(raised) and str(restored) == str(raised)


def test_a_parameter_error_is_not_wrapped_twice() -> None:
    op = GHLUpdateTaskOperator(task_id="move", contact_id="c1", ghl_task_id="t/1", body={"title": "x"})
    with pytest.raises(GHLInputError, match="parameter 'ghl_task_id'") as err:
        _run(op, StubHook())
    assert type(err.value) is GHLInputError and err.value.__cause__ is None


def test_a_sync_mapping_error_fails_at_once() -> None:
    from airflow_provider_contacts.sync.mapping import MappingError

    replacement = fail_fast(MappingError("column 'email': unknown transform 'emial'"))
    assert isinstance(replacement, MappingError) and isinstance(replacement, AirflowFailException)


# -- idempotent deletes ---------------------------------------------------------------------------------
DELETE_LIKE = [
    (GHLDeleteContactOperator, {}, {"deleted": False}),
    (GHLDeleteTaskOperator, {"ghl_task_id": "t1"}, {"deleted": False}),
    (GHLDeleteNoteOperator, {"note_id": "n1"}, {"deleted": False}),
    (GHLRemoveContactFromCampaignOperator, {"campaign_id": "drip"}, {"succeeded": False}),
    (GHLRemoveContactFromAllCampaignsOperator, {}, {"succeeded": False}),
    (GHLRemoveContactFromWorkflowOperator, {"workflow_id": "wf1"}, {"succeeded": False}),
    (GHLRemoveFollowersOperator, {"followers": ["u1"]}, {"followers": [], "followersRemoved": []}),
    (GHLRemoveTagsOperator, {"tags": ["vip"]}, {"tags": []}),
]


@pytest.mark.parametrize(("cls", "kwargs", "expected"), DELETE_LIKE, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("error_cls", [GHLNotFoundError, GHLValidationError], ids=["not_found", "validation_400"])
def test_delete_like_operators_count_a_live_400_not_found_as_done(cls, kwargs, expected, error_cls) -> None:
    """``missing_ok=True`` (the default) treats HighLevel's 400 "Contact not found" as a 404 - also
    when a hook still raises it as a validation error - and says so in XCom."""
    hook = StubHook(_live_400("Contact not found", error_cls))
    result = _run(cls(task_id="rm", contact_id="c1", **kwargs), hook)
    assert result["missing"] is True and result["contact_id"] == "c1"
    assert {k: result[k] for k in expected} == expected
    assert len(hook.calls) == 1
    with pytest.raises(error_cls) as err:
        _run(cls(task_id="rm", contact_id="c1", missing_ok=False, **kwargs), StubHook(_live_400("Contact not found", error_cls)))
    assert isinstance(err.value, AirflowFailException) and err.value.trace_id == TRACE
    # A 400 that is not a "not found" is never swallowed.
    with pytest.raises(GHLValidationError, match="contactId must be a string"):
        _run(cls(task_id="rm", contact_id="c1", **kwargs), StubHook(_live_400("contactId must be a string", GHLValidationError)))
    # A transient error is never swallowed either, and stays retryable.
    with pytest.raises(GHLServerError) as err:
        _run(cls(task_id="rm", contact_id="c1", **kwargs), StubHook(GHLServerError("Bad Gateway", status=502)))
    assert not isinstance(err.value, AirflowFailException)


# -- the whole path, against a server that answers like the live API ------------------------------------
@pytest.fixture
def live_400_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server answering every request with 400 ``Contact not found``; the connection id for it.
    Its host carries credentials (``http://ops:S3cretPass@...``) that must never be shown."""
    seen: list[str] = []

    class Live(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(f"{self.command} {self.path}")
            body = json.dumps(LIVE_NOT_FOUND).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {
        "conn_type": "ghl",
        "host": f"http://ops:S3cretPass@127.0.0.1:{server.server_port}",
        "password": "private-token-123",
        "extra": {"location_id": "loc1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GHL_LIVE", json.dumps(conn))
    try:
        yield "ghl_live"
    finally:
        server.shutdown()
        server.server_close()
    assert seen  # the server was asked


def test_live_400_not_found_end_to_end(live_400_server: str) -> None:
    conn = {"ghl_conn_id": live_400_server}
    gone = _run_real(GHLDeleteContactOperator(task_id="rm", contact_id="c1", **conn))
    assert gone == {"contact_id": "c1", "deleted": False, "missing": True}

    with pytest.raises(GHLNotFoundError) as err:
        _run_real(GHLGetContactOperator(task_id="get", contact_id="c1", **conn))
    assert isinstance(err.value, AirflowFailException) and err.value.status == 400 and err.value.trace_id == TRACE
    assert "Contact not found" in str(err.value) and "contact_id='c1'" in str(err.value)

    # A sensor watching a deleted contact says so, the same way in all three modes.
    def make(**mode: Any) -> GHLNoteAddedSensor:
        return GHLNoteAddedSensor(task_id="notes", contact_id="c1", poke_interval=0.05, timeout=5, **conn, **mode)

    answers = []
    for mode in ({"mode": "poke"}, {"deferrable": True}):
        with pytest.raises(GHLNotFoundError) as err:
            _run_real(make(**mode), ti=PokeTI(datetime.now(timezone.utc), None))
        answers.append(err.value)
    with pytest.raises(GHLNotFoundError) as err:
        RescheduledTask().poke(lambda: make(mode="reschedule"))
    answers.append(err.value)
    condition = GHLNoteAddedCondition(contact_id="c1", since="2024-01-01T00:00:00Z").to_kwargs()
    event = run_trigger(GHLChangeTrigger(condition, ghl_conn_id=live_400_server, poll_interval=0.05, timeout=5))
    assert event["status"] == "error" and event["retryable"] is False and event["api"]["trace_id"] == TRACE
    with pytest.raises(GHLNotFoundError) as err:
        make(deferrable=True).execute_complete({}, event)
    answers.append(err.value)
    for answer in answers:
        assert isinstance(answer, AirflowFailException)
        assert (type(answer).__name__, answer.message, answer.status, answer.trace_id) == (
            "GHLNotFoundError", "Contact not found", 400, TRACE
        )
    assert len({str(a) for a in answers}) == 1  # word for word the same failure in every mode

    # soft_fail skips it in every mode, as Airflow does for any AirflowFailException of a sensor.
    with pytest.raises(AirflowSkipException):
        _run_real(make(mode="poke", soft_fail=True), ti=PokeTI(datetime.now(timezone.utc), None))
    with pytest.raises(AirflowSkipException):
        _run_real(make(deferrable=True, soft_fail=True), ti=PokeTI(datetime.now(timezone.utc), None))


def _run_real(task: Any, **context: Any) -> Any:
    task.render_template_fields(context)
    return task.execute(context)


def test_trigger_error_events_rebuild_the_same_error() -> None:
    original = GHLScopeError(
        "The token is not authorized for this scope.", scope="contacts.readonly", status=401, trace_id=TRACE,
        operation="get-all-notes",
    )
    event = json.loads(json.dumps(error_event(original)))  # what the triggerer stores
    rebuilt = error_from_event(event)
    assert type(rebuilt) is GHLScopeError and rebuilt.scope == "contacts.readonly" and str(rebuilt) == str(original)
    sensor = GHLTaskCompletedSensor(task_id="done", contact_id="c1", ghl_task_id="t1", deferrable=True)
    with pytest.raises(GHLScopeError, match="lacks the scope 'contacts.readonly'") as err:
        sensor.execute_complete({}, event)
    assert isinstance(err.value, AirflowFailException)
    # A transient error stays retryable after the trigger, as in poke mode.
    with pytest.raises(GHLServerError) as err:
        sensor.execute_complete({}, error_event(GHLServerError("Bad Gateway", status=502)))
    assert not isinstance(err.value, AirflowFailException)


# -- credentials inside URLs ----------------------------------------------------------------------------
def test_credentials_in_urls_are_masked_in_logs_rendered_fields_and_events(tmp_path) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator

    # (The connection's host is the hook's settings' business: they drop and mask its credentials.)
    # A templated output_path: masked in the rendered fields (what the UI shows) and not in XCom.
    op = GHLSearchContactsOperator(task_id="s", output_path="{{ params.url }}")
    op.render_template_fields({"params": {"url": "file:///tmp/x.jsonl?u=https://bob:PathPass77@files.example.com/a"}})
    assert "PathPass77" not in str(redact(op.output_path, "output_path"))
    writer = JsonLinesWriter(f"file://{tmp_path}/out.jsonl")
    writer.close()
    assert writer.describe() == {"output_path": f"file://{tmp_path}/out.jsonl"}

    # Error texts written by the provider itself: fail-fast messages and trigger events.
    error = GHLTransportError("no usable answer from http://svc:EventPass9@api.example.com (ConnectError)")
    event = error_event(error)
    assert "EventPass9" not in json.dumps(event) and "http://svc:***@api.example.com" in event["message"]
    failed = fail_fast(GHLConfigError("connection 'x': 'ftp://svc:CfgPass1@h' is not a URL"))
    assert failed is not None and "CfgPass1" not in str(failed) and "ftp://svc:***@h" in str(failed)
    # A foreign error (not the provider's) quoting such a URL: registered, so Airflow's log masks it.
    assert fail_fast(RuntimeError("proxy http://svc:Foreign123@proxy.example.com refused")) is None
    assert "Foreign123" not in redact("proxy http://svc:Foreign123@proxy.example.com refused")


def test_reschedule_mode_keeps_no_state_after_a_permanent_failure(live_400_server: str) -> None:
    task = RescheduledTask()
    with pytest.raises(GHLNotFoundError):
        task.poke(lambda: GHLNoteAddedSensor(task_id="n", contact_id="c1", mode="reschedule", ghl_conn_id=live_400_server))
    assert task.first_reschedule is None and not task.store.data  # failed before any state was kept


def test_sensor_failure_options_act_alike_after_the_trigger() -> None:
    """``soft_fail`` skips a permanent error, ``never_fail`` any error - after the trigger as in poke mode."""
    not_found = error_event(GHLNotFoundError("Task not found", status=400, trace_id=TRACE, operation="get-task"))
    soft = GHLTaskCompletedSensor(task_id="s", contact_id="c1", ghl_task_id="t1", deferrable=True, soft_fail=True)
    with pytest.raises(GHLNotFoundError) as err:  # Airflow's resume_execution turns it into a skip
        soft.execute_complete({}, not_found)
    assert isinstance(err.value, AirflowFailException)
    never = GHLTaskCompletedSensor(task_id="n", contact_id="c1", ghl_task_id="t1", deferrable=True, never_fail=True)
    with pytest.raises(AirflowSkipException):
        never.execute_complete({}, error_event(GHLServerError("Bad Gateway", status=502)))
    assert GHLChangeTrigger({"kind": "task_completed", "contact_id": "c", "task_id": "t"}, silent_fail=True).serialize()[1][
        "silent_fail"
    ] is True
