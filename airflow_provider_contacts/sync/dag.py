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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from airflow_provider_contacts.sync.alerts import failure_callbacks
from airflow_provider_contacts.sync.report import summarize_rows

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier
    from airflow.sdk.bases.timetable import BaseTimetable

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DAG_ID",
    "DEFAULT_MAPPING_FILE",
    "DEFAULT_SCHEDULE",
    "TABLE_ASSETS",
    "asset_extra",
    "build_reconcile_dag",
    "check_location_ids",
    "default_params",
    "effective_params",
    "run_interval_of",
]

DEFAULT_DAG_ID = "ghl_contacts_reconcile"
DEFAULT_SCHEDULE = timedelta(hours=1)
#: The mapping shipped inside the package (package data; the wheel carries it).
DEFAULT_MAPPING_FILE = Path(__file__).with_name("ghl_contacts_mapping.yaml")
#: One asset per table; ``publish_report`` emits an event on each with the table's counts in its
#: ``extra`` (see :func:`asset_extra`).
TABLE_ASSETS = {
    table: Asset(name=table, uri=f"ghl://reconcile/{table}", group="ghl")
    for table in ("ghl_contacts", "ghl_tasks", "ghl_notes")
}

#: Params whose empty value has its own meaning (the database's default schema, the source
#: connection's location) instead of "the default value".
_EMPTY_MEANS_UNSET = frozenset({"target_schema", "location_ids", "location_name_pattern"})
_EMPTY_MEANING = {
    "target_schema": "the database's default schema",
    "location_ids": "the source connection's location_id, or every location an agency connection's app is installed on",
    "location_name_pattern": "every installed location",
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
        "Locations to sync, one mapped task each (agency connection: a filter on the installed locations)",
    ),
    "location_name_pattern": (
        None,
        {"type": ["string", "null"]},
        "Agency connection: sync the installed locations whose name matches (a glob such as 'Acme *', "
        "else a part of the name; case-insensitive)",
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


def check_location_ids(location_ids: Sequence[Any] | None, param: str = "location_ids") -> None:
    """Refuse ``location_ids`` entries that are not HighLevel ids (the check the hook applies to
    every id it puts into a URL path, :func:`~airflow_provider_contacts.hooks.paths.is_highlevel_id`),
    before any request: ``../etc`` would otherwise reach HighLevel as a location.

    :raises GHLValidationError: naming the DAG param, every bad entry and the fix (the
        ``resolve_locations`` task fails at once on it).
    """
    if not location_ids:
        return
    from airflow_provider_contacts.errors import GHLValidationError
    from airflow_provider_contacts.hooks.paths import MAX_ID_LENGTH, is_highlevel_id

    bad = [loc for loc in location_ids or () if not is_highlevel_id(loc)]
    if bad:
        shown = ", ".join(repr(loc) if len(repr(loc)) <= 80 else repr(loc)[:77] + "..." for loc in bad)
        raise GHLValidationError(
            f"DAG param {param!r}: {shown} {'is not a HighLevel location id' if len(bad) == 1 else 'are not HighLevel location ids'} "
            f"(letters, digits, _ and -, 1 to {MAX_ID_LENGTH} characters, e.g. 'sx6wyHhbFdRXh302LLNR'); "
            f"correct or remove {'it' if len(bad) == 1 else 'them'} in {param} (a location's id is in HighLevel under "
            "Settings > Business Profile, and in the sub-account's URL after /location/), or leave "
            f"{param} empty to sync {_EMPTY_MEANING['location_ids']}"
        )


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


def format_rows(summary: Mapping[str, Any]) -> str:
    """The per-table totals of :func:`~.report.summarize_rows` as a text table for the log."""
    names = ("upserted", "unchanged", "deleted", "quarantined", "rejected", "column_errors")
    head = f"{'table':<14}" + "".join(f"{n:>14}" for n in names)
    lines = [head, "-" * len(head)]
    for table, counts in summary["tables"].items():
        lines.append(f"{table:<14}" + "".join(f"{counts.get(n, 0):>14}" for n in names))
    return "\n".join(lines)


def asset_extra(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], table: str) -> dict[str, Any]:
    """The ``extra`` of the asset event of ``table`` for a run: the table's counts summed over the
    run's locations (``upserted``, ``inserted``, ``updated``, ``unchanged``, ``deleted``,
    ``quarantined``, ``rejected``, ``column_errors``), ``locations`` (ids), ``target`` (the first
    target's name, ``None`` without locations), and ``per_location``: ``{location id: {upserted,
    deleted, quarantined, column_errors}}``. ``summary`` is :func:`~.report.summarize_rows` of
    ``rows``; the size grows with the number of locations only."""
    totals = summary["tables"].get(table) or {}
    return {
        **{k: v for k, v in totals.items() if k != "locations"},
        "locations": list(totals.get("locations") or summary["locations"]),
        "target": summary["targets"][0] if summary["targets"] else None,
        "per_location": {
            str(r["location_id"]): {k: r.get(k, 0) for k in ("upserted", "deleted", "quarantined", "column_errors")}
            for r in rows
            if r.get("table") == table
        },
    }


