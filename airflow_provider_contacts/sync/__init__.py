"""Scheduled reconciliation of HighLevel contacts, tasks and notes into a SQL target.

Entry points: :func:`build_reconcile_dag` (the DAG ``ghl_contacts_reconcile``, for a dags
folder), :class:`ReconcileEngine` (one location, a hook and a sink; plain Python),
:func:`run_reconcile` (builds them from connection ids, used by the DAG's tasks),
:class:`FieldMapping` (``DEFAULT_MAPPING_FILE``: the mapping shipped in the package),
:class:`SqlSink`, :class:`RunReport`. See docs/reconcile.md.

The names are imported lazily (PEP 562): the dag-processor imports ``sync.dag`` (and with it
``sync.alerts`` and ``sync.report``) while parsing the reconcile DAG, and must not pay for the
engine, the sinks and common-sql on every parse.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE, build_reconcile_dag
    from airflow_provider_contacts.sync.engine import ReconcileEngine, SyncConfig, reconcile_location
    from airflow_provider_contacts.sync.mapping import FieldMapping, MappingError
    from airflow_provider_contacts.sync.report import RunReport
    from airflow_provider_contacts.sync.runner import config_from_params, run_reconcile
    from airflow_provider_contacts.sync.sinks import SqlSink
    from airflow_provider_contacts.sync.target import get_target_hook

#: Public name -> submodule that defines it.
_EXPORTS = {
    "DEFAULT_MAPPING_FILE": "dag",
    "FieldMapping": "mapping",
    "MappingError": "mapping",
    "ReconcileEngine": "engine",
    "RunReport": "report",
    "SqlSink": "sinks",
    "SyncConfig": "engine",
    "build_reconcile_dag": "dag",
    "config_from_params": "runner",
    "get_target_hook": "target",
    "reconcile_location": "engine",
    "run_reconcile": "runner",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)
