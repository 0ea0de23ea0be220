"""Glue between Airflow task parameters and the lead flows: build hook, source, mapping and
templates from connection ids and paths, run, close. The DAGs of :mod:`.dag` call these;
scripts and tests can too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_contacts.sync.leads.flow import LeadsConfig, LeadsEngine, LeadsReport
from airflow_provider_contacts.sync.leads.mapping import LeadMapping
from airflow_provider_contacts.sync.leads.source import LeadSource, get_source_hook
from airflow_provider_contacts.sync.leads.templates import load_templates

__all__ = ["run_leads", "run_two_way"]


def _source(crm_conn_id: str, leads_table: str | None, crm_schema: str | None, mapping: LeadMapping) -> LeadSource:
    table = leads_table or mapping.section.table
    return LeadSource(get_source_hook(crm_conn_id, table), table, mapping.section.key, schema=crm_schema or None)


def run_leads(
    *,
    ghl_conn_id: str = "ghl_default",
    crm_conn_id: str = "crm_source",
    leads_table: str | None = None,
    crm_schema: str | None = None,
    location_id: str | None = None,
    mapping_path: str | Path | None = None,
    templates_path: str | Path | None = None,
    config: LeadsConfig | None = None,
) -> LeadsReport:
    """The lead flow once (lead table -> HighLevel); returns the report.

    ``mapping_path`` / ``templates_path`` ``None``: the packaged defaults.
    """
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    mapping = LeadMapping.load(mapping_path)
    templates = load_templates(templates_path)
    hook = ContactsHook(ghl_conn_id=ghl_conn_id, location_id=location_id)
    try:
        with _source(crm_conn_id, leads_table, crm_schema, mapping) as source:
            report = LeadsEngine(hook, source, mapping, templates, config).run()
    finally:
        hook.close()
    report.source = f"{crm_conn_id}: {report.source}"
    return report


def run_two_way(
    *,
    ghl_conn_id: str = "ghl_default",
    crm_conn_id: str = "crm_source",
    target_conn_id: str = "ghl_target",
    target_schema: str | None = None,
    leads_table: str | None = None,
    crm_schema: str | None = None,
    location_id: str | None = None,
    mapping_path: str | Path | None = None,
    templates_path: str | Path | None = None,
    config: LeadsConfig | None = None,
    propagate_deletions: bool | None = None,
    max_delete_fraction: float | None = None,
    reconcile_report: dict[str, Any] | None = None,
) -> LeadsReport:
    """The two-way step once (after a reconcile of the location into ``target_conn_id``).
    ``propagate_deletions`` / ``max_delete_fraction`` left ``None`` take ``config``'s (its defaults
    without a ``config``)."""
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync.target import get_target_hook
    from airflow_provider_contacts.sync.leads.two_way import TwoWayConfig, TwoWaySync

    mapping = LeadMapping.load(mapping_path)
    templates = load_templates(templates_path)
    hook = ContactsHook(ghl_conn_id=ghl_conn_id, location_id=location_id)
    base = config if config is not None else LeadsConfig()
    two_way = TwoWayConfig(
        propagate_deletions=base.propagate_deletions if propagate_deletions is None else propagate_deletions,
        max_delete_fraction=base.max_delete_fraction if max_delete_fraction is None else max_delete_fraction,
    )
    try:
        with _source(crm_conn_id, leads_table, crm_schema, mapping) as source:
            sync = TwoWaySync(
                hook, source, get_target_hook(target_conn_id), mapping, templates, config, two_way,
                target_schema=target_schema or None,
            )
            report = sync.run(LeadsReport(reconcile=reconcile_report))
    finally:
        hook.close()
    report.source = f"{crm_conn_id}: {report.source}"
    return report