def resolve_dag_file(path: str | os.PathLike[str] | None, default: Path, caller: str, what: str) -> str:
    """The absolute path of a DAG builder's file argument ``path`` (``None``: ``default``): as Python
    opens it (``Path(__file__).with_name(...)`` is relative when ``__file__`` is), else a bare name
    next to the DAG file ``caller``; absolute either way, for the workers.

    :raises FileNotFoundError: ``"<what> '<path>' does not exist"``.
    """
    chosen = default if path is None else Path(path).expanduser()
    if not chosen.is_absolute():
        here = chosen.resolve()
        chosen = here if here.is_file() else Path(caller).resolve().parent / chosen
    if not chosen.is_file():
        raise FileNotFoundError(f"{what} {str(chosen)!r} does not exist")
    return str(chosen)


def _doc_md(dag_id: str, mapping: Path, run_interval: timedelta, alerts: str) -> str:
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
        f"- failure alerts: {alerts}\n"
    )


def build_reconcile_dag(
    dag_id: str = DEFAULT_DAG_ID,
    *,
    schedule: Any = DEFAULT_SCHEDULE,
    mapping: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    run_interval: timedelta | None = None,
    notifiers: Sequence[BaseNotifier | Callable[..., Any]] | None = None,
    event_driven: bool = False,
    events_asset: Any = None,
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
    :param notifiers: Airflow notifiers called when a task fails (any ``BaseNotifier``, e.g.
        ``SmtpNotifier``, ``SlackNotifier``,
        :class:`~airflow_provider_contacts.sync.alerts.GHLWebhookNotifier`); their templates get
        the alert line as ``{{ ghl_alert }}`` and a subject as ``{{ ghl_alert_subject }}``.
        ``None`` (default): the failure is logged and posted to ``$GHL_RECONCILE_ALERT_WEBHOOK``
        when that variable is set on the workers
        (:func:`~airflow_provider_contacts.sync.alerts.failure_alert`). See docs/observability.md.
    :param event_driven: also run when HighLevel webhook events are pending (``docs/webhooks-sync.md``):
        the schedule becomes "``schedule`` or the events asset" (``AssetOrTimeSchedule``; the asset
        alone when ``schedule`` is ``None``), and each run applies the location's pending events
        first and runs the deletion scan and the task/note sweep at the budget the event stream
        allows (:mod:`~airflow_provider_contacts.sync.events`).
    :param events_asset: the asset whose watcher announces pending events; default
        :func:`~airflow_provider_contacts.triggers.webhook_events.webhook_events_asset` on the
        ``target_conn_id`` / ``target_schema`` defaults of ``params``.
    :param dag_kwargs: passed to ``DAG`` and override its defaults (``start_date`` 2025-01-01 UTC,
        ``catchup=False``, ``max_active_runs=1``, ``tags``, ``description``, ``doc_md``);
        ``default_args`` are merged over ours (2 retries 30 s apart, ``on_failure_callback`` from
        ``notifiers``). The retries are for errors a retry may cure (timeouts, 5xx, 429, a dropped
        database connection); a mapping error, a bad param or connection, a missing scope or a
        location the token may not access fails the task at once
        (:func:`~airflow_provider_contacts.failures.failing_fast`).
    :raises ValueError: among others, a ``location_ids`` default that is not a list of HighLevel ids.
    """
    caller = sys._getframe(1).f_code.co_filename
    mapping_file = resolve_dag_file(mapping, DEFAULT_MAPPING_FILE, caller, "build_reconcile_dag: mapping file")
    mapping_path = Path(mapping_file)

    dag_params = default_params(params)
    defaults = {name: param.value for name, param in dag_params.items()}
    try:
        check_location_ids(effective_params(defaults, defaults)["location_ids"])
    except Exception as exc:  # noqa: BLE001 - GHLValidationError: a bad default, refused at parse time
        raise ValueError(f"build_reconcile_dag: params: {exc}") from None
    default_args = {
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": failure_callbacks(notifiers),
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
    # -- webhook events (sync/events.py): the events asset joins the schedule
    if event_driven:
        schedule, run_interval = _event_schedule(schedule, run_interval, events_asset, defaults)
    # --

    with DAG(dag_id, schedule=schedule, params=dag_params, default_args=default_args, **kwargs) as dag:
        interval = run_interval if run_interval is not None else run_interval_of(dag.timetable) or DEFAULT_SCHEDULE
        if interval <= timedelta(0):
            raise ValueError(f"build_reconcile_dag: run_interval must be positive, not {interval}")
        alerts = (
            "`$GHL_RECONCILE_ALERT_WEBHOOK` when set" if notifiers is None
            else ", ".join(f"`{getattr(n, '__qualname__', None) or type(n).__name__}`" for n in notifiers) or "none"
        )
        dag.doc_md = user_doc if user_doc is not None else _doc_md(dag_id, mapping_path, interval, alerts)

        @task
        def resolve_locations() -> list[str]:
            """The locations to sync: the ``location_ids`` param, else the connection's location, else
            (an agency connection) every location the app is installed on, narrowed by
            ``location_ids`` and ``location_name_pattern`` (``sync.locations.plan_locations``). The
            plan (skipped and uninstalled locations) goes to XCom key ``location_plan``."""
            from airflow_provider_contacts.failures import failing_fast
            from airflow_provider_contacts.sync.locations import PLAN_XCOM_KEY, plan_locations

            context = get_current_context()
            values = effective_params(context["params"], defaults)
            # A bad param, connection or scope fails at once; an unreachable API is retried.
            with failing_fast(f"{dag_id}.resolve_locations", ghl_conn_id=values["source_conn_id"]):
                check_location_ids(values["location_ids"])
                plan = plan_locations(values, mapping_path=mapping_file)
            context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan.to_dict())
            return plan.locations

        @task(max_active_tis_per_dagrun=4, map_index_template="{{ task.op_kwargs['location_id'] }}")
        def reconcile(location_id: str) -> list[dict[str, Any]]:
            """Reconcile one location; returns its run report as a small table to XCom: one flat
            row per target table (:func:`~airflow_provider_contacts.sync.report.report_rows`)."""
            from airflow_provider_contacts.failures import failing_fast
            from airflow_provider_contacts.sync.report import report_rows
            from airflow_provider_contacts.sync.runner import config_from_params, run_reconcile

            values = effective_params(get_current_context()["params"], defaults)
            # A mapping error, a bad param or connection, a missing scope or a location the token
            # may not access fails this location's task at once (the other locations' mapped
            # tasks run on); timeouts, 5xx, 429 after the hook's retries and dropped database
            # connections stay retryable (airflow_provider_contacts.failures).
            with failing_fast(f"{dag_id}.reconcile", ghl_conn_id=values["source_conn_id"], location_id=location_id):
                events = None
                if event_driven:  # webhook events first (sync/events.py)
                    from airflow_provider_contacts.sync.events import EventSync

                    events = EventSync(run_id=get_current_context()["run_id"])
                report = run_reconcile(
                    source_conn_id=values["source_conn_id"],
                    target_conn_id=values["target_conn_id"],
                    location_id=location_id,
                    mapping_path=mapping_file,
                    config=config_from_params(values, interval),
                    target_schema=values["target_schema"],
                    events=events,
                )
            # The whole report (warnings, examples, custom fields) is in the task log (the engine
            # logs it as a table) and in the target's ghl_sync_state.last_run; XCom gets the rows.
            return report_rows(report)

        @task(outlets=list(TABLE_ASSETS.values()))
        def publish_report(reports: list[list[dict[str, Any]]]) -> dict[str, Any]:
            """Sum the locations' rows per table, emit one asset event per table with its counts
            (:func:`asset_extra`) and return the summary (:func:`~.report.summarize_rows`)."""
            context = get_current_context()
            # One slice request for the mapped tasks' reports. Iterating the lazy XCom sequence
            # instead asks for item after item until one is missing, and the Task SDK logs that
            # probe as "[error] XCom not found ... offset=<n>" in every successful run.
            rows = [row for rows_of_location in reports[:] for row in (rows_of_location or [])]
            summary = summarize_rows(rows)
            for table, asset in TABLE_ASSETS.items():
                context["outlet_events"][asset].extra = asset_extra(summary, rows, table)
            # The warnings' text is in each location's reconcile log: here, where to look.
            summary["warnings"] = [
                f"location {loc}: {n} warning(s), see its reconcile task log"
                for loc, n in summary["warnings_by_location"].items()
            ]
            # Agency discovery (resolve_locations): requested locations where the app is not
            # installed, and locations of this target whose app was uninstalled (left as they are).
            plan = context["ti"].xcom_pull(task_ids="resolve_locations", key="location_plan") or {}
            summary["not_installed_locations"] = plan.get("not_installed", [])
            summary["uninstalled_locations"] = plan.get("uninstalled", [])
            summary["warnings"] = [*plan.get("warnings", []), *summary["warnings"]]
            log.info("reconcile summary: %s\n%s", summary, format_rows(summary))
            return summary

        publish_report(reconcile.expand(location_id=resolve_locations()))

    dag.fileloc = caller  # the DAG file, not this module (the dag-processor sets it too)
    return dag


def _event_schedule(
    schedule: Any, run_interval: timedelta | None, events_asset: Any, defaults: Mapping[str, Any]
) -> tuple[Any, timedelta | None]:
    """The schedule of an event-driven reconcile DAG (``build_reconcile_dag(event_driven=True)``):
    ``schedule`` or the webhook events asset (``AssetOrTimeSchedule``), and the run interval of
    ``schedule`` alone (it sizes the sweep; event-triggered runs in between sweep nothing)."""
    from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule

    from airflow_provider_contacts.triggers.webhook_events import webhook_events_asset

    asset = events_asset or webhook_events_asset(
        target_conn_id=defaults.get("target_conn_id") or "ghl_target", target_schema=defaults.get("target_schema")
    )
    if schedule is None:
        return [asset], run_interval
    timetable = DAG("_ghl_schedule_probe", schedule=schedule).timetable
    if run_interval is None:
        run_interval = run_interval_of(timetable)
    return AssetOrTimeSchedule(timetable=timetable, assets=[asset]), run_interval
