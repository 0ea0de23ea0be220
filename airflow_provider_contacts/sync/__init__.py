"""Scheduled reconciliation of HighLevel contacts, tasks and notes into a SQL target.

Entry points: :class:`ReconcileEngine` (one location, a hook and a sink; plain Python),
:func:`run_reconcile` (builds them from connection ids, used by the DAG
``ghl_contacts_reconcile``), :class:`FieldMapping`, :class:`SqlSink`, :class:`RunReport`.
See docs/reconcile.md.
"""

from __future__ import annotations

from airflow_provider_contacts.sync.engine import ReconcileEngine, SyncConfig, reconcile_location
from airflow_provider_contacts.sync.mapping import FieldMapping, MappingError
from airflow_provider_contacts.sync.report import RunReport
from airflow_provider_contacts.sync.runner import config_from_params, run_reconcile
from airflow_provider_contacts.sync.sinks import SqlSink
from airflow_provider_contacts.sync.target import get_target_hook

__all__ = [
    "FieldMapping",
    "MappingError",
    "ReconcileEngine",
    "RunReport",
    "SqlSink",
    "SyncConfig",
    "config_from_params",
    "get_target_hook",
    "reconcile_location",
    "run_reconcile",
]
