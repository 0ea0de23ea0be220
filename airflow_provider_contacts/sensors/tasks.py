"""Sensors on tasks: created, changed (completed, rescheduled, edited, deleted) - for one contact or
the whole location -, one task completed, tasks due within a window.

All give the same answer in poke, reschedule and deferrable modes (see
:mod:`airflow_provider_contacts.sensors.base`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_contacts.params import coerce_list, duration_seconds
from airflow_provider_contacts.sensors.base import GHLBaseSensor
from airflow_provider_contacts.sensors.conditions import (
    CHANGE_KINDS,
    GHLTaskChangedCondition,
    GHLTaskCompletedCondition,
    GHLTaskCreatedCondition,
    GHLTaskDueCondition,
)


class GHLTaskCreatedSensor(GHLBaseSensor):
    """Wait until a task is created for a contact, or anywhere in the location.

    HighLevel's task answers carry no creation date (ghl-live-notes.md), so "new" means "not among
    the tasks known before": ``known_task_ids`` when given (e.g. from an upstream
    ``GHLListTasksOperator``), else the tasks the sensor sees at its first check - the baseline,
    kept between pokes in every mode (memory in poke mode, the task state store in reschedule
    mode, the trigger's kwargs in deferrable mode). Tasks whose ``dateAdded``, if the API sends
    one, is after ``since`` count as new even at the first check.

    :param contact_id: the contact; ``None`` (default) watches every task of the location through
        the location task search (``POST /locations/{locationId}/tasks/search``, scope
        ``locations/tasks.readonly``; without that scope the hook reads each contact's tasks, one
        request per contact). Templated.
    :param known_task_ids: ids of tasks that are not new (list, JSON list or comma-separated).
        Templated.
    :param since: ISO 8601 date-time; default: when the sensor starts waiting. Templated.
    :param title: only tasks whose title contains this text (case-insensitive). Templated.

    XCom: ``{"contact_id", "task_ids": [...], "tasks": [<key fields>], "count"}`` (``contact_id``
    ``None`` location-wide). Same answer in poke, reschedule and deferrable modes. A contact that
    does not exist (404, or the live API's 400 ``Contact not found``) fails the task at once.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "known_task_ids", "since", "title")
    baseline_param = "known_task_ids"

    def __init__(
        self,
        *,
        contact_id: str | None = None,
        known_task_ids: list[str] | str | None = None,
        since: str | datetime | None = None,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.known_task_ids = known_task_ids
        self.since = since
        self.title = title

    def build_condition(self, started_at: datetime) -> GHLTaskCreatedCondition:
        known = None
        if self.known_task_ids is not None and self.known_task_ids != "None":
            known = [str(k) for k in coerce_list(self._owner, "known_task_ids", self.known_task_ids)]
        return GHLTaskCreatedCondition(
            contact_id=self._id("contact_id", optional=True),
            since=self._since(self.since, started_at),
            known_ids=known,
            title=self.title or None,
        )


class GHLTaskChangedSensor(GHLBaseSensor):
    """Wait until a task of a contact - or of the whole location - is created, changed or deleted.

    Tasks carry no update time (ghl-live-notes.md), so a change is found by content: at the first
    check the sensor takes a baseline (a fingerprint of the compared fields of every task), and a
    task whose compared fields differ from it has changed. The baseline is kept between pokes in
    every mode (memory in poke mode, the task state store in reschedule mode, the trigger's kwargs
    in deferrable mode); location-wide it costs about 70 bytes per task.

    :param contact_id: the contact; ``None`` (default): every task of the location (location task
        search; per-contact reads without ``locations/tasks.readonly``). Templated.
    :param compare: the fields whose change counts (default all of ``title``, ``body``,
        ``dueDate``, ``completed``, ``assignedTo``; e.g. ``["completed"]`` for completions or
        reopenings only, ``["dueDate"]`` for rescheduled tasks).
    :param changes: which kinds count (default all): ``"created"``, ``"updated"``, ``"deleted"``.
    :param max_items: at most this many changes in the XCom value (``count`` is the total).

    XCom: ``{"contact_id", "changes": [{"id", "change": "created"|"updated"|"deleted", "fields":
    [...]}], "task_ids": [...], "tasks": [<key fields of created/updated tasks>], "count",
    "truncated"}``; ``fields`` names the compared fields that changed. Same answer in poke,
    reschedule and deferrable modes. A contact that does not exist fails the task at once.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id")

    def __init__(
        self,
        *,
        contact_id: str | None = None,
        compare: Sequence[str] | None = None,
        changes: Sequence[str] = CHANGE_KINDS,
        max_items: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.compare = list(compare) if compare else None
        self.changes = list(changes)
        self.max_items = max_items
        try:  # refuse bad values at parse time
            GHLTaskChangedCondition(compare=self.compare, changes=self.changes, max_items=max_items)
        except ValueError as exc:
            raise ValueError(f"{self._owner}: {exc}") from None

    def build_condition(self, started_at: datetime) -> GHLTaskChangedCondition:
        return GHLTaskChangedCondition(
            contact_id=self._id("contact_id", optional=True),
            compare=self.compare,
            changes=self.changes,
            max_items=self.max_items,
        )


class GHLTaskCompletedSensor(GHLBaseSensor):
    """Wait until a task of a contact is completed.

    :param contact_id: the contact. Templated.
    :param ghl_task_id: the HighLevel task id (``task_id`` is the Airflow task's id). Templated.

    XCom: ``{"contact_id", "task_id", "task": <key fields>}``. A task or contact that does not
    exist - deleted, or never there (404, or the live API's 400 ``... not found``) - fails the task
    at once, with the same error in poke, reschedule and deferrable modes; to wait for a task's
    completion *or* deletion use :class:`GHLTaskChangedSensor`.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "ghl_task_id")

    def __init__(self, *, contact_id: str, ghl_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.ghl_task_id = ghl_task_id

    def build_condition(self, started_at: datetime) -> GHLTaskCompletedCondition:
        return GHLTaskCompletedCondition(
            contact_id=self._id("contact_id"), task_id=self._id("ghl_task_id")  # type: ignore[arg-type]
        )


class GHLTaskDueSensor(GHLBaseSensor):
    """Wait until an open task is due within a window from now (e.g. "a task is due in the next hour").

    :param contact_id: the contact, or ``None`` for every task of the location (location task
        search). Templated.
    :param within: window length (timedelta or seconds; default one day).
    :param include_overdue: also match open tasks already past their due date.
    :param title: only tasks whose title contains this text. Templated.

    XCom: ``{"task_ids": [...], "tasks": [<key fields>], "count", "window_end"}`` (soonest first).
    Works in poke, reschedule and deferrable modes.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "title")

    def __init__(
        self,
        *,
        contact_id: str | None = None,
        within: timedelta | float = timedelta(days=1),
        include_overdue: bool = False,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.within = within
        self.include_overdue = include_overdue
        self.title = title

    def build_condition(self, started_at: datetime) -> GHLTaskDueCondition:
        return GHLTaskDueCondition(
            contact_id=self._id("contact_id", optional=True),
            within_s=duration_seconds(self._owner, "within", self.within),
            include_overdue=bool(self.include_overdue),
            title=self.title or None,
        )


__all__ = ["GHLTaskChangedSensor", "GHLTaskCompletedSensor", "GHLTaskCreatedSensor", "GHLTaskDueSensor"]
