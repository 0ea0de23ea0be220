"""A DAG waits on tasks: one created for a contact, one completed, one coming due - in poke,
reschedule and deferrable modes. A CRM user's change always comes after the sensor's first look."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from test_sensors_contacts import (
    SAFETY_TIMEOUT_S,
    RescheduledTask,
    after_check,
    defer,
    poke_until_done,
    reschedule_once,
    resume,
    run_trigger,
)

from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException
from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.params import GHLInputError
from airflow_provider_contacts.sensors.base import STATE_KEY
from airflow_provider_contacts.sensors.contacts import GHLContactsChangedSensor
from airflow_provider_contacts.sensors.tasks import (
    GHLTaskChangedSensor,
    GHLTaskCompletedSensor,
    GHLTaskCreatedSensor,
    GHLTaskDueSensor,
)


def _contact_with_tasks(sandbox) -> tuple[str, list[dict]]:
    tasks = sandbox.admin.dump()["tasks"]
    cid = next(t["contactId"] for t in tasks)
    return cid, [t for t in tasks if t["contactId"] == cid]


def _soon(minutes: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- task created --------------------------------------------------------------------------------
def test_task_created_in_poke_mode_ignores_the_tasks_that_existed(sandbox, ghl_conn) -> None:
    cid, existing = _contact_with_tasks(sandbox)
    sensor = GHLTaskCreatedSensor(task_id="new_task", contact_id=cid, title="demo", poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)

    def crm_user() -> dict:
        sandbox.admin.create_task(cid, title="Send pricing", dueDate=_soon(60))  # not a demo: ignored
        return sandbox.admin.create_task(cid, title="Book DEMO call", dueDate=_soon(90))

    with after_check(sandbox, "get-all-tasks", crm_user) as box:
        result = poke_until_done(sensor)
    assert existing and result["task_ids"] == [box["result"]["id"]] and result["contact_id"] == cid
    assert result["tasks"][0]["title"] == "Book DEMO call"


def test_task_created_in_reschedule_mode_keeps_its_baseline_between_pokes(sandbox, ghl_conn) -> None:
    """Each poke is a new process; the tasks seen at the first poke are kept in the task state
    store, so no known_task_ids are needed and the second poke reports only the new task."""
    cid, existing = _contact_with_tasks(sandbox)
    task = RescheduledTask()

    def make() -> GHLTaskCreatedSensor:
        return GHLTaskCreatedSensor(task_id="t", contact_id=cid, mode="reschedule", poke_interval=1)

    with pytest.raises(AirflowRescheduleException):
        task.poke(make)
    saved = task.store.get(STATE_KEY)
    assert sorted(saved["condition"]["known_ids"]) == sorted(t["id"] for t in existing)
    with pytest.raises(AirflowRescheduleException):
        task.poke(make)  # nothing new yet: the stored baseline is used, not a new one
    new = sandbox.admin.create_task(cid, title="Call back", dueDate=_soon(30))
    assert task.poke(make)["task_ids"] == [new["id"]]
    assert STATE_KEY not in task.store.data  # dropped once the wait is over


def test_task_created_in_reschedule_mode_without_a_state_store_needs_the_known_tasks(sandbox, ghl_conn) -> None:
    cid, existing = _contact_with_tasks(sandbox)
    started = datetime.now(timezone.utc)
    with pytest.raises(GHLInputError, match="known_task_ids.*task state store") as err:
        reschedule_once(lambda: GHLTaskCreatedSensor(task_id="t", contact_id=cid, mode="reschedule"), started)
    assert isinstance(err.value, AirflowFailException)

    def make() -> GHLTaskCreatedSensor:
        return GHLTaskCreatedSensor(
            task_id="t", contact_id=cid, mode="reschedule", known_task_ids="{{ params.known | tojson }}", poke_interval=1
        )

    known = {"known": [t["id"] for t in existing]}
    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started, params=known)
    new = sandbox.admin.create_task(cid, title="Call back", dueDate=_soon(30))
    assert reschedule_once(make, started, params=known)["task_ids"] == [new["id"]]


def test_a_changed_parameter_between_pokes_takes_a_new_baseline(sandbox, ghl_conn) -> None:
    cid, _ = _contact_with_tasks(sandbox)
    task = RescheduledTask()
    with pytest.raises(AirflowRescheduleException):
        task.poke(lambda: GHLTaskChangedSensor(task_id="t", contact_id=cid, mode="reschedule"))
    sandbox.admin.create_task(cid, title="Made while the DAG was edited", dueDate=_soon(30))
    # The DAG now compares only "completed": the saved baseline does not fit, a new one is taken.
    with pytest.raises(AirflowRescheduleException):
        task.poke(lambda: GHLTaskChangedSensor(task_id="t", contact_id=cid, compare=["completed"], mode="reschedule"))
    assert task.store.get(STATE_KEY)["condition"]["compare"] == ["completed"]


def test_reschedule_mode_keeps_the_moment_the_wait_began(sandbox, ghl_conn) -> None:
    """``since`` defaults to the first poke's start, not to Airflow's first-reschedule date (which is
    recorded only when the first poke ends): a change in between is not lost."""
    task = RescheduledTask()

    def make() -> GHLContactsChangedSensor:
        return GHLContactsChangedSensor(task_id="r", mode="reschedule", tags=["fast-lead"], poke_interval=1)

    with pytest.raises(AirflowRescheduleException):
        task.poke(make)
    lead = sandbox.admin.create_contact(firstName="Quick", tags=["fast-lead"])  # while the first poke ends
    task.first_reschedule = datetime.now(timezone.utc) + timedelta(seconds=1)  # Airflow's record of that end
    assert task.poke(make)["contact_ids"] == [lead["id"]]


def test_task_created_deferrable_takes_the_baseline_before_deferring(sandbox, ghl_conn) -> None:
    cid, existing = _contact_with_tasks(sandbox)
    sensor = GHLTaskCreatedSensor(task_id="t", contact_id=cid, deferrable=True, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    deferred = defer(sensor)
    condition = deferred.trigger.serialize()[1]["condition"]
    assert sorted(condition["known_ids"]) == sorted(t["id"] for t in existing)
    # One call for the baseline in the worker, then the trigger's first check.
    with after_check(sandbox, "get-all-tasks", lambda: sandbox.admin.create_task(cid, title="Check in", dueDate=_soon(5)), checks=2) as box:
        result = resume(sensor, deferred)
    assert result["task_ids"] == [box["result"]["id"]]


def test_task_created_uses_since_when_the_api_dates_its_tasks(sandbox, ghl_conn) -> None:
    sandbox.admin.configure(tasks_without_updated_at=False)  # this API version sends dateAdded on tasks
    cid, existing = _contact_with_tasks(sandbox)
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    early = sandbox.admin.create_task(cid, title="Created before the first poke", dueDate=_soon(60))

    def make() -> GHLTaskCreatedSensor:
        return GHLTaskCreatedSensor(task_id="t", contact_id=cid, mode="reschedule", poke_interval=1)

    # Reschedule mode needs no known_task_ids here: the dates tell new tasks from old ones, and a
    # task created after the sensor started but before its first poke is not missed.
    result = reschedule_once(make, started)
    assert result["task_ids"] == [early["id"]] and early["id"] not in {t["id"] for t in existing}


# -- task completed ------------------------------------------------------------------------------
def test_task_completed_in_all_three_modes(sandbox, ghl_conn) -> None:
    cid, _ = _contact_with_tasks(sandbox)
    tasks = [sandbox.admin.create_task(cid, title=f"Step {i}", dueDate=_soon(60), completed=False) for i in range(3)]
    ids = [t["id"] for t in tasks]

    poke = GHLTaskCompletedSensor(task_id="p", contact_id=cid, ghl_task_id=ids[0], poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    with after_check(sandbox, "get-task", lambda: sandbox.admin.update_task(cid, ids[0], completed=True)):
        assert poke_until_done(poke)["task"]["completed"] is True

    started = datetime.now(timezone.utc)

    def make() -> GHLTaskCompletedSensor:
        return GHLTaskCompletedSensor(task_id="r", contact_id=cid, ghl_task_id=ids[1], mode="reschedule", poke_interval=1)

    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started)
    sandbox.admin.update_task(cid, ids[1], completed=True)
    assert reschedule_once(make, started)["task_id"] == ids[1]

    deferrable = GHLTaskCompletedSensor(
        task_id="d", contact_id=cid, ghl_task_id=ids[2], deferrable=True, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S
    )
    deferred = defer(deferrable)
    checks_before = sandbox.admin.counters()["by_operation"].get("get-task", 0)
    with after_check(sandbox, "get-task", lambda: sandbox.admin.update_task(cid, ids[2], completed=True), checks=checks_before + 1):
        result = resume(deferrable, deferred)
    assert result == {"contact_id": cid, "task_id": ids[2], "task": {**result["task"], "id": ids[2], "completed": True}}


def test_a_deleted_task_fails_the_sensor_at_once_in_every_mode(sandbox, ghl_conn) -> None:
    """The live API answers a deleted task with 400 "Task not found": the sensor says so, and fails
    without retries (it cannot come back), in poke mode, in the deferrable mode's first check, and
    when the task is deleted while the trigger waits."""
    cid, _ = _contact_with_tasks(sandbox)
    for mode in ({"mode": "poke"}, {"deferrable": True}):
        gone = GHLTaskCompletedSensor(task_id="d", contact_id=cid, ghl_task_id="deletedTask00001", poke_interval=0.1, timeout=5, **mode)
        with pytest.raises(GHLNotFoundError, match=r"Task not found.*fix:.*ghl_task_id='deletedTask00001'") as err:
            poke_until_done(gone)
        assert isinstance(err.value, AirflowFailException) and err.value.status in (400, 404)
    task = sandbox.admin.create_task(cid, title="Soon gone", dueDate=_soon(60))
    sensor = GHLTaskCompletedSensor(task_id="d", contact_id=cid, ghl_task_id=task["id"], deferrable=True, poke_interval=0.1)
    deferred = defer(sensor)
    sandbox.admin.delete_task(cid, task["id"])
    payload = run_trigger(deferred.trigger)
    assert payload["status"] == "error" and payload["error_type"] == "GHLNotFoundError" and payload["retryable"] is False
    assert sandbox.token not in json.dumps(payload)
    with pytest.raises(GHLNotFoundError, match="Task not found") as err:
        sensor.execute_complete({}, payload)
    assert isinstance(err.value, AirflowFailException) and err.value.trace_id == payload["api"]["trace_id"]


# -- task due ------------------------------------------------------------------------------------
def test_task_due_within_the_window_location_wide_and_per_contact(sandbox, ghl_conn) -> None:
    cid, _ = _contact_with_tasks(sandbox)
    within = timedelta(hours=1)
    # Seeded tasks are due in 2022-2025: nothing is due in the next hour until a CRM user adds one.
    poke = GHLTaskDueSensor(task_id="due", within=within, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    with after_check(sandbox, "task-search", lambda: sandbox.admin.create_task(cid, title="Renewal call", dueDate=_soon(30))) as box:
        result = poke_until_done(poke)
    assert result["task_ids"] == [box["result"]["id"]] and result["count"] == 1

    started = datetime.now(timezone.utc)

    def make() -> GHLTaskDueSensor:
        return GHLTaskDueSensor(task_id="r", contact_id=cid, within=3600, title="invoice", mode="reschedule", poke_interval=1)

    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started)
    invoice = sandbox.admin.create_task(cid, title="Follow up on invoice", dueDate=_soon(45))
    assert reschedule_once(make, started)["task_ids"] == [invoice["id"]]

    deferrable = GHLTaskDueSensor(
        task_id="d", contact_id=cid, within=within, include_overdue=True, deferrable=True, poke_interval=0.1
    )
    result = poke_until_done(deferrable)  # already true: the first check, in the worker, answers without deferring
    open_tasks = [t for t in sandbox.admin.dump()["tasks"] if t["contactId"] == cid and not t["completed"]]
    assert result["count"] == len(open_tasks)  # all due before the window ends; the seeded ones are overdue
    assert result["task_ids"][-2:] == [box["result"]["id"], invoice["id"]]  # soonest first


def test_task_due_rejects_a_window_that_is_not_a_duration(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match="parameter 'within'"):
        poke_until_done(GHLTaskDueSensor(task_id="d", within="soon", timeout=1))
    with pytest.raises(GHLInputError, match="positive duration"):
        poke_until_done(GHLTaskDueSensor(task_id="d", within=0, timeout=1))


# -- tasks changed ---------------------------------------------------------------------------------
def test_task_changed_location_wide_reports_completions_only_when_asked(sandbox, ghl_conn) -> None:
    tasks = sandbox.admin.dump()["tasks"]
    open_task = next(t for t in tasks if not t["completed"])
    other = next(t for t in tasks if t["id"] != open_task["id"] and not t["completed"])
    sensor = GHLTaskChangedSensor(
        task_id="done", compare=["completed"], changes=["updated"], poke_interval=0.1, timeout=SAFETY_TIMEOUT_S
    )

    def crm_user() -> None:
        sandbox.admin.update_task(other["contactId"], other["id"], title="Renamed, not completed")  # not compared
        sandbox.admin.create_task(other["contactId"], title="New", dueDate=_soon(10))  # "created" not asked for
        sandbox.admin.update_task(open_task["contactId"], open_task["id"], completed=True)

    with after_check(sandbox, "task-search", crm_user):
        result = poke_until_done(sensor)
    assert result["changes"] == [{"id": open_task["id"], "change": "updated", "fields": ["completed"]}]
    assert result["contact_id"] is None and result["tasks"][0]["completed"] is True and result["count"] == 1


def test_task_changed_refuses_unknown_fields_and_kinds_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"task_id='x'\): 'compare': \['priority'\] cannot be compared"):
        GHLTaskChangedSensor(task_id="x", compare=["priority"])
    with pytest.raises(ValueError, match="'changes' must be a non-empty list"):
        GHLTaskChangedSensor(task_id="x", changes=["renamed"])
