"""Sensors on tasks: created for a contact, completed, due within a window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_contacts.operators.base import coerce_list, input_error
from airflow_provider_contacts.sensors.base import GHLBaseSensor, _seconds
from airflow_provider_contacts.triggers.conditions import Condition, TaskCompleted, TaskCreated, TaskDue


class GHLTaskCreatedSensor(GHLBaseSensor):
    """Wait until a task is created for a contact.

    HighLevel's task answers carry no creation date, so "new" means "not among the tasks known
    before": ``known_task_ids`` when given (e.g. from an upstream ``GHLListTasksOperator``), else
    the tasks the sensor sees at its first check (tasks whose ``dateAdded``, if the API sends one,
    is after ``since`` count as new even then). In ``mode="reschedule"`` nothing survives between
    pokes, so there ``known_task_ids`` is required unless the API dates its tasks.

    :param contact_id: the contact. Templated.
    :param known_task_ids: ids of tasks that are not new (list, JSON list or comma-separated).
        Templated.
    :param since: ISO 8601 date-time; default: when the sensor starts waiting. Templated.
    :param title: only tasks whose title contains this text (case-insensitive). Templated.

    XCom: ``{"contact_id", "task_ids": [...], "tasks": [<key fields>], "count"}``.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "known_task_ids", "since", "title")

    def __init__(
        self,
        *,
        contact_id: str,
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

    def build_condition(self, started_at: datetime) -> Condition:
        known = None
        if self.known_task_ids is not None and self.known_task_ids != "None":
            known = [str(k) for k in coerce_list(self._owner, "known_task_ids", self.known_task_ids)]
        return TaskCreated(
            contact_id=self._id("contact_id"),  # type: ignore[arg-type]
            since=self._since(self.since, started_at),
            known_ids=known,
            title=self.title or None,
        )

    def before_poke(self, condition: Condition, records: list[dict[str, Any]]) -> None:
        if (
            self.reschedule
            and isinstance(condition, TaskCreated)
            and condition.needs_baseline
            and condition.undated(records)
        ):
            raise input_error(
                self._owner,
                "known_task_ids",
                "mode='reschedule' keeps nothing between pokes and these tasks carry no dateAdded, so a new "
                "task cannot be told from an old one; pass known_task_ids (e.g. the ids listed by an "
                "upstream GHLListTasksOperator), or use mode='poke' or deferrable=True",
            )


class GHLTaskCompletedSensor(GHLBaseSensor):
    """Wait until a task of a contact is completed.

    :param contact_id: the contact. Templated.
    :param ghl_task_id: the HighLevel task id (``task_id`` is the Airflow task's id). Templated.

    XCom: ``{"contact_id", "task_id", "task": <key fields>}``. A deleted task fails the sensor
    (404). Works in poke, reschedule and deferrable modes.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "ghl_task_id")

    def __init__(self, *, contact_id: str, ghl_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.ghl_task_id = ghl_task_id

    def build_condition(self, started_at: datetime) -> Condition:
        return TaskCompleted(contact_id=self._id("contact_id"), task_id=self._id("ghl_task_id"))  # type: ignore[arg-type]


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

    def build_condition(self, started_at: datetime) -> Condition:
        return TaskDue(
            contact_id=self._id("contact_id", optional=True),
            within_s=_seconds(self.within, self._owner, "within"),
            include_overdue=bool(self.include_overdue),
            title=self.title or None,
        )


__all__ = ["GHLTaskCompletedSensor", "GHLTaskCreatedSensor", "GHLTaskDueSensor"]
