"""Reconcile HighLevel contacts, tasks and notes into a SQL target, every hour.

The DAG is built by the provider (``build_reconcile_dag``); this file only picks the field
mapping next to it, an editable copy of the one shipped in the package. Its params, the mapping
format and the target tables: docs/reconcile.md.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_contacts.sync.dag import build_reconcile_dag

dag = build_reconcile_dag("ghl_contacts_reconcile", mapping=Path(__file__).with_name("ghl_contacts_mapping.yaml"))
