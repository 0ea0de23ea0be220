"""Before a demo: read the contact's appointments, plan and track a prep task, keep notes, and
move the contact through a campaign and an onboarding workflow.

Shows the task, note, appointment, campaign and workflow operators:

1. pick the contact (``params.contact_id``, or the oldest contact of the location);
2. list its appointments and its tasks/notes (XCom, capped by ``max_xcom_records``);
3. create a prep task, reschedule it, read it back, complete it (then a poke-mode sensor confirms);
4. write a note, pin it, read it back;
5. enrol the contact in a campaign and a workflow, then take it out again;
6. clean up the task and the note (deletes are idempotent with ``missing_ok``).

Connection: ``ghl_default``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, chain
from airflow_provider_contacts.operators.appointments import GHLGetAppointmentsOperator
from airflow_provider_contacts.operators.campaigns import (
    GHLAddContactToCampaignOperator,
    GHLRemoveContactFromAllCampaignsOperator,
    GHLRemoveContactFromCampaignOperator,
)
from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator
from airflow_provider_contacts.operators.notes import (
    GHLCreateNoteOperator,
    GHLDeleteNoteOperator,
    GHLGetNoteOperator,
    GHLListNotesOperator,
    GHLUpdateNoteOperator,
)
from airflow_provider_contacts.operators.tasks import (
    GHLCompleteTaskOperator,
    GHLCreateTaskOperator,
    GHLDeleteTaskOperator,
    GHLGetTaskOperator,
    GHLListTasksOperator,
    GHLUpdateTaskOperator,
)
from airflow_provider_contacts.operators.workflows import (
    GHLAddContactToWorkflowOperator,
    GHLRemoveContactFromWorkflowOperator,
)
from airflow_provider_contacts.sensors.tasks import GHLTaskCompletedSensor

CONTACT = "{{ params.contact_id or ti.xcom_pull(task_ids='pick_contact')['records'][0]['id'] }}"
TASK = "{{ ti.xcom_pull(task_ids='create_prep_task')['id'] }}"
NOTE = "{{ ti.xcom_pull(task_ids='write_note')['id'] }}"

with DAG(
    dag_id="ghl_example_task_lifecycle",
    description="Appointments, tasks, notes, campaigns and workflows of one contact",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "contact_id": Param(None, type=["null", "string"], description="Contact to work on (default: the oldest one)"),
        "campaign_id": Param("demo-nurture", type="string"),
        "workflow_id": Param("onboarding", type="string"),
    },
    tags=["ghl", "example"],
) as dag:
    pick_contact = GHLSearchContactsOperator(
        task_id="pick_contact", sort=[{"field": "dateAdded", "direction": "asc"}], page_limit=1, max_records=1
    )
    appointments = GHLGetAppointmentsOperator(task_id="appointments", contact_id=CONTACT)
    tasks_before = GHLListTasksOperator(task_id="tasks_before", contact_id=CONTACT, max_xcom_records=500)
    notes_before = GHLListNotesOperator(task_id="notes_before", contact_id=CONTACT, max_xcom_records=500)

    create_prep_task = GHLCreateTaskOperator(
        task_id="create_prep_task",
        contact_id=CONTACT,
        body={
            "title": "Prepare the demo",
            "body": "{{ ti.xcom_pull(task_ids='appointments')['count'] }} appointment(s) on file",
            "dueDate": "{{ (dag_run.start_date + macros.timedelta(days=2)).isoformat() }}",
            "completed": False,
        },
    )
    reschedule_task = GHLUpdateTaskOperator(
        task_id="reschedule_task",
        contact_id=CONTACT,
        ghl_task_id=TASK,
        body={"dueDate": "{{ (dag_run.start_date + macros.timedelta(days=3)).isoformat() }}"},
    )
    read_task = GHLGetTaskOperator(task_id="read_task", contact_id=CONTACT, ghl_task_id=TASK)
    complete_task = GHLCompleteTaskOperator(task_id="complete_task", contact_id=CONTACT, ghl_task_id=TASK)
    confirm_completed = GHLTaskCompletedSensor(
        task_id="confirm_completed", contact_id=CONTACT, ghl_task_id=TASK, mode="poke", poke_interval=5, timeout=300
    )

    write_note = GHLCreateNoteOperator(
        task_id="write_note", contact_id=CONTACT, body={"title": "Demo prep", "body": "Agenda sent; decision maker attends."}
    )
    pin_note = GHLUpdateNoteOperator(task_id="pin_note", contact_id=CONTACT, note_id=NOTE, body={"pinned": True, "color": "#FFAA00"})
    read_note = GHLGetNoteOperator(task_id="read_note", contact_id=CONTACT, note_id=NOTE)

    join_campaign = GHLAddContactToCampaignOperator(task_id="join_campaign", contact_id=CONTACT, campaign_id="{{ params.campaign_id }}")
    leave_campaign = GHLRemoveContactFromCampaignOperator(
        task_id="leave_campaign", contact_id=CONTACT, campaign_id="{{ params.campaign_id }}"
    )
    leave_all_campaigns = GHLRemoveContactFromAllCampaignsOperator(task_id="leave_all_campaigns", contact_id=CONTACT)
    start_workflow = GHLAddContactToWorkflowOperator(
        task_id="start_workflow",
        contact_id=CONTACT,
        workflow_id="{{ params.workflow_id }}",
        event_start_time="{{ (dag_run.start_date + macros.timedelta(days=3)).isoformat() }}",
    )
    stop_workflow = GHLRemoveContactFromWorkflowOperator(task_id="stop_workflow", contact_id=CONTACT, workflow_id="{{ params.workflow_id }}")

    delete_task = GHLDeleteTaskOperator(task_id="delete_task", contact_id=CONTACT, ghl_task_id=TASK)
    delete_note = GHLDeleteNoteOperator(task_id="delete_note", contact_id=CONTACT, note_id=NOTE)

    chain(pick_contact, [appointments, tasks_before, notes_before], create_prep_task)
    chain(create_prep_task, reschedule_task, read_task, complete_task, confirm_completed, delete_task)
    chain(create_prep_task, write_note, pin_note, read_note, delete_note)
    chain(pick_contact, join_campaign, leave_campaign, leave_all_campaigns, start_workflow, stop_workflow)
