"""Glue between Airflow task parameters and the engine: build hook, sink and config, run, close.

The DAG built by :func:`~airflow_provider_contacts.sync.dag.build_reconcile_dag` calls
:func:`run_reconcile` once per location; scripts and tests can call it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow_provider_contacts.lineage import report_reconcile_lineage
from airflow_provider_contacts.sync.engine import ReconcileEngine, SyncConfig
from airflow_provider_contacts.sync.events import EventSync
from airflow_provider_contacts.sync.mapping import FieldMapping
from airflow_provider_contacts.sync.report import RunReport
from airflow_provider_contacts.sync.schema import TABLES
from airflow_provider_contacts.sync.sinks import SqlSink
from airflow_provider_contacts.sync.target import get_target_hook
from airflow_provider_contacts.sync.views import ensure_views

__all__ = ["config_from_params", "run_reconcile"]


def config_from_params(params: Mapping[str, Any], schedule_interval: timedelta) -> SyncConfig:
    """A :class:`SyncConfig` from the DAG's params (names as in the DAG; hours and minutes as
    numbers). A missing or empty (``None``, blank) param takes the DAG's built-in default."""

    def get(name: str, default: Any) -> Any:
        value = params.get(name)
        return default if value is None or (isinstance(value, str) and not value.strip()) else value

    return SyncConfig(
        full_sweep=bool(get("full_sweep", False)),
        overlap=timedelta(minutes=float(get("overlap_minutes", 10))),
        batch_size=int(get("batch_size", 200)),
        sweep_period=timedelta(hours=float(get("sweep_period_hours", 168))),
        schedule_interval=schedule_interval,
        max_requests_per_run=int(get("max_requests_per_run", 50_000)),
        hard_delete=bool(get("hard_delete", False)),
        max_delete_fraction=float(get("max_delete_fraction", 0.5)),
    )


def run_reconcile(
    *,
    source_conn_id: str,
    target_conn_id: str,
    location_id: str | None,
    mapping_path: str | Path,
    config: SyncConfig | None = None,
    target_schema: str | None = None,
    events: EventSync | None = None,
) -> RunReport:
    """Reconcile one location from ``source_conn_id`` into ``target_conn_id``; returns the report.

    ``mapping_path``: e.g. ``sync.DEFAULT_MAPPING_FILE``, the mapping shipped in the package;
    ``config`` ``None``: the defaults. A fresh ``ContactsHook`` per call gives each location its
    own rate limiter. ``events``: apply the location's pending webhook events first
    (:class:`~airflow_provider_contacts.sync.events.EventSync`; ``None``: polling only).
    """
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    mapping = FieldMapping.load(mapping_path)
    config = config or SyncConfig()
    hook = ContactsHook(ghl_conn_id=source_conn_id, location_id=location_id)
    try:
        with SqlSink(get_target_hook(target_conn_id), mapping, schema=target_schema or None) as sink:
            engine = ReconcileEngine(hook, sink, mapping, config, events=events)
            # OpenLineage (when installed): the location's contacts, tasks, notes -> the tables.
            report_reconcile_lineage(hook, engine.location_id, sink.hook, TABLES.values(), schema=sink.schema)
            report = engine.run()
            ensure_views(sink, report)  # the 360-degree and directory views (docs/leads.md, "Views")
    finally:
        hook.close()  # its pooled HTTP session
    report.target = target_conn_id + (f" ({sink.dialect_name})" if sink.dialect_name else "")
    return report
