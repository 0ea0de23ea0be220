"""Reconcile HighLevel into a SQL target when webhook events arrive, with the hourly run as the
backstop: ``ghl_contacts_reconcile`` built with ``event_driven=True``.

The receiver (mounted on the API server at ``/ghl-webhooks``, or ``python -m
airflow_provider_contacts.webhooks``) stores HighLevel's signed events in the target's
``ghl_webhook_events`` table; the asset watcher (``GHLWebhookEventTrigger`` in the triggerer) sees
them within ``poll_interval`` seconds and schedules a run, which applies the pending events first
(requests follow the number of changes) and runs the deletion scan and the task/note sweep only
when they are due. Use this DAG *instead of* ``ghl_contacts_reconcile`` for a target (both on one
target would poll twice). docs/webhooks-sync.md.

Environment of the dag-processor (optional): ``GHL_EVENTS_TARGET_CONN_ID`` (default
``ghl_target``), ``GHL_EVENTS_SCHEDULE=none`` for event-triggered runs only (no hourly backstop:
tests), ``GHL_EVENTS_POLL_INTERVAL`` seconds (default 5).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow_provider_contacts.sync.dag import build_reconcile_dag
from airflow_provider_contacts.triggers.webhook_events import webhook_events_asset

TARGET_CONN_ID = os.environ.get("GHL_EVENTS_TARGET_CONN_ID") or "ghl_target"
SCHEDULE = None if os.environ.get("GHL_EVENTS_SCHEDULE", "").strip().lower() == "none" else timedelta(hours=1)

dag = build_reconcile_dag(
    "ghl_contacts_events",
    schedule=SCHEDULE,
    run_interval=timedelta(hours=1),
    mapping=Path(__file__).with_name("ghl_contacts_mapping.yaml"),
    params={"target_conn_id": TARGET_CONN_ID},
    event_driven=True,
    events_asset=webhook_events_asset(
        TARGET_CONN_ID, poll_interval=float(os.environ.get("GHL_EVENTS_POLL_INTERVAL") or 5)
    ),
    tags=["highlevel", "reconcile", "webhooks"],
    description="Reconcile HighLevel into a SQL target when webhook events are pending (hourly backstop)",
)
