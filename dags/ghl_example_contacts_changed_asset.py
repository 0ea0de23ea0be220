"""Event-driven: run whenever contacts change in a HighLevel location.

The asset ``ghl://<location>/contacts`` is watched by
:class:`~airflow_provider_contacts.triggers.events.GHLContactsChangedEventTrigger` in the
triggerer: each poll that finds contacts updated after its watermark emits an asset event
(``since``, ``watermark``, ``contact_ids``), which schedules this DAG. The run takes the window of
change from the triggering events and fetches the changed contacts with one paged search
(``dateUpdated`` after ``since``, up to ``watermark``), so a burst of changes costs a few requests,
not one per contact. A manual run (no event) has nothing to fetch and skips.

The location comes from the ``GHL_EXAMPLE_LOCATION_ID`` environment variable of the DAG
processor; without it the connection's ``location_id`` is watched and the asset is
``ghl://default/contacts``. Connection: ``ghl_default``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator
from airflow_provider_contacts.triggers.events import GHLContactsChangedEventTrigger

LOCATION_ID = os.environ.get("GHL_EXAMPLE_LOCATION_ID") or None

contacts_changed = Asset(
    f"ghl://{LOCATION_ID or 'default'}/contacts",
    watchers=[
        AssetWatcher(
            name="ghl_contacts_changed",
            trigger=GHLContactsChangedEventTrigger(location_id=LOCATION_ID, poll_interval=30, max_ids=500),
        )
    ],
)

with DAG(
    dag_id="ghl_example_contacts_changed_asset",
    description="Scheduled by an AssetWatcher on 'contacts changed in the location'",
    schedule=[contacts_changed],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ghl", "example", "event-driven"],
) as dag:

    @task
    def change_window(**context) -> dict[str, str]:
        """``{"since", "watermark"}`` covering every triggering event of this run."""
        windows = []
        for events in context["triggering_asset_events"].values():
            for event in events:
                payload = (event.extra or {}).get("payload", event.extra or {})
                if payload.get("status") == "error":
                    raise RuntimeError(f"the contacts watcher reports an error: {payload.get('message')}")
                if payload.get("since") and payload.get("watermark"):
                    windows.append((payload["since"], payload["watermark"]))
        if not windows:
            raise AirflowSkipException("no contact change in the triggering events (manual run?)")
        return {"since": min(w[0] for w in windows), "watermark": max(w[1] for w in windows)}

    window = change_window()
    fetch_changed = GHLSearchContactsOperator(
        task_id="fetch_changed_contacts",
        location_id=LOCATION_ID,
        filters=[
            {
                "field": "dateUpdated",
                "operator": "range",
                "value": {
                    "gt": "{{ ti.xcom_pull(task_ids='change_window')['since'] }}",
                    "lte": "{{ ti.xcom_pull(task_ids='change_window')['watermark'] }}",
                },
            }
        ],
        sort=[{"field": "dateUpdated", "direction": "asc"}],
        max_xcom_records=1000,
    )
    window >> fetch_changed
