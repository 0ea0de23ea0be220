"""The lead DAGs as library pieces: :func:`build_leads_dag` (``ghl_leads_to_contacts``: a lead
table -> HighLevel contacts, follow-up tasks and notes) and :func:`build_two_way_dag`
(``ghl_two_way_sync``: the reconcile, then the two-way step and the lead flow).

A dags folder needs two lines per DAG::

    from airflow_provider_contacts.sync.leads.dag import build_leads_dag

    dag = build_leads_dag()

Params, the leads mapping, the templates, the link table and the conflict rules: docs/leads.md.
Imported by the dag-processor on every parse, so it imports nothing heavy: the tasks import the
flows (:mod:`.runner`) when they run.

Run one of the two DAGs per lead table and location, not both on a schedule: the two-way DAG runs
the lead flow itself.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_contacts.sync.alerts import failure_alert
from airflow_provider_contacts.sync.dag import resolve_dag_file

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LEADS_DAG_ID",
    "DEFAULT_LEADS_MAPPING_FILE",
    "DEFAULT_TEMPLATES_FILE",
    "DEFAULT_TWO_WAY_DAG_ID",
    "build_leads_dag",
    "build_two_way_dag",
    "lead_params",
    "lead_values",
]

DEFAULT_LEADS_DAG_ID = "ghl_leads_to_contacts"
DEFAULT_TWO_WAY_DAG_ID = "ghl_two_way_sync"
#: Packaged defaults (package data; the wheel carries them).
DEFAULT_LEADS_MAPPING_FILE = Path(__file__).with_name("leads_mapping.yaml")
DEFAULT_TEMPLATES_FILE = Path(__file__).with_name("leads_followup_templates.yaml")
DEFAULT_RECONCILE_MAPPING_FILE = Path(__file__).parent.parent / "ghl_contacts_mapping.yaml"

_EMPTY_MEANS_UNSET = {
    "location_id": "the HighLevel connection's location_id",
    "leads_table": "the leads mapping's leads.table (crm_leads)",
    "crm_schema": "the source database's default schema",
    "task_templates": "the DAG's template file (the packaged one by default)",
    "target_schema": "the target database's default schema",
}

# name -> (default, JSON schema, text, DAGs). Every type admits null: Airflow's trigger form
# treats a param without "null" in its type as required.
_SPECS: dict[str, tuple[Any, dict[str, Any], str, tuple[str, ...]]] = {
    "ghl_conn_id": ("ghl_default", {"type": ["string", "null"]}, "HighLevel connection id", ("leads", "two_way")),
    "location_id": (None, {"type": ["string", "null"]}, "HighLevel location", ("leads", "two_way")),
    "crm_conn_id": ("crm_source", {"type": ["string", "null"]}, "SQL connection of the lead table", ("leads", "two_way")),
    "leads_table": (None, {"type": ["string", "null"]}, "Lead table", ("leads", "two_way")),
    "crm_schema": (None, {"type": ["string", "null"]}, "Schema of the link table (and of an unqualified lead table)", ("leads", "two_way")),
    "task_templates": (None, {"type": ["string", "null"]}, "Follow-up task template file (YAML)", ("leads", "two_way")),
    "follow_up": (True, {"type": ["boolean", "null"]}, "Create the template's tasks and a note for new leads", ("leads", "two_way")),
    "propagate_deletions": (
        False, {"type": ["boolean", "null"]},
        "Delete the contact of a lead gone from the table (two-way: and the lead of a contact deleted in HighLevel)",
        ("leads", "two_way"),
    ),
    "max_delete_fraction": (
        0.5, {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "Refuse to delete more than this share of the linked leads", ("leads", "two_way"),
    ),
    "page_size": (200, {"type": ["integer", "null"], "minimum": 1, "maximum": 5000}, "Leads per committed page", ("leads", "two_way")),
    "target_conn_id": ("ghl_target", {"type": ["string", "null"]}, "SQL target of the reconcile", ("two_way",)),
    "target_schema": (None, {"type": ["string", "null"]}, "Schema of the reconcile tables", ("two_way",)),
    "full_sweep": (False, {"type": ["boolean", "null"]}, "Reconcile: re-read every contact", ("two_way",)),
}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def lead_params(kind: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Param]:
    """The params of the ``leads`` or ``two_way`` DAG (all optional), with new defaults.

    :raises ValueError: an unknown name (with a did-you-mean) or a default its schema refuses.
    """
    params: dict[str, Param] = {}
    for name, (default, schema, text, kinds) in _SPECS.items():
        if kind in kinds:
            empty = _EMPTY_MEANS_UNSET.get(name) or (str(default).lower() if isinstance(default, bool) else repr(default))
            params[name] = Param(default, description=f"{text} (empty: {empty})", schema=copy.deepcopy(schema))
    for name, value in (overrides or {}).items():
        if name not in params:
            close = difflib.get_close_matches(name, params, n=1)
            raise ValueError(f"unknown param {name!r}" + (f"; did you mean {close[0]!r}?" if close else "") + f" (params: {', '.join(params)})")
        param = value if isinstance(value, Param) else Param(value, description=params[name].description, schema=copy.deepcopy(params[name].schema))
        try:
            copy.copy(param).resolve()
        except Exception as exc:  # noqa: BLE001 - ParamValidationError
            raise ValueError(f"param {name!r}: default {param.value!r} is not valid: {exc}") from None
        params[name] = param
    return params


def lead_values(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The values a run works with: an empty param takes the DAG's default (else the built-in
    one), except the names of ``_EMPTY_MEANS_UNSET``, which stay ``None`` (their own meaning)."""
    out: dict[str, Any] = {}
    for name, (builtin, _, _, _) in _SPECS.items():
        value = params.get(name)
        if _empty(value) and name not in _EMPTY_MEANS_UNSET:
            value = defaults.get(name)
            if _empty(value):
                value = builtin
        if _empty(value):
            value = defaults.get(name) if name == "task_templates" else None
        out[name] = value.strip() if isinstance(value, str) else value
    return out


