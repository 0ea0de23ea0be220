"""The reconciliation DAG as a library piece: :func:`build_reconcile_dag`.

A dags folder needs two lines for the standard DAG ``ghl_contacts_reconcile``::

    from airflow_provider_contacts.sync.dag import build_reconcile_dag

    dag = build_reconcile_dag()

Its params, the mapping format, the target tables and the durable state are documented in one
place: ``docs/reconcile.md``. This module is imported by the dag-processor on every parse, so it
imports nothing heavy: the tasks import the engine (``sync.runner``) and the hook when they run.
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
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from airflow_provider_contacts.sync.alerts import failure_alert
from airflow_provider_contacts.sync.report import merge_nested, merge_reports

if TYPE_CHECKING:
    from airflow.sdk.bases.timetable import BaseTimetable

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DAG_ID",
    "DEFAULT_MAPPING_FILE",
    "DEFAULT_SCHEDULE",
    "TABLE_ASSETS",
    "build_reconcile_dag",
    "default_params",
    "effective_params",
    "run_interval_of",
]

DEFAULT_DAG_ID = "ghl_contacts_reconcile"
DEFAULT_SCHEDULE = timedelta(hours=1)
#: The mapping shipped inside the package (package data; the wheel carries it).
DEFAULT_MAPPING_FILE = Path(__file__).with_name("ghl_contacts_mapping.yaml")
#: One asset per table; ``publish_report`` emits an event on each with the run's counts.
TABLE_ASSETS = {
    table: Asset(name=table, uri=f"ghl://reconcile/{table}", group="ghl")
    for table in ("ghl_contacts", "ghl_tasks", "ghl_notes")
}

#: Params whose empty value has its own meaning (the database's default schema, the source
#: connection's location) instead of "the default value".
_EMPTY_MEANS_UNSET = frozenset({"target_schema", "location_ids"})
_EMPTY_MEANING = {
    "target_schema": "the database's default schema",
    "location_ids": "the source connection's location_id",
}

# name -> (default, JSON schema, what it is). Every type admits null: Airflow's trigger form
# treats a param whose type lacks "null" as required, and left empty it disables the Trigger button.
_PARAM_SPECS: dict[str, tuple[Any, dict[str, Any], str]] = {
    "source_conn_id": ("ghl_default", {"type": ["string", "null"]}, "HighLevel connection id"),
    "target_conn_id": ("ghl_target", {"type": ["string", "null"]}, "SQL target connection id"),
    "target_schema": (None, {"type": ["string", "null"]}, "Schema of the target tables"),
    "location_ids": (
        None,
        {"type": ["array", "null"], "items": {"type": "string"}},
        "Locations to sync, one mapped task each",
    ),
    "full_sweep": (False, {"type": ["boolean", "null"]}, "Re-read every contact and its tasks and notes"),
    "sweep_period_hours": (168, {"type": ["number", "null"], "minimum": 1}, "Every contact's tasks and notes re-read within"),
    "max_requests_per_run": (50_000, {"type": ["integer", "null"], "minimum": 10}, "Request budget per location"),
    "overlap_minutes": (10, {"type": ["number", "null"], "minimum": 0}, "Incremental search overlap window"),
    "batch_size": (200, {"type": ["integer", "null"], "minimum": 1, "maximum": 5000}, "Contacts per committed batch"),
    "hard_delete": (False, {"type": ["boolean", "null"]}, "Delete rows instead of setting deleted_at"),
    "max_delete_fraction": (
        0.5,
        {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "Refuse to delete more than this share of a location's contacts",
    ),
}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, (list, tuple)) and not value)


def _param(name: str, default: Any) -> Param:
    _, schema, text = _PARAM_SPECS[name]
    if name in _EMPTY_MEANS_UNSET:
        empty = _EMPTY_MEANING[name]
    else:
        empty = f"{default!r}" if not isinstance(default, bool) else str(default).lower()
    return Param(default, description=f"{text} (empty: {empty})", schema=copy.deepcopy(schema))


def default_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Param]:
    """The reconcile DAG's params (all optional), with ``overrides`` of their defaults.

    An override is a new default value (validated against the param's schema) or a whole
    ``Param``. Unknown names raise ``ValueError`` with a did-you-mean.
    """
    params = {name: _param(name, default) for name, (default, _, _) in _PARAM_SPECS.items()}
    for name, value in (overrides or {}).items():
        if name not in params:
            close = difflib.get_close_matches(name, params, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"build_reconcile_dag: unknown param {name!r}{hint} (params: {', '.join(params)})")
        param = value if isinstance(value, Param) else _param(name, value)
        try:
            copy.copy(param).resolve()  # resolve() stores the value: validate a copy
        except Exception as exc:  # ParamValidationError (jsonschema's message)
            raise ValueError(f"build_reconcile_dag: param {name!r}: default {param.value!r} is not valid: {exc}") from None
        params[name] = param
    return params


def effective_params(params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a run works with: an empty param (``None``, a blank string, an empty list: what
    the trigger form sends for a field left empty) takes its default from ``defaults`` (the DAG's;
    the built-in one where that is empty too), except ``target_schema`` (empty: the database's default schema) and ``location_ids`` (empty:
    the source connection's ``location_id``), which are then ``None``. Location ids are trimmed,
    blank ones dropped and duplicates removed."""
    defaults = dict(defaults or {})
    values: dict[str, Any] = {}
    for name, (builtin, _, _) in _PARAM_SPECS.items():
        value = params.get(name)
        if _is_empty(value) and name not in _EMPTY_MEANS_UNSET:
            value = defaults.get(name)
            if _is_empty(value):  # a DAG built with an empty default: the built-in one
                value = builtin
        if _is_empty(value):
            value = None
        elif isinstance(value, str):
            value = value.strip()
        values[name] = value
    if values["location_ids"] is not None:
        ids = list(dict.fromkeys(str(loc).strip() for loc in values["location_ids"] if str(loc).strip()))
        values["location_ids"] = ids or None
    return values


def run_interval_of(timetable: BaseTimetable) -> timedelta | None:
    """How often a DAG with this timetable runs, on average; ``None`` when it has no fixed rhythm
    (manual, asset-triggered, custom timetables).

    A ``timedelta`` (or ``relativedelta``) schedule is its own interval; a cron expression gives the
    mean gap between its next 50 fire times (``0 9 * * 1-5``: 1.4 days).
    """
    delta = getattr(timetable, "delta", None)
    if isinstance(delta, timedelta):
        return delta if delta > timedelta(0) else None
    if delta is not None:  # dateutil relativedelta: measured from a fixed date
        ref = datetime(2025, 1, 1, tzinfo=timezone.utc)
        return ((ref + delta) - ref) or None
    expression = getattr(timetable, "expression", None)
    if isinstance(expression, str):
        from croniter import croniter  # the SDK's cron timetables import it already

        runs = 50
        it = croniter(expression, datetime(2025, 1, 1, tzinfo=timezone.utc))
        first = it.get_next(datetime)
        last = first
        for _ in range(runs - 1):
            last = it.get_next(datetime)
        return (last - first) / (runs - 1)
    return None


def _doc_md(dag_id: str, mapping: Path, run_interval: timedelta) -> str:
    return (
        f"### {dag_id}\n\n"
        "Reconciles HighLevel contacts, tasks and notes into a SQL target: `resolve_locations` -> "
        "`reconcile` (one mapped task per location) -> `publish_report` (the combined report and an "
        "asset event per table: `ghl_contacts`, `ghl_tasks`, `ghl_notes`).\n\n"
        "Every param is optional; a param left empty takes its default. The params, the mapping "
        "format, the target tables and the state are documented in `docs/reconcile.md` of "
        "airflow-provider-contacts.\n\n"
        f"- mapping: `{mapping}`\n"
        f"- run interval (sizes the task/note sweep): {timedelta(seconds=round(run_interval.total_seconds()))}\n"
        f"- failure alerts: `$GHL_RECONCILE_ALERT_WEBHOOK` when set\n"
    )


def build_reconcile_dag(
    dag_id: str = DEFAULT_DAG_ID,
    *,
    schedule: Any = DEFAULT_SCHEDULE,
    mapping: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    run_interval: timedelta | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build the reconciliation DAG: HighLevel contacts, tasks and notes into a SQL target.

    Documented in ``docs/reconcile.md`` (the params and what an empty one means, the mapping
    format, the target tables, the durable state, the run report); this docstring only lists the
    arguments.

    :param dag_id: the DAG id (several DAGs, e.g. one per target, need distinct ids).
    :param schedule: any Airflow schedule (``timedelta``, cron expression or preset, timetable,
        assets, ``None`` for manual runs only); hourly by default.
    :param mapping: path of the field mapping YAML; ``None``: the mapping shipped in the package
        (:data:`DEFAULT_MAPPING_FILE`). A relative path is taken from the current directory, else
        from the folder of the file calling this function (your DAG file). It must exist; each
        run loads and validates it.
    :param params: new defaults for the DAG's params, e.g. ``{"target_conn_id": "warehouse",
        "location_ids": ["abc"]}`` (a value, checked against the param's schema, or a ``Param``).
    :param run_interval: how often the DAG runs, which sizes each run's slice of the task/note
        sweep (``sweep_period_hours``); by default derived from ``schedule`` (a cron expression:
        the mean gap between runs), else one hour. Pass it for asset or custom schedules.
    :param dag_kwargs: passed to ``DAG`` and override its defaults (``start_date`` 2025-01-01 UTC,
        ``catchup=False``, ``max_active_runs=1``, ``tags``, ``description``, ``doc_md``);
        ``default_args`` are merged over ours (2 retries 30 s apart, ``on_failure_callback``
        :func:`~airflow_provider_contacts.sync.alerts.failure_alert`).
    """
    caller = sys._getframe(1).f_code.co_filename
    mapping_path = DEFAULT_MAPPING_FILE if mapping is None else Path(mapping).expanduser()
    if not mapping_path.is_absolute():
        # As Python opens it (``Path(__file__).with_name(...)`` is relative when ``__file__`` is),
        # else a bare name next to the DAG file; absolute either way, for the workers.
        here = mapping_path.resolve()
        mapping_path = here if here.is_file() else Path(caller).resolve().parent / mapping_path
    if not mapping_path.is_file():
        raise FileNotFoundError(f"build_reconcile_dag: mapping file {str(mapping_path)!r} does not exist")
    mapping_file = str(mapping_path)

    dag_params = default_params(params)
    defaults = {name: param.value for name, param in dag_params.items()}
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
        "tags": ["highlevel", "reconcile"],
        "description": "Reconcile HighLevel contacts, tasks and notes into a SQL target",
        **dag_kwargs,
    }
    user_doc = kwargs.pop("doc_md", None)

    with DAG(dag_id, schedule=schedule, params=dag_params, default_args=default_args, **kwargs) as dag:
        interval = run_interval if run_interval is not None else run_interval_of(dag.timetable) or DEFAULT_SCHEDULE
        if interval <= timedelta(0):
            raise ValueError(f"build_reconcile_dag: run_interval must be positive, not {interval}")
        dag.doc_md = user_doc if user_doc is not None else _doc_md(dag_id, mapping_path, interval)

        @task
        def resolve_locations() -> list[str]:
            """The locations to sync: the ``location_ids`` param, else the connection's location."""
            values = effective_params(get_current_context()["params"], defaults)
            if values["location_ids"]:
                return values["location_ids"]
            from airflow_provider_contacts.hooks.contacts import ContactsHook

            location = ContactsHook(ghl_conn_id=values["source_conn_id"]).location_id
            if not location:
                raise ValueError(
                    f"connection {values['source_conn_id']!r} has no extra 'location_id'; set it or pass the "
                    "location_ids param"
                )
            return [str(location)]

        @task(max_active_tis_per_dagrun=4)
        def reconcile(location_id: str) -> dict[str, Any]:
            """Reconcile one location; returns its run report (a small dict) to XCom."""
            from airflow_provider_contacts.sync.runner import config_from_params, run_reconcile

            values = effective_params(get_current_context()["params"], defaults)
            report = run_reconcile(
                source_conn_id=values["source_conn_id"],
                target_conn_id=values["target_conn_id"],
                location_id=location_id,
                mapping_path=mapping_file,
                config=config_from_params(values, interval),
                target_schema=values["target_schema"],
            )
            return report.to_dict()  # the engine has logged it as a table

        @task(outlets=list(TABLE_ASSETS.values()))
        def publish_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
            """Log the combined report and emit one asset event per table with its counts."""
            context = get_current_context()
            # One slice request for the mapped tasks' reports. Iterating the lazy XCom sequence
            # instead asks for item after item until one is missing, and the Task SDK logs that
            # probe as "[error] XCom not found ... offset=<n>" in every successful run.
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
                "backfilled": merge_nested([r.get("backfilled", {}) for r in reports]),
                "warnings": [w for r in reports for w in r["warnings"]],
            }
            log.info("reconcile summary: %s", summary)
            return summary

        publish_report(reconcile.expand(location_id=resolve_locations()))

    dag.fileloc = caller  # the DAG file, not this module (the dag-processor sets it too)
    return dag
