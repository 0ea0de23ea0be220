"""Operators for the tasks of a contact: list, get, create, update, complete, delete.

Each operator wraps one contacts.json operation (its ``operation_id``) and one hook call. Bodies
are validated with the hook's request models (``CreateTask``, ``UpdateTask``) before any request.
Dates (``dueDate``) may be ISO 8601 strings or datetimes; naive values are taken as UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.models import CreateTask, UpdateTask
from airflow_provider_contacts.operators.base import (
    GHLBodyMixin,
    GHLContactOperator,
    GHLContactRecordsOperator,
    GHLDeleteMixin,
)
from airflow_provider_contacts.params import input_error

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: Key fields of a task in XCom results and output tables.
TASK_KEY_FIELDS: tuple[str, ...] = ("id", "contactId", "title", "dueDate", "completed", "assignedTo")


class _OneTaskOperator(GHLContactOperator):
    """Base of operators on one existing task: adds ``ghl_task_id`` (templated).

    The parameter is ``ghl_task_id`` because ``task_id`` is the Airflow task's own id.
    """

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "ghl_task_id")
    id_params = ("contact_id", "ghl_task_id")
    result_fields = TASK_KEY_FIELDS

    def __init__(self, *, ghl_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ghl_task_id = ghl_task_id


class GHLListTasksOperator(GHLContactRecordsOperator):
    """List every task of a contact (``GET /contacts/{contactId}/tasks``).

    Output: XCom (at most ``max_xcom_records``), ``output_table`` or ``output_path``.
    Reading only: idempotent.
    """

    operation_id = "get-all-tasks"
    hook_method = "list_tasks"
    key_fields = TASK_KEY_FIELDS

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        return hook.list_tasks(self._id("contact_id"))


class GHLGetTaskOperator(_OneTaskOperator):
    """Get one task of a contact (``GET /contacts/{contactId}/tasks/{taskId}``).

    :param ghl_task_id: the HighLevel task id. Templated.

    XCom: the task's key fields. Reading only: idempotent.
    """

    operation_id = "get-task"
    hook_method = "get_task"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.get_task(self._id("contact_id"), self._id("ghl_task_id"))


class GHLCreateTaskOperator(GHLBodyMixin, GHLContactOperator):
    """Create a task for a contact (``POST /contacts/{contactId}/tasks``).

    :param body: ``{"title": ..., "dueDate": ..., "body": ..., "assignedTo": ..., "completed": false}``
        (``title`` and ``dueDate`` required). Templated.

    XCom: the new task's key fields. **Not idempotent**: a retry or re-run creates another task.
    """

    operation_id = "create-task"
    hook_method = "create_task"
    body_model = CreateTask
    result_fields = TASK_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.create_task(self._id("contact_id"), self.validated_body())


class GHLUpdateTaskOperator(GHLBodyMixin, _OneTaskOperator):
    """Update a task (``PUT /contacts/{contactId}/tasks/{taskId}``).

    :param ghl_task_id: the HighLevel task id. Templated.
    :param body: only the fields to change. Templated.

    XCom: the task's key fields. Idempotent.
    """

    operation_id = "update-task"
    hook_method = "update_task"
    body_model = UpdateTask
    template_fields: Sequence[str] = (*_OneTaskOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.update_task(self._id("contact_id"), self._id("ghl_task_id"), self.validated_body())


class GHLCompleteTaskOperator(_OneTaskOperator):
    """Mark a task completed, or not completed (``PUT /contacts/{contactId}/tasks/{taskId}/completed``).

    :param ghl_task_id: the HighLevel task id. Templated.
    :param completed: True to complete (default), False to reopen.

    XCom: the task's key fields. Idempotent.
    """

    operation_id = "update-task-completed"
    hook_method = "complete_task"

    def __init__(self, *, completed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.completed = completed

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.completed, bool):
            raise input_error(self._owner, "completed", f"must be True or False, got {self.completed!r}", self.operation_id)

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.complete_task(self._id("contact_id"), self._id("ghl_task_id"), completed=self.completed)


class GHLDeleteTaskOperator(GHLDeleteMixin, _OneTaskOperator):
    """Delete a task (``DELETE /contacts/{contactId}/tasks/{taskId}``).

    :param ghl_task_id: the HighLevel task id. Templated.
    :param missing_ok: treat a task (or contact) that does not exist - 404, or the live API's 400
        ``... not found`` - as deleted (default True: idempotent); with False the task fails at once.

    XCom: ``{"contact_id", "task_id", "deleted": bool, "missing": bool}`` (``missing``: it was
    already gone).
    """

    operation_id = "delete-task"
    hook_method = "delete_task"

    def call(self, hook: GHLContactsHook) -> bool:
        return hook.delete_task(self._id("contact_id"), self._id("ghl_task_id"))

    def shape(self, result: Any) -> dict[str, Any]:
        return {"contact_id": self._id("contact_id"), "task_id": self._id("ghl_task_id"), "deleted": bool(result)}


__all__ = [
    "TASK_KEY_FIELDS",
    "GHLCompleteTaskOperator",
    "GHLCreateTaskOperator",
    "GHLDeleteTaskOperator",
    "GHLGetTaskOperator",
    "GHLListTasksOperator",
    "GHLUpdateTaskOperator",
]
