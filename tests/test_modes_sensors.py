"""Every HighLevel sensor gives the same answer in poke, reschedule and deferrable mode, with no
extra argument in any of them.

For each sensor, three copies wait for the same thing from the same moment: one in poke mode (one
object, poked again and again, as ``BaseSensorOperator.execute`` does), one in reschedule mode (a
fresh object and context for every poke, as a new worker process gets them; only the task state
store and Airflow's first-reschedule date carry over) and one deferrable (first check in the
worker, then the trigger's ``run()`` to its first event, then ``execute_complete``). Each looks
once; then a CRM user makes one change; then each looks again. Their XCom values must be equal -
or, when the change makes the watched record disappear, their errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from test_sensors_contacts import PokeTI, RescheduledTask, run_trigger

from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, TaskDeferred
from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.sensors.base import STATE_KEY, GHLBaseSensor
from airflow_provider_contacts.sensors.contacts import GHLContactsChangedSensor
from airflow_provider_contacts.sensors.notes import GHLNoteAddedSensor, GHLNoteChangedSensor
from airflow_provider_contacts.sensors.tasks import (
    GHLTaskChangedSensor,
    GHLTaskCompletedSensor,
    GHLTaskCreatedSensor,
    GHLTaskDueSensor,
)


def _soon(minutes: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _busy_contact(sandbox: Any, kind: str, at_least: int) -> str:
    """A seeded contact with at least ``at_least`` tasks or notes."""
    items = sandbox.admin.dump()[kind]
    counts: dict[str, int] = {}
    for item in items:
        counts[item["contactId"]] = counts.get(item["contactId"], 0) + 1
    return next(cid for cid, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= at_least)


@dataclass
class Scenario:
    """``setup(sandbox) -> ids``; ``make(ids, **mode) -> sensor``; ``change(sandbox, ids)``: the CRM
    user's one change; ``gone``: the change deletes what is watched (the answer is an error)."""

    make: Callable[..., GHLBaseSensor]
    change: Callable[[Any, dict[str, Any]], Any]
    setup: Callable[[Any], dict[str, Any]] = lambda sandbox: {}
    gone: bool = False


def _tasks_setup(sandbox: Any) -> dict[str, Any]:
    cid = _busy_contact(sandbox, "tasks", 2)
    tasks = [t for t in sandbox.admin.dump()["tasks"] if t["contactId"] == cid]
    return {"cid": cid, "edit": tasks[0]["id"], "drop": tasks[1]["id"]}


def _tasks_change(sandbox: Any, ids: dict[str, Any]) -> None:
    sandbox.admin.update_task(ids["cid"], ids["edit"], completed=True, dueDate=_soon(120))
    sandbox.admin.delete_task(ids["cid"], ids["drop"])
    sandbox.admin.create_task(ids["cid"], title="Quarterly review", dueDate=_soon(600))


def _notes_setup(sandbox: Any) -> dict[str, Any]:
    cid = _busy_contact(sandbox, "notes", 2)
    notes = [n for n in sandbox.admin.dump()["notes"] if n["contactId"] == cid]
    return {"cid": cid, "edit": notes[0]["id"], "drop": notes[1]["id"]}


def _notes_change(sandbox: Any, ids: dict[str, Any]) -> None:
    sandbox.admin.update_note(ids["cid"], ids["edit"], body="Edited after the call", pinned=True)
    sandbox.admin.delete_note(ids["cid"], ids["drop"])
    sandbox.admin.create_note(ids["cid"], body="Follow-up agreed")


def _open_task(sandbox: Any) -> dict[str, Any]:
    cid = _busy_contact(sandbox, "tasks", 1)
    return {"cid": cid, "task": sandbox.admin.create_task(cid, title="Send the contract", dueDate=_soon(300))["id"]}


