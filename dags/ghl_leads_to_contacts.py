"""Leads of a SQL table into HighLevel, every hour: one contact per lead (no duplicates on reruns,
retries or faults), follow-up tasks and a note for new leads, changed fields only for changed ones.

The DAG is built by the provider (``build_leads_dag``) with the packaged leads mapping and task
templates. Connection ``crm_source`` (any SQL database, table ``crm_leads``); without it, an
embedded SQLite file with demo leads. Params, mapping, templates and the link table: docs/leads.md.
"""

from __future__ import annotations

from airflow_provider_contacts.sync.leads.dag import build_leads_dag

dag = build_leads_dag("ghl_leads_to_contacts")
