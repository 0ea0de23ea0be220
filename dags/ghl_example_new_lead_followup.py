"""New lead tagged X -> follow-up task and note, then mark the lead as handled.

A deferrable sensor waits (in the triggerer, holding no worker slot) until contacts carrying the
tag ``params.tag`` are created or updated after the run started (or after ``params.since``). Each
new lead then gets a follow-up task due the next day and a note; finally the leads are tagged
``followed-up`` and the trigger tag is removed in bulk, so the next run does not pick them again.

Trigger it, then tag a contact ``new-lead`` in HighLevel (or with the sandbox admin client).
Connection: ``ghl_default``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task
from airflow_provider_contacts.operators.notes import GHLCreateNoteOperator
from airflow_provider_contacts.operators.tags import GHLBulkUpdateTagsOperator
from airflow_provider_contacts.operators.tasks import GHLCreateTaskOperator
from airflow_provider_contacts.sensors.contacts import GHLContactsChangedSensor

with DAG(
    dag_id="ghl_example_new_lead_followup",
    description="Wait (deferrable) for contacts tagged as new leads; create a follow-up task and note for each",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "tag": Param("new-lead", type="string", description="Tag that marks a new lead (HighLevel lower-cases tags)"),
        "since": Param(None, type=["null", "string"], description="Watermark (ISO 8601); default: when the run started"),
        "max_leads": Param(50, type="integer", minimum=1, description="Leads handled per run"),
    },
    tags=["ghl", "example", "deferrable"],
) as dag:
    wait_for_new_leads = GHLContactsChangedSensor(
        task_id="wait_for_new_leads",
        tags=["{{ params.tag }}"],
        since="{{ params.since or dag_run.start_date }}",
        max_ids=500,
        deferrable=True,
        poke_interval=5,
        timeout=timedelta(hours=6),
    )

    @task
    def new_leads(changed: dict, max_leads: int | str) -> list[str]:
        """The ids of the leads to handle in this run (the oldest changes first)."""
        return list(changed["contact_ids"])[: int(max_leads)]

    lead_ids = new_leads(wait_for_new_leads.output, "{{ params.max_leads }}")

    follow_up_task = GHLCreateTaskOperator.partial(
        task_id="create_follow_up_task",
        body={
            "title": "Call the new lead",
            "body": "Tagged '{{ params.tag }}'; picked up by {{ dag.dag_id }}",
            "dueDate": "{{ (dag_run.start_date + macros.timedelta(days=1)).isoformat() }}",
            "completed": False,
        },
    ).expand(contact_id=lead_ids)

    follow_up_note = GHLCreateNoteOperator.partial(
        task_id="add_note",
        body={"title": "New lead", "body": "Follow-up call scheduled for tomorrow by {{ dag.dag_id }} ({{ run_id }})."},
    ).expand(contact_id=lead_ids)

    mark_followed_up = GHLBulkUpdateTagsOperator(
        task_id="mark_followed_up", action="add", contact_ids=lead_ids, tags=["followed-up"], fail_on_errors=True
    )
    remove_lead_tag = GHLBulkUpdateTagsOperator(
        task_id="remove_lead_tag", action="remove", contact_ids=lead_ids, tags=["{{ params.tag }}"], fail_on_errors=True
    )

    [follow_up_task, follow_up_note] >> mark_followed_up >> remove_lead_tag
