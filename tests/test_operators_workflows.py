"""An onboarding DAG enrols a new customer in a workflow at a given start time."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow_provider_contacts.operators.workflows import (
    GHLAddContactToWorkflowOperator,
    GHLRemoveContactFromWorkflowOperator,
)
from airflow_provider_contacts.params import GHLInputError


def test_a_contact_is_enrolled_in_and_removed_from_a_workflow(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    start = datetime(2031, 6, 23, 3, 30, tzinfo=timezone.utc)
    added = run_operator(
        GHLAddContactToWorkflowOperator(
            task_id="enrol", contact_id=contact["id"], workflow_id="{{ params.workflow }}", event_start_time=start
        ),
        params={"workflow": "onboarding-wf"},
    )
    assert added == {"contact_id": contact["id"], "workflow_id": "onboarding-wf", "succeeded": True}
    removed = run_operator(GHLRemoveContactFromWorkflowOperator(task_id="remove", contact_id=contact["id"], workflow_id="onboarding-wf"))
    assert removed["succeeded"] is True
    assert calls(sandbox, "add-contact-to-workflow") == calls(sandbox, "delete-contact-from-workflow") == 1


def test_a_bad_event_start_time_names_the_parameter(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match=r"parameter 'event_start_time'.*eventStartTime"):
        run_operator(
            GHLAddContactToWorkflowOperator(task_id="enrol", contact_id="abc", workflow_id="wf", event_start_time="tomorrow")
        )
    assert sandbox.admin.counters()["total"] == 0
