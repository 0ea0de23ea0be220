"""A DAG waits for new or updated leads (tag, custom field) in each sensor mode: poke, reschedule,
deferrable. Changes are made "as a CRM user would" through the sandbox admin client, only after
the sensor has looked once, so every test proves the sensor really waited.

Also home of the helpers the other sensor tests import.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow.sdk.exceptions import AirflowRescheduleException, AirflowSensorTimeout, TaskDeferred
from airflow_provider_contacts.params import GHLInputError
from airflow_provider_contacts.sensors.base import GHLBaseSensor
from airflow_provider_contacts.sensors.contacts import GHLContactsChangedSensor

SAFETY_TIMEOUT_S = 60.0


# -- helpers ---------------------------------------------------------------------------------------
@contextmanager
def after_check(sandbox: Any, operation_id: str, change: Callable[[], Any], checks: int = 1) -> Iterator[dict]:
    """Run ``change`` in a thread once the sandbox has answered ``checks`` calls of ``operation_id``.

    Yields a dict that receives ``"result"`` (what ``change`` returned). Waits for the thread on exit.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def watch() -> None:
        try:
            while not done.wait(0.02):
                if sandbox.admin.counters()["by_operation"].get(operation_id, 0) >= checks:
                    box["result"] = change()
                    return
        except Exception as exc:  # surfaced by the test through box["error"]
            box["error"] = exc

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        done.set()
        thread.join(SAFETY_TIMEOUT_S)
    if "error" in box:
        raise box["error"]


class FirstTry:
    """Stand-in for the task instance in reschedule mode: when the sensor first started."""

    def __init__(self, started: datetime) -> None:
        self.started = started

    def get_first_reschedule_date(self, context: Any) -> datetime:
        return self.started


class StateStore:
    """Stand-in for ``context["task_state_store"]``: JSON values kept between the pokes (and tries)
    of one task instance, as Airflow 3.3 keeps them in its metadata database."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.data[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class PokeTI:
    """The task instance of one reschedule-mode poke: its start, and Airflow's first reschedule
    date (``None`` until the first poke was rescheduled)."""

    def __init__(self, start_date: datetime, first_reschedule: datetime | None) -> None:
        self.start_date = start_date
        self.first_reschedule = first_reschedule

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_reschedule


class RescheduledTask:
    """A reschedule-mode task instance across pokes, as Airflow runs it: every poke is a fresh
    sensor object (a new process) with a fresh context; only the state store, the poke's start date
    and the first reschedule's date (recorded when the first poke asked to be rescheduled) carry over."""

    def __init__(self, started: datetime | None = None) -> None:
        self.store = StateStore()
        self.started = started  # the first poke's start (default: when it runs)
        self.first_reschedule: datetime | None = None
        self.pokes = 0

    def poke(self, make: Callable[[], GHLBaseSensor], **context: Any) -> Any:
        """One poke; raises ``AirflowRescheduleException`` when the condition does not hold yet."""
        self.pokes += 1
        sensor = make()
        start = self.started if (self.pokes == 1 and self.started) else datetime.now(timezone.utc)
        ctx = {"ti": PokeTI(start, self.first_reschedule), "task_state_store": self.store, **context}
        sensor.render_template_fields(ctx)
        try:
            return sensor.execute(ctx)
        except AirflowRescheduleException:
            if self.first_reschedule is None:  # Airflow stores the moment of the first reschedule
                self.first_reschedule = datetime.now(timezone.utc)
            raise


def poke_until_done(sensor: GHLBaseSensor, **context: Any) -> Any:
    """Render and run a sensor in poke mode (``execute`` loops over ``poke``)."""
    sensor.render_template_fields(context)
    return sensor.execute(context)


def reschedule_once(make: Callable[[], GHLBaseSensor], started: datetime, **context: Any) -> Any:
    """One reschedule-mode try of a fresh sensor (as a new worker process would run it).

    Returns the XCom value when the condition holds; raises ``AirflowRescheduleException`` otherwise.
    """
    sensor = make()
    ctx = {"ti": FirstTry(started), **context}
    sensor.render_template_fields(ctx)
    return sensor.execute(ctx)


