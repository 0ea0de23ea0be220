"""Operators for workflows: add a contact to a workflow, remove it from one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.models import WorkflowBody
from airflow_provider_contacts.operators.base import GHLContactOperator, GHLDeleteMixin
from airflow_provider_contacts.results import succeeded

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook


class _WorkflowOperator(GHLContactOperator):
    """Base of the workflow operators: ``workflow_id`` and optional ``event_start_time`` (templated).

    :param workflow_id: the workflow. Templated.
    :param event_start_time: when the workflow's event starts for this contact (ISO 8601 string
        or datetime; naive values are UTC). Templated.
    """

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "workflow_id", "event_start_time")
    id_params = ("contact_id", "workflow_id")

    def __init__(self, *, workflow_id: str, event_start_time: str | datetime | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_id = workflow_id
        self.event_start_time = event_start_time

    def _event_start(self) -> datetime | None:
        body = {"eventStartTime": self.event_start_time} if self.event_start_time else {}
        return self._body(WorkflowBody, "event_start_time", body).eventStartTime

    def validate(self) -> None:
        super().validate()
        self._event_start()

    def shape(self, result: Any) -> dict[str, Any]:
        return {"contact_id": self._id("contact_id"), "workflow_id": self._id("workflow_id"), "succeeded": succeeded(result)}


class GHLAddContactToWorkflowOperator(_WorkflowOperator):
    """Add a contact to a workflow (``POST /contacts/{contactId}/workflow/{workflowId}``).

    **Not idempotent**: each call enrols the contact again and the workflow's actions run again.
    """

    operation_id = "add-contact-to-workflow"
    hook_method = "add_contact_to_workflow"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.add_contact_to_workflow(
            self._id("contact_id"), self._id("workflow_id"), event_start_time=self._event_start()
        )


class GHLRemoveContactFromWorkflowOperator(GHLDeleteMixin, _WorkflowOperator):
    """Remove a contact from a workflow (``DELETE /contacts/{contactId}/workflow/{workflowId}``).

    :param missing_ok: a contact (or workflow) that does not exist - 404, or the live API's 400
        ``... not found`` - counts as removed (default True); with False the task fails at once.

    XCom: ``{"contact_id", "workflow_id", "succeeded": bool, "missing": bool}``. Idempotent.
    """

    operation_id = "delete-contact-from-workflow"
    hook_method = "remove_contact_from_workflow"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.remove_contact_from_workflow(
            self._id("contact_id"), self._id("workflow_id"), event_start_time=self._event_start()
        )


__all__ = ["GHLAddContactToWorkflowOperator", "GHLRemoveContactFromWorkflowOperator"]