SCENARIOS: dict[str, Scenario] = {
    "contacts_changed": Scenario(
        make=lambda ids, **mode: GHLContactsChangedSensor(tags=["webinar"], **mode),
        change=lambda sandbox, ids: sandbox.admin.create_contact(firstName="Ada", tags=["webinar"]),
    ),
    "task_created_for_a_contact": Scenario(
        setup=lambda sandbox: {"cid": _busy_contact(sandbox, "tasks", 1)},
        make=lambda ids, **mode: GHLTaskCreatedSensor(contact_id=ids["cid"], **mode),
        change=lambda sandbox, ids: sandbox.admin.create_task(ids["cid"], title="Call back", dueDate=_soon(60)),
    ),
    "task_created_in_the_location": Scenario(
        setup=lambda sandbox: {"cid": _busy_contact(sandbox, "tasks", 1)},
        make=lambda ids, **mode: GHLTaskCreatedSensor(title="demo", **mode),
        change=lambda sandbox, ids: sandbox.admin.create_task(ids["cid"], title="Book a demo", dueDate=_soon(60)),
    ),
    "tasks_changed_for_a_contact": Scenario(
        setup=_tasks_setup,
        make=lambda ids, **mode: GHLTaskChangedSensor(contact_id=ids["cid"], **mode),
        change=_tasks_change,
    ),
    "tasks_changed_in_the_location": Scenario(
        setup=_tasks_setup,
        make=lambda ids, **mode: GHLTaskChangedSensor(**mode),
        change=_tasks_change,
    ),
    "task_completed": Scenario(
        setup=_open_task,
        make=lambda ids, **mode: GHLTaskCompletedSensor(contact_id=ids["cid"], ghl_task_id=ids["task"], **mode),
        change=lambda sandbox, ids: sandbox.admin.update_task(ids["cid"], ids["task"], completed=True),
    ),
    "task_due": Scenario(
        setup=lambda sandbox: {"cid": _busy_contact(sandbox, "tasks", 1)},
        make=lambda ids, **mode: GHLTaskDueSensor(within=3600, **mode),
        change=lambda sandbox, ids: sandbox.admin.create_task(ids["cid"], title="Renewal call", dueDate=_soon(30)),
    ),
    "note_added": Scenario(
        setup=lambda sandbox: {"cid": _busy_contact(sandbox, "notes", 1)},
        make=lambda ids, **mode: GHLNoteAddedSensor(contact_id=ids["cid"], **mode),
        change=lambda sandbox, ids: sandbox.admin.create_note(ids["cid"], body="Call went well"),
    ),
    "notes_changed": Scenario(
        setup=_notes_setup,
        make=lambda ids, **mode: GHLNoteChangedSensor(contact_id=ids["cid"], **mode),
        change=_notes_change,
    ),
    "note_sensor_on_a_contact_that_gets_deleted": Scenario(
        setup=lambda sandbox: {"cid": _busy_contact(sandbox, "notes", 1)},
        make=lambda ids, **mode: GHLNoteAddedSensor(contact_id=ids["cid"], **mode),
        change=lambda sandbox, ids: sandbox.admin.delete_contact(ids["cid"]),
        gone=True,
    ),
    "completed_sensor_on_a_task_that_gets_deleted": Scenario(
        setup=_open_task,
        make=lambda ids, **mode: GHLTaskCompletedSensor(contact_id=ids["cid"], ghl_task_id=ids["task"], **mode),
        change=lambda sandbox, ids: sandbox.admin.delete_task(ids["cid"], ids["task"]),
        gone=True,
    ),
}


def _answer(run: Callable[[], Any]) -> Any:
    """The XCom value, or for an error what identifies it (class, HighLevel's message, status,
    whether it fails at once) - not the traceId, which differs per request."""
    try:
        value = run()
    except Exception as exc:  # noqa: BLE001 - compared below
        return ("error", type(exc).__name__, getattr(exc, "message", str(exc)), getattr(exc, "status", None),
                isinstance(exc, AirflowFailException))
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "window_end"}  # "now + within" at the moment of the check
    return value


def _until_done(poke: Callable[[], Any]) -> Any:
    """``poke()`` again until it answers instead of asking to be rescheduled (the sandbox's search
    may be configured to lag)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return poke()
        except AirflowRescheduleException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_sensor_answers_the_same_in_poke_reschedule_and_deferrable_mode(sandbox, ghl_conn, name: str) -> None:
    scenario = SCENARIOS[name]
    ids = scenario.setup(sandbox)
    started = datetime.now(timezone.utc) - timedelta(milliseconds=5)  # all three start waiting now
    common = {"poke_interval": 0.1, "timeout": 30}

    # First look, all three modes. Poke: one object. Reschedule: a fresh object per poke.
    poking = scenario.make(ids, task_id="poke", mode="poke", **common)
    poke_ctx = {"ti": PokeTI(started, None)}
    poking.render_template_fields(poke_ctx)
    assert poking.poke(poke_ctx).is_done is False

    rescheduled = RescheduledTask(started)
    make_rescheduled = lambda: scenario.make(ids, task_id="reschedule", mode="reschedule", **common)  # noqa: E731
    with pytest.raises(AirflowRescheduleException):
        rescheduled.poke(make_rescheduled)
    assert rescheduled.store.get(STATE_KEY)["started_at"].startswith(started.strftime("%Y-%m-%dT%H:%M"))

    deferring = scenario.make(ids, task_id="defer", deferrable=True, **common)
    defer_ctx = {"ti": PokeTI(started, None)}
    deferring.render_template_fields(defer_ctx)
    with pytest.raises(TaskDeferred) as deferred:
        deferring.execute(defer_ctx)

    scenario.change(sandbox, ids)

    def poke_again() -> Any:
        answer = poking.poke(poke_ctx)
        if not answer.is_done:
            raise AirflowRescheduleException(datetime.now(timezone.utc))
        return answer.xcom_value

    in_poke = _answer(lambda: _until_done(poke_again))
    in_reschedule = _answer(lambda: _until_done(lambda: rescheduled.poke(make_rescheduled)))
    in_deferrable = _answer(
        lambda: getattr(deferring, deferred.value.method_name)(defer_ctx, run_trigger(deferred.value.trigger))
    )

    assert in_poke == in_reschedule == in_deferrable, name
    if scenario.gone:
        assert in_poke[:2] == ("error", GHLNotFoundError.__name__) and "not found" in in_poke[2]
        assert in_poke[4] is True  # fails at once: no retry brings a deleted record back
    else:
        assert isinstance(in_poke, dict) and in_poke, in_poke
        assert STATE_KEY not in rescheduled.store.data  # the wait's state is dropped once it is over