def defer(sensor: GHLBaseSensor, **context: Any) -> TaskDeferred:
    """Run a deferrable sensor until it defers; return the deferral (trigger, method, timeout)."""
    sensor.render_template_fields(context)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    return deferred.value


def run_trigger(trigger: Any) -> dict[str, Any]:
    """Run a trigger to its first event (as the triggerer would) and return the payload."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), SAFETY_TIMEOUT_S))


def resume(sensor: GHLBaseSensor, deferred: TaskDeferred, **context: Any) -> Any:
    """Run the trigger of ``deferred`` and resume the sensor with its event."""
    payload = run_trigger(deferred.trigger)
    return getattr(sensor, deferred.method_name)(context, payload)


# -- tests -----------------------------------------------------------------------------------------
def test_poke_mode_returns_the_new_lead_with_the_tag(sandbox, ghl_conn) -> None:
    sensor = GHLContactsChangedSensor(task_id="new_hot_leads", tags=["hot-lead"], poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    with after_check(sandbox, "search-contacts-advanced", lambda: sandbox.admin.create_contact(firstName="Kwame", tags=["hot-lead"])) as box:
        result = poke_until_done(sensor)
    assert result["contact_ids"] == [box["result"]["id"]] and result["count"] == 1
    assert result["watermark"] == box["result"]["dateUpdated"]


def test_reschedule_mode_matches_a_custom_field_value_set_after_the_first_poke(sandbox, ghl_conn) -> None:
    # Custom fields differ per location (ghl-live-notes.md): take whichever text field this one has.
    plan = next(f for f in sandbox.admin.dump()["customFields"] if f["dataType"] == "TEXT")
    contact = sandbox.admin.dump()["contacts"][3]
    started = datetime.now(timezone.utc)

    def make() -> GHLContactsChangedSensor:
        return GHLContactsChangedSensor(
            task_id="upgraded", mode="reschedule", custom_fields={plan["id"]: "enterprise"}, poke_interval=1
        )

    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started)
    sandbox.admin.update_contact(contact["id"], customFields=[{"id": plan["id"], "field_value": "enterprise"}])
    result = reschedule_once(make, started)
    assert result["contact_ids"] == [contact["id"]]


def test_deferrable_mode_waits_in_the_trigger_and_resumes_with_the_ids(sandbox, ghl_conn) -> None:
    sensor = GHLContactsChangedSensor(
        task_id="created_leads",
        deferrable=True,
        change="created",
        since="{{ params.since }}",
        tags="webinar-2025",
        poke_interval=0.1,
        timeout=SAFETY_TIMEOUT_S,
    )
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    deferred = defer(sensor, params={"since": since.isoformat()})
    assert deferred.method_name == "execute_complete" and deferred.timeout == timedelta(seconds=SAFETY_TIMEOUT_S)
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["condition"]["date_field"] == "dateAdded"
    assert kwargs["condition"]["filters"] == [{"field": "tags", "operator": "eq", "value": "webinar-2025"}]
    # An update of an old contact does not count as "created"; a new contact does.
    old = sandbox.admin.dump()["contacts"][0]

    def crm_user() -> dict:
        sandbox.admin.update_contact(old["id"], tags=["webinar-2025"])
        return sandbox.admin.create_contact(email="attendee@example.com", tags=["webinar-2025"])

    with after_check(sandbox, "search-contacts-advanced", crm_user) as box:
        result = resume(sensor, deferred)
    assert result["contact_ids"] == [box["result"]["id"]]


def test_a_trigger_timeout_fails_the_sensor_or_skips_it_with_soft_fail(sandbox, ghl_conn) -> None:
    for soft_fail, expected in ((False, AirflowSensorTimeout), (True, Exception)):
        sensor = GHLContactsChangedSensor(
            task_id="nothing", deferrable=True, tags=["no-such-tag"], poke_interval=0.05, timeout=1.0, soft_fail=soft_fail
        )
        deferred = defer(sensor)
        payload = run_trigger(deferred.trigger)
        assert payload["status"] == "timeout" and payload["checks"] >= 2
        with pytest.raises(expected) as err:
            sensor.execute_complete({}, payload)
        if soft_fail:
            assert type(err.value).__name__ == "AirflowSkipException"


def test_bad_sensor_inputs_fail_before_any_request(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match=r"'since'.*'yesterday-ish'.*ISO 8601"):
        poke_until_done(GHLContactsChangedSensor(task_id="s", since="yesterday-ish", timeout=1))
    with pytest.raises(GHLInputError, match=r"parameter 'filters\[0\]'"):
        poke_until_done(GHLContactsChangedSensor(task_id="s", filters=[{"field": "tags", "operator": "like"}], timeout=1))
    with pytest.raises(ValueError, match="parameter 'change'"):
        GHLContactsChangedSensor(task_id="s", change="deleted")
    assert sandbox.admin.counters()["total"] == 0


def test_the_trigger_reads_the_location_the_hook_would_read(sandbox, ghl_conn) -> None:
    """A templated ``location_id`` that renders to "None" or pads spaces means the same in the
    triggerer as in poke mode (the connection's location, or the stripped id)."""
    for rendered, expected in (("None", None), ("", None), (f" {sandbox.location_id} ", sandbox.location_id)):
        sensor = GHLContactsChangedSensor(
            task_id="where", deferrable=True, location_id=rendered, poke_interval=1, timeout=SAFETY_TIMEOUT_S
        )
        assert defer(sensor).trigger.serialize()[1]["location_id"] == expected


def test_a_zero_poke_interval_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"task_id='hot'\): parameter 'poke_interval' must be a positive number"):
        GHLContactsChangedSensor(task_id="hot", tags=["hot-lead"], poke_interval=0)
    assert GHLContactsChangedSensor(task_id="ok", poke_interval=timedelta(seconds=2)).poke_interval == 2.0


