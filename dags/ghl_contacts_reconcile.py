"""Reconcile HighLevel contacts, tasks and notes into a SQL target, every hour.

One mapped task per location (an agency's sub-accounts sync in parallel, each under its own rate
limiter), then one task that publishes the combined report and an asset event per table
(``ghl_contacts``, ``ghl_tasks``, ``ghl_notes``) so downstream DAGs can be scheduled on them.

Params (all optional):

- ``source_conn_id`` (``ghl_default``): HighLevel connection.
- ``target_conn_id`` (``ghl_target``): any common-sql connection; when ``ghl_target`` does not
  exist, the embedded SQLite file ``$AIRFLOW_HOME/ghl_contacts.sqlite`` is used.
- ``target_schema``: database schema for the tables (PostgreSQL etc.; empty: the default).
- ``location_ids``: locations to sync; empty: the source connection's ``location_id``.
- ``full_sweep`` (false): re-read every contact and every contact's tasks and notes.
- ``sweep_period_hours`` (168): every contact's tasks and notes are re-read within this period.
- ``max_requests_per_run`` (50000): request budget per location (caps the sweep).
- ``overlap_minutes`` (10), ``batch_size`` (200), ``hard_delete`` (false),
  ``max_delete_fraction`` (0.5).

Field mapping: ``ghl_contacts_mapping.yaml`` next to this file, validated when each task loads it
(a misspelt key or API field, or ``required: "false"``, fails the task at once with the fix); by
default every contact custom field of a location becomes a ``cf_...`` column, values that do not
convert are stored as NULL and counted per column in the report (never a dropped record), and a
mapped column NULL for every record of a run is a warning. Failure alerts:
``on_failure_callback`` posts to ``$GHL_RECONCILE_ALERT_WEBHOOK`` when set. See docs/reconcile.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task

from airflow_provider_contacts.sync.alerts import failure_alert
from airflow_provider_contacts.sync.report import merge_nested, merge_reports

log = logging.getLogger(__name__)
SCHEDULE_INTERVAL = timedelta(hours=1)
MAPPING_FILE = Path(__file__).with_name("ghl_contacts_mapping.yaml")
TABLE_ASSETS = {
    table: Asset(name=table, uri=f"ghl://reconcile/{table}", group="ghl")
    for table in ("ghl_contacts", "ghl_tasks", "ghl_notes")
}


@dag(
    dag_id="ghl_contacts_reconcile",
    schedule=SCHEDULE_INTERVAL,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["highlevel", "reconcile"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "on_failure_callback": failure_alert},
    params={
        "source_conn_id": Param("ghl_default", type="string", description="HighLevel connection id"),
        "target_conn_id": Param("ghl_target", type="string", description="SQL target connection id"),
        "target_schema": Param("", type="string", description="Schema of the target tables (empty: default)"),
        "location_ids": Param([], type="array", items={"type": "string"}, description="Locations (empty: the connection's)"),
        "full_sweep": Param(False, type="boolean", description="Re-read every contact's tasks and notes"),
        "sweep_period_hours": Param(168, type="number", minimum=1, description="Sweep covers all contacts within"),
        "max_requests_per_run": Param(50_000, type="integer", minimum=10, description="Request budget per location"),
        "overlap_minutes": Param(10, type="number", minimum=0, description="Incremental overlap window"),
        "batch_size": Param(200, type="integer", minimum=1, maximum=5000, description="Contacts per committed batch"),
        "hard_delete": Param(False, type="boolean", description="Delete rows instead of setting deleted_at"),
        "max_delete_fraction": Param(0.5, type="number", minimum=0, maximum=1, description="Deletion safety limit"),
    },
)
def ghl_contacts_reconcile() -> None:
    """Resolve locations -> reconcile each (mapped) -> publish the report and asset events."""

    @task
    def resolve_locations() -> list[str]:
        """The locations to sync: the ``location_ids`` param, else the connection's location."""
        params = get_current_context()["params"]
        if params["location_ids"]:
            return [str(loc) for loc in params["location_ids"]]
        from airflow_provider_contacts.hooks.contacts import ContactsHook

        location = ContactsHook(ghl_conn_id=params["source_conn_id"]).location_id
        if not location:
            raise ValueError(
                f"connection {params['source_conn_id']!r} has no extra 'location_id'; set it or pass the "
                "location_ids param"
            )
        return [str(location)]

    @task(max_active_tis_per_dagrun=4)
    def reconcile(location_id: str) -> dict[str, Any]:
        """Reconcile one location; returns its run report (a small dict) to XCom."""
        from airflow_provider_contacts.sync.runner import config_from_params, run_reconcile

        params = get_current_context()["params"]
        report = run_reconcile(
            source_conn_id=params["source_conn_id"],
            target_conn_id=params["target_conn_id"],
            location_id=location_id,
            mapping_path=MAPPING_FILE,
            config=config_from_params(params, SCHEDULE_INTERVAL),
            target_schema=params["target_schema"],
        )
        return report.to_dict()  # the engine has logged it as a table

    @task(outlets=list(TABLE_ASSETS.values()))
    def publish_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Log the combined report and emit one asset event per table with its counts."""
        context = get_current_context()
        # One slice request for the mapped tasks' reports. Iterating the lazy XCom sequence instead
        # asks for item after item until one is missing, and the Task SDK logs that probe as
        # "[error] XCom not found ... offset=<n>" in every successful run.
        reports = list(reports[:])
        totals = merge_reports(reports)
        for table, asset in TABLE_ASSETS.items():
            context["outlet_events"][asset].extra = {
                **totals[table],
                "locations": [r["location_id"] for r in reports],
                "target": reports[0]["target"] if reports else None,
            }
        summary = {
            "locations": len(reports),
            "tables": totals,
            "requests": sum(r["requests"] for r in reports),
            "throttled": sum(r["throttled"] for r in reports),
            "duration_s": max((r["duration_s"] for r in reports), default=0.0),
            "column_errors": merge_nested([r.get("column_errors", {}) for r in reports]),
            "cleaned": merge_nested([r.get("cleaned", {}) for r in reports]),
            "warnings": [w for r in reports for w in r["warnings"]],
        }
        log.info("reconcile summary: %s", summary)
        return summary

    publish_report(reconcile.expand(location_id=resolve_locations()))


ghl_contacts_reconcile()