def _dag_kwargs(dag_kwargs: dict[str, Any], description: str, tags: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    default_args = {
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": failure_alert,
        **dict(dag_kwargs.pop("default_args", None) or {}),
    }
    kwargs: dict[str, Any] = {
        "start_date": datetime(2025, 1, 1, tzinfo=timezone.utc),
        "catchup": False,
        "max_active_runs": 1,
        "tags": tags,
        "description": description,
        **dag_kwargs,
    }
    return default_args, kwargs


def _config(values: Mapping[str, Any]) -> Any:
    from airflow_provider_contacts.sync.leads.flow import LeadsConfig

    return LeadsConfig(
        page_size=int(values["page_size"]),
        follow_up=bool(values["follow_up"]),
        propagate_deletions=bool(values["propagate_deletions"]),
        max_delete_fraction=float(values["max_delete_fraction"]),
    )


def _check_location(values: Mapping[str, Any]) -> None:
    """Refuse a ``location_id`` param that is not a HighLevel id (before any request)."""
    if values.get("location_id"):
        from airflow_provider_contacts.sync.dag import check_location_ids

        check_location_ids([values["location_id"]], param="location_id")


def _finish(report: Any) -> dict[str, Any]:
    """The report for XCom; failures (API errors after retries) fail the task so Airflow retries
    it (safe: nothing is created twice)."""
    from airflow_provider_contacts.sync.leads.flow import LeadsRunError

    if report.failed:
        raise LeadsRunError(
            f"{report.failed} lead(s) failed on API errors after retries (the others were written; a retry is safe): "
            + "; ".join(f"{f['lead_id']}: {f['error']}" for f in report.failures[:5])
        )
    return report.to_dict()



def _dag_frame(kind: str, params: Any, templates_file: Any, dag_kwargs: dict[str, Any], description: str,
               tags: list[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], str | None]:
    """What both lead DAGs are built from: their params, the params' default values (the packaged
    task templates unless given), default_args, the other DAG kwargs, and a user's ``doc_md``."""
    dag_params = lead_params(kind, params)
    defaults = {name: p.value for name, p in dag_params.items()}
    defaults["task_templates"] = defaults.get("task_templates") or templates_file
    default_args, kwargs = _dag_kwargs(dag_kwargs, description, tags)
    return dag_params, defaults, default_args, kwargs, kwargs.pop("doc_md", None)

def build_leads_dag(
    dag_id: str = DEFAULT_LEADS_DAG_ID,
    *,
    schedule: Any = timedelta(hours=1),
    mapping: str | os.PathLike[str] | None = None,
    templates: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build ``ghl_leads_to_contacts``: leads of a SQL table -> HighLevel contacts (docs/leads.md).

    :param schedule: any Airflow schedule; hourly by default.
    :param mapping: leads mapping YAML (``None``: the packaged one); a relative path is taken
        from the current directory, else from the calling DAG file's folder.
    :param templates: follow-up task template YAML (``None``: the packaged one); the
        ``task_templates`` param overrides it per run.
    :param params: new defaults of the params (e.g. ``{"crm_conn_id": "crm", "leads_table": "leads"}``).
    :param dag_kwargs: passed to ``DAG`` (``default_args`` merged over ours: 2 retries, 30 s apart,
        for errors a retry may cure; a mapping error such as a column the lead table lacks, a bad
        param or connection, a missing scope fails the task at once:
        :func:`~airflow_provider_contacts.failures.failing_fast`).
    """
    caller = sys._getframe(1).f_code.co_filename
    mapping_file = resolve_dag_file(mapping, DEFAULT_LEADS_MAPPING_FILE, caller, "build_leads_dag: leads mapping file")
    templates_file = resolve_dag_file(templates, DEFAULT_TEMPLATES_FILE, caller, "build_leads_dag: task template file")
    dag_params, defaults, default_args, kwargs, doc = _dag_frame(
        "leads", params, templates_file, dag_kwargs,
        "Leads of a SQL table into HighLevel contacts, tasks and notes", ["highlevel", "leads"])
    with DAG(dag_id, schedule=schedule, params=dag_params, default_args=default_args, **kwargs) as dag:
        dag.doc_md = doc or (
            f"### {dag_id}\n\nNew leads of the lead table become HighLevel contacts (one each, matched by email, "
            "then phone, through the duplicate look-up), with the template's follow-up tasks and a note; changed "
            "leads send their changed fields only. Every param is optional. See `docs/leads.md` of "
            f"airflow-provider-contacts.\n\n- leads mapping: `{mapping_file}`\n- task templates: `{templates_file}`\n"
        )

        @task
        def leads_to_contacts() -> dict[str, Any]:
            """Run the lead flow once; returns the report (small) to XCom."""
            from airflow_provider_contacts.failures import failing_fast
            from airflow_provider_contacts.sync.leads.runner import run_leads

            values = lead_values(get_current_context()["params"], defaults)
            # A mapping error (e.g. a column the lead table lacks), a bad param or connection, a
            # missing scope fails at once; API and database outages stay retryable.
            with failing_fast(f"{dag_id}.leads_to_contacts", ghl_conn_id=values["ghl_conn_id"],
                              location_id=values["location_id"]):
                _check_location(values)
                report = run_leads(
                    ghl_conn_id=values["ghl_conn_id"],
                    crm_conn_id=values["crm_conn_id"],
                    leads_table=values["leads_table"],
                    crm_schema=values["crm_schema"],
                    location_id=values["location_id"],
                    mapping_path=mapping_file,
                    templates_path=values["task_templates"],
                    config=_config(values),
                )
            return _finish(report)

        leads_to_contacts()
    dag.fileloc = caller
    return dag


def build_two_way_dag(
    dag_id: str = DEFAULT_TWO_WAY_DAG_ID,
    *,
    schedule: Any = None,
    mapping: str | os.PathLike[str] | None = None,
    templates: str | os.PathLike[str] | None = None,
    reconcile_mapping: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build ``ghl_two_way_sync``: ``reconcile`` (HighLevel -> the target tables, with the views)
    then ``sync_both_ways`` (read-back, conflicts by the mapping's ``leads.two_way`` rules, then the
    lead flow). Manual by default (``schedule=None``); give it the schedule the lead DAG would have
    and leave that one unscheduled.

    :param reconcile_mapping: the reconcile's field mapping (``None``: the packaged one).
    Other arguments as in :func:`build_leads_dag`.
    """
    caller = sys._getframe(1).f_code.co_filename
    mapping_file = resolve_dag_file(mapping, DEFAULT_LEADS_MAPPING_FILE, caller, "build_two_way_dag: leads mapping file")
    templates_file = resolve_dag_file(templates, DEFAULT_TEMPLATES_FILE, caller, "build_two_way_dag: task template file")
    reconcile_file = resolve_dag_file(reconcile_mapping, DEFAULT_RECONCILE_MAPPING_FILE, caller, "build_two_way_dag: reconcile mapping file")
    dag_params, defaults, default_args, kwargs, doc = _dag_frame(
        "two_way", params, templates_file, dag_kwargs,
        "Two-way sync of chosen fields between a lead table and HighLevel", ["highlevel", "leads", "two-way"])
    with DAG(dag_id, schedule=schedule, params=dag_params, default_args=default_args, **kwargs) as dag:
        dag.doc_md = doc or (
            f"### {dag_id}\n\n`reconcile` (HighLevel -> the target tables) then `sync_both_ways`: values changed in "
            "HighLevel are written back to the lead table, values changed in the table are sent to HighLevel, "
            "conflicts are settled per field by the mapping's rule (`newest`, `highlevel`, `source`) and listed in the "
            f"report. See `docs/leads.md`.\n\n- leads mapping: `{mapping_file}`\n- reconcile mapping: `{reconcile_file}`\n"
        )

        @task
        def reconcile() -> dict[str, Any]:
            """Reconcile the location into the target (the contacts the read-back compares with)."""
            from airflow_provider_contacts.failures import failing_fast
            from airflow_provider_contacts.hooks.contacts import ContactsHook
            from airflow_provider_contacts.sync.engine import SyncConfig
            from airflow_provider_contacts.sync.runner import run_reconcile

            values = lead_values(get_current_context()["params"], defaults)
            with failing_fast(f"{dag_id}.reconcile", ghl_conn_id=values["ghl_conn_id"],
                              location_id=values["location_id"]) as facts:
                _check_location(values)
                location = values["location_id"] or ContactsHook(ghl_conn_id=values["ghl_conn_id"]).location_id
                facts.location_id = location
                report = run_reconcile(
                    source_conn_id=values["ghl_conn_id"],
                    target_conn_id=values["target_conn_id"],
                    location_id=location,
                    mapping_path=reconcile_file,
                    config=SyncConfig(full_sweep=bool(values["full_sweep"])),
                    target_schema=values["target_schema"],
                )
            return report.to_dict()

        @task
        def sync_both_ways(reconciled: dict[str, Any]) -> dict[str, Any]:
            """Read back, settle conflicts, then run the lead flow; returns the report."""
            from airflow_provider_contacts.failures import failing_fast
            from airflow_provider_contacts.sync.leads.runner import run_two_way

            values = lead_values(get_current_context()["params"], defaults)
            location = values["location_id"] or reconciled.get("location_id")
            with failing_fast(f"{dag_id}.sync_both_ways", ghl_conn_id=values["ghl_conn_id"], location_id=location):
                report = run_two_way(
                    ghl_conn_id=values["ghl_conn_id"],
                    crm_conn_id=values["crm_conn_id"],
                    target_conn_id=values["target_conn_id"],
                    target_schema=values["target_schema"],
                    leads_table=values["leads_table"],
                    crm_schema=values["crm_schema"],
                    location_id=location,
                    mapping_path=mapping_file,
                    templates_path=values["task_templates"],
                    config=_config(values),
                    reconcile_report={
                        k: reconciled.get(k) for k in ("mode", "tables", "requests", "duration_s", "watermark_after")
                    },
                )
            return _finish(report)

        sync_both_ways(reconcile())
    dag.fileloc = caller
    return dag