def test_a_follow_up_run_continues_exactly_after_a_batch_cut_off_in_one_millisecond(sandbox, ghl_conn, monkeypatch) -> None:
    from ghl_sandbox import store as sandbox_store

    ids = sorted(c["id"] for c in sandbox.admin.dump()["contacts"][:3])  # the search breaks ties by id
    frozen = sandbox_store.now_ms() + 5_000
    monkeypatch.setattr(sandbox_store, "now_ms", lambda: frozen)  # a bulk update: one millisecond for all
    since = datetime.now(timezone.utc).isoformat()
    for cid in ids:
        sandbox.admin.update_contact(cid, city="Lagos")
    first = poke_until_done(
        GHLContactsChangedSensor(task_id="batch", since=since, max_ids=2, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    )
    assert first["contact_ids"] == ids[:2] and first["truncated"] is True and first["watermark_ids"] == ids[:2]
    # The next run passes the XCom's watermark and watermark_ids (templated), here deferrable.
    follow_up = GHLContactsChangedSensor(
        task_id="next_batch",
        deferrable=True,
        since="{{ params.prev['watermark'] }}",
        seen_ids="{{ params.prev['watermark_ids'] }}",
        max_ids=2,
        poke_interval=0.1,
        timeout=SAFETY_TIMEOUT_S,
    )
    # The rest is already there: the deferrable sensor's first check (in the worker) returns it at once.
    second = poke_until_done(follow_up, params={"prev": first})
    assert second["contact_ids"] == [ids[2]] and second["truncated"] is False
    assert second["watermark"] == first["watermark"] and second["watermark_ids"] == ids
    # Nothing after that: the sensor defers, and its trigger carries the exact continuation point.
    last = GHLContactsChangedSensor(
        task_id="after", deferrable=True, since=second["watermark"], seen_ids=second["watermark_ids"], timeout=SAFETY_TIMEOUT_S
    )
    assert defer(last).trigger.serialize()[1]["condition"]["seen_ids"] == ids
