"""A DAG waits on tasks: one created for a contact, one completed, one coming due - in poke,
reschedule and deferrable modes. A CRM user's change always comes after the sensor's first look."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from test_sensors_contacts import (
    SAFETY_TIMEOUT_S,
    after_check,
    defer,
    poke_until_done,
    reschedule_once,
    resume,
    run_trigger,
)

from airflow.sdk.exceptions import AirflowException, AirflowRescheduleException
from airflow_provider_contacts.operators.base import GHLInputError
from airflow_provider_contacts.sensors.tasks import GHLTaskCompletedSensor, GHLTaskCreatedSensor, GHLTaskDueSensor


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


def test_task_created_in_reschedule_mode_needs_the_known_tasks(sandbox, ghl_conn) -> None:
    cid, existing = _contact_with_tasks(sandbox)
    started = datetime.now(timezone.utc)
    with pytest.raises(GHLInputError, match="known_task_ids"):
        reschedule_once(lambda: GHLTaskCreatedSensor(task_id="t", contact_id=cid, mode="reschedule"), started)

    def make() -> GHLTaskCreatedSensor:
        return GHLTaskCreatedSensor(
            task_id="t", contact_id=cid, mode="reschedule", known_task_ids="{{ params.known | tojson }}", poke_interval=1
        )

    known = {"known": [t["id"] for t in existing]}
    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started, params=known)
    new = sandbox.admin.create_task(cid, title="Call back", dueDate=_soon(30))
    assert reschedule_once(make, started, params=known)["task_ids"] == [new["id"]]


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


def test_a_deleted_task_ends_the_deferred_wait_with_an_error(sandbox, ghl_conn) -> None:
    cid, existing = _contact_with_tasks(sandbox)
    sensor = GHLTaskCompletedSensor(task_id="d", contact_id=cid, ghl_task_id="deletedTask00001", deferrable=True, poke_interval=0.1)
    payload = run_trigger(defer(sensor).trigger)
    assert payload["status"] == "error" and payload["error_type"] == "GHLNotFoundError"
    assert sandbox.token not in payload["message"]
    with pytest.raises(AirflowException, match="GHLNotFoundError"):
        sensor.execute_complete({}, payload)


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
    result = resume(deferrable, defer(deferrable))
    open_tasks = [t for t in sandbox.admin.dump()["tasks"] if t["contactId"] == cid and not t["completed"]]
    assert result["count"] == len(open_tasks)  # all due before the window ends; the seeded ones are overdue
    assert result["task_ids"][-2:] == [box["result"]["id"], invoice["id"]]  # soonest first


def test_task_due_rejects_a_window_that_is_not_a_duration(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match="parameter 'within'"):
        poke_until_done(GHLTaskDueSensor(task_id="d", within="soon", timeout=1))
    with pytest.raises(GHLInputError, match="positive duration"):
        poke_until_done(GHLTaskDueSensor(task_id="d", within=0, timeout=1))
