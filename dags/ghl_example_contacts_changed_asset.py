"""Event-driven: run whenever contacts change in a HighLevel location.

The asset ``ghl://<location>/contacts`` is watched by
:class:`~airflow_provider_contacts.triggers.events.GHLContactsChangedEventTrigger` in the
triggerer: each poll that finds contacts updated after the watermark emits an asset event, which
schedules this DAG. The run reads the changed contact ids from the triggering event and fetches
each contact (dynamic task mapping), at most ``MAX_PER_RUN`` of them.

The location comes from the ``GHL_EXAMPLE_LOCATION_ID`` environment variable of the DAG
processor; without it the connection's ``location_id`` is watched and the asset is
``ghl://default/contacts``. Connection: ``ghl_default``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow_provider_contacts.operators.contacts import GHLGetContactOperator
from airflow_provider_contacts.triggers.events import GHLContactsChangedEventTrigger

LOCATION_ID = os.environ.get("GHL_EXAMPLE_LOCATION_ID") or None
MAX_PER_RUN = 50

contacts_changed = Asset(
    f"ghl://{LOCATION_ID or 'default'}/contacts",
    watchers=[
        AssetWatcher(
            name="ghl_contacts_changed",
            trigger=GHLContactsChangedEventTrigger(location_id=LOCATION_ID, poll_interval=30, max_ids=MAX_PER_RUN),
        )
    ],
)

with DAG(
    dag_id="ghl_example_contacts_changed_asset",
    description="Scheduled by an AssetWatcher on 'contacts changed in the location'",
    schedule=[contacts_changed],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["ghl", "example", "event-driven"],
) as dag:

    @task
    def changed_ids(**context) -> list[str]:
        """Contact ids of the asset events that triggered this run (none for a manual run)."""
        ids: list[str] = []
        for events in context["triggering_asset_events"].values():
            for event in events:
                extra = event.extra or {}
                payload = extra.get("payload", extra)
                if payload.get("status") == "error":
                    raise RuntimeError(f"the contacts watcher reports an error: {payload.get('message')}")
                ids.extend(i for i in payload.get("contact_ids", []) if i not in ids)
        return ids[:MAX_PER_RUN]

    GHLGetContactOperator.partial(task_id="fetch_changed_contact").expand(contact_id=changed_ids())
