"""The ``ghl_contacts_reconcile`` DAG, run with ``dag.test()`` against the sandbox.

A user installs the provider, sets ``ghl_default``, and the DAG fills SQLite under AIRFLOW_HOME
(no ``ghl_target`` needed); an agency syncs several sub-accounts in one run; downstream DAGs get
an asset event per table with the counts. The DAG is built by the library
(``build_reconcile_dag``, with the mapping shipped in the package), and Airflow's trigger form
accepts it as it comes: every param is optional and may be left empty.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ghl_sandbox.scenario import apply_mutations

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "ghl_contacts_reconcile"
RECONCILE_PARAMS = {
    "source_conn_id", "target_conn_id", "target_schema", "location_ids", "full_sweep", "sweep_period_hours",
    "max_requests_per_run", "overlap_minutes", "batch_size", "hard_delete", "max_delete_fraction",
    "location_name_pattern",
}


# -- the trigger form ------------------------------------------------------------------------------
def trigger_form_params(dag: Any) -> tuple[dict[str, dict[str, Any]], Any]:
    """The params as the UI's trigger form gets them: the DAG serialized and read back as the
    API server holds it (``SerializedParamsDict``), each param dumped as the DAG details endpoint
    sends it (``{"value", "schema", "description", "source"}``). Also returns the server's params
    dict, whose ``deep_merge(conf).validate()`` is what a triggered run's conf goes through."""
    from airflow.serialization.serialized_objects import DagSerialization

    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return {name: param.dump() for name, param in served.params.items()}, served.params


def form_requires(spec: dict[str, Any]) -> bool:
    """The form's rule (airflow/ui, ``isRequired``): a param with a schema type that does not
    admit ``"null"`` is required; left empty (null, ``""``) it is an error and Trigger is disabled."""
    kind = spec["schema"].get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def trigger_form_blockers(dag: Any) -> list[str]:
    """The params that keep the form's Trigger button disabled with the DAG's defaults."""
    form, _ = trigger_form_params(dag)
    return [name for name, spec in form.items() if form_requires(spec) and spec["value"] in (None, "", [])]


def nullable_params(dag: Any) -> list[str]:
    """The params the form lets a user leave empty."""
    form, _ = trigger_form_params(dag)
    return [name for name, spec in form.items() if not form_requires(spec)]


@pytest.fixture
def reconcile_dag(airflow_db: Path) -> Any:
    """The DAG, parsed afresh for each test (``dag.test(run_conf=...)`` leaves the conf in the
    DAG object's params, which would leak into the next test)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "ghl_contacts_reconcile.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(DAG_ID)
    for task in dag.tasks:
        task.retries = 0  # failures here are meant; no 30 s retry delays in tests
    return dag


def agency_connection(sandbox: Any, token_file: Path) -> str:
    """An OAuth agency (Company) connection, as an agency installs a marketplace app: the hook
    exchanges its token for each sub-account's location token."""
    import httpx

    client_id, secret = sandbox.admin.create_oauth_client()
    code = sandbox.admin.authorize(client_id, user_type="Company", company_id=sandbox.company_id)
    tokens = httpx.post(
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "authorization_code",
              "code": code, "user_type": "Company"},
    ).json()
    extra = {
        "auth_type": "oauth", "client_id": client_id, "client_secret": secret,
        "refresh_token": tokens["refresh_token"], "user_type": "Company", "company_id": sandbox.company_id,
        "rotation_store": f"file:{token_file}",
    }
    return json.dumps({"conn_type": "ghl", "host": sandbox.base_url, "extra": extra})


@pytest.fixture
def embedded_target() -> Iterator[Path]:
    """The embedded default target file, absent before and removed after the test."""
    path = Path(os.environ["AIRFLOW_HOME"]) / "ghl_contacts.sqlite"
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    yield path
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def _counts(path: Path, location_id: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE location_id = ? AND deleted_at IS NULL", (location_id,)
            ).fetchone()[0]
            for table in ("ghl_contacts", "ghl_tasks", "ghl_notes")
        }


def _task_states(run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}


def _asset_events(run_id: str) -> dict[str, dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == run_id)
        ).all()
    return {name: extra for name, extra in rows}


def _error_lines(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every error-level line logged so far: structlog's console lines (``[error    ]``) on
    stdout/stderr and stdlib records at ERROR or above."""
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if re.search(r"\[(error|critical|exception)\s*\]", line)]
    return lines + [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_dag_syncs_into_the_embedded_sqlite_and_emits_asset_events(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, embedded_target: Path,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.admin.reset(contacts=60)
    truth = sandbox.admin.dump()

    first = reconcile_dag.test()
    assert str(first.state) == "success", _task_states(first)
    # A successful run logs nothing at error level (publish_report used to probe the mapped
    # reports' XCom one offset too far: "[error] XCom not found ... offset=1").
    assert _error_lines(capfd, caplog) == []
    assert _counts(embedded_target, sandbox.location_id) == {
        "ghl_contacts": len(truth["contacts"]),
        "ghl_tasks": len(truth["tasks"]),
        "ghl_notes": len(truth["notes"]),
    }
    events = _asset_events(first.run_id)
    assert set(events) == {"ghl_contacts", "ghl_tasks", "ghl_notes"}
    assert events["ghl_contacts"]["inserted"] == 60
    assert events["ghl_contacts"]["locations"] == [sandbox.location_id]

    done = apply_mutations(sandbox.admin)
    # The conf the trigger form sends with every field but one left empty: the defaults apply.
    left_empty = ("source_conn_id", "target_conn_id", "target_schema", "location_ids", "batch_size", "sweep_period_hours")
    second = reconcile_dag.test(run_conf={"full_sweep": True, **dict.fromkeys(left_empty)})
    assert str(second.state) == "success", _task_states(second)
    truth = sandbox.admin.dump()
    assert _counts(embedded_target, sandbox.location_id) == {
        "ghl_contacts": len(truth["contacts"]),
        "ghl_tasks": len(truth["tasks"]),
        "ghl_notes": len(truth["notes"]),
    }
    events = _asset_events(second.run_id)
    assert events["ghl_contacts"]["inserted"] == len(done.contacts_created)
    assert events["ghl_contacts"]["deleted"] == len(done.contacts_deleted)
    with sqlite3.connect(embedded_target) as db:
        state = dict(db.execute("SELECT name, value_json FROM ghl_sync_state").fetchall())
        columns = {row[1] for row in db.execute("PRAGMA table_info(ghl_contacts)")}
    assert json.loads(state["last_run"])["mode"] == "full"
    # The location's own custom fields are columns, whatever their names.
    assigned = json.loads(state["custom_field_columns"])["fields"]
    assert {f["id"] for f in truth["customFields"]} == set(assigned)
    assert {a["column"] for a in assigned.values()} <= columns
    assert _error_lines(capfd, caplog) == []


def test_dag_syncs_several_locations_in_parallel_mapped_tasks(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.admin.reset(contacts=30)
    second_location = sandbox.admin.add_location(contacts=25)
    target = tmp_path / "agency.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_AGENCY_TARGET", json.dumps({"conn_type": "sqlite", "host": str(target)}))
    monkeypatch.setenv("AIRFLOW_CONN_GHL_AGENCY", agency_connection(sandbox, tmp_path / "tokens.json"))

    run = reconcile_dag.test(
        run_conf={
            "location_ids": [sandbox.location_id, second_location],
            "source_conn_id": "ghl_agency",
            "target_conn_id": "agency_target",
        }
    )
    states = _task_states(run)
    assert str(run.state) == "success", states
    assert states["reconcile[0]"] == states["reconcile[1]"] == "success"
    for location in (sandbox.location_id, second_location):
        truth = sandbox.admin.dump(location)
        assert _counts(target, location)["ghl_contacts"] == len(truth["contacts"])
        assert _counts(target, location)["ghl_tasks"] == len(truth["tasks"])


@pytest.fixture
def alert_webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A local HTTP endpoint standing in for a Slack webhook; yields the alerts it received."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GHL_RECONCILE_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    yield received
    server.shutdown()
    thread.join(timeout=10)


def test_a_missing_target_connection_fails_the_run_and_alerts(
    reconcile_dag: Any, sandbox: Any, ghl_conn: str, alert_webhook: list[dict[str, Any]]
) -> None:
    sandbox.admin.reset(contacts=5)
    run = reconcile_dag.test(run_conf={"target_conn_id": "no_such_target"})
    assert str(run.state) == "failed"
    assert _task_states(run)["reconcile[0]"] == "failed"
    assert len(alert_webhook) == 1
    text = alert_webhook[0]["text"]
    assert "ghl_contacts_reconcile.reconcile[0]" in text and "no_such_target" in text
    assert sandbox.token not in text


def test_a_failing_alert_webhook_does_not_log_its_url(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook URL is a secret (Slack puts the token in its path); requests' errors quote it."""
    import logging

    from airflow_provider_contacts.sync.alerts import failure_alert

    monkeypatch.setenv("GHL_RECONCILE_ALERT_WEBHOOK", "http://127.0.0.1:1/services/T0/B0/secret-token")
    with caplog.at_level(logging.ERROR, logger="airflow_provider_contacts.sync.alerts"):
        failure_alert({"run_id": "r1", "exception": RuntimeError("boom")})
    assert "did not accept the alert: ConnectionError" in caplog.text
    assert "secret-token" not in caplog.text


# -- the DAG as a library piece ---------------------------------------------------------------------
def test_the_dag_file_is_a_few_lines_over_the_library_builder(reconcile_dag: Any) -> None:
    from airflow_provider_contacts.sync import build_reconcile_dag
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE

    dag_file = REPO_ROOT / "dags" / "ghl_contacts_reconcile.py"
    text = dag_file.read_text(encoding="utf-8")
    assert "build_reconcile_dag(" in text and "@task" not in text and len(text.splitlines()) < 20
    assert [t.task_id for t in reconcile_dag.tasks] == ["resolve_locations", "reconcile", "publish_report"]
    assert str(REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml") in reconcile_dag.doc_md  # the copy beside it

    library = build_reconcile_dag()  # what a user's two-line DAG file gets
    assert library.dag_id == DAG_ID and set(library.params) == RECONCILE_PARAMS
    assert library.timetable == reconcile_dag.timetable and library.max_active_runs == 1
    assert library.fileloc == __file__  # the calling file, as the dag-processor sets it
    assert str(DEFAULT_MAPPING_FILE) in library.doc_md and "docs/reconcile.md" in library.doc_md
    assert {t.task_id for t in library.tasks} == {t.task_id for t in reconcile_dag.tasks}


def test_the_default_mapping_ships_inside_the_package() -> None:
    import fnmatch
    import tomllib

    import yaml

    import airflow_provider_contacts
    from airflow_provider_contacts.sync import DEFAULT_MAPPING_FILE, FieldMapping

    package_dir = Path(airflow_provider_contacts.__file__).resolve().parent
    assert DEFAULT_MAPPING_FILE.is_file() and DEFAULT_MAPPING_FILE.resolve().is_relative_to(package_dir)
    FieldMapping.load(DEFAULT_MAPPING_FILE)  # valid
    # The wheel carries it: package data of its package (setuptools' [tool.setuptools.package-data]).
    package = ".".join(DEFAULT_MAPPING_FILE.resolve().parent.relative_to(package_dir.parent).parts)
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = [*package_data.get("*", []), *package_data.get(package, [])]
    assert any(fnmatch.fnmatch(DEFAULT_MAPPING_FILE.name, pattern) for pattern in patterns), patterns
    # dags/ghl_contacts_mapping.yaml is the editable copy of the example DAG: the same mapping.
    example = yaml.safe_load((REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml").read_text(encoding="utf-8"))
    assert example == yaml.safe_load(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8"))


def test_the_builder_takes_an_id_a_schedule_a_mapping_and_new_param_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from datetime import timedelta

    from airflow_provider_contacts.sync.alerts import failure_alert
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE, build_reconcile_dag, run_interval_of

    mapping = tmp_path / "warehouse_mapping.yaml"
    shutil.copy(DEFAULT_MAPPING_FILE, mapping)
    dag = build_reconcile_dag(
        "ghl_reconcile_warehouse",
        schedule="0 6 * * *",
        mapping=mapping,
        params={"target_conn_id": "warehouse", "location_ids": ["loc1", "loc2"]},
        default_args={"retries": 0},
        tags=["crm"],
    )
    assert dag.dag_id == "ghl_reconcile_warehouse" and set(dag.tags) == {"crm"}
    assert dag.params["target_conn_id"] == "warehouse" and dag.params["location_ids"] == ["loc1", "loc2"]
    assert "(empty: 'warehouse')" in dag.params.get_param("target_conn_id").description
    assert dag.default_args["retries"] == 0 and dag.default_args["on_failure_callback"] is failure_alert
    assert str(mapping) in dag.doc_md
    assert run_interval_of(dag.timetable) == timedelta(days=1)  # sizes the sweep slice of a daily DAG
    assert "run interval (sizes the task/note sweep): 1 day" in dag.doc_md
    assert trigger_form_blockers(dag) == []

    monkeypatch.chdir(tmp_path)  # a relative path: from the current directory
    assert str(mapping) in build_reconcile_dag("rel", mapping="warehouse_mapping.yaml").doc_md
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        build_reconcile_dag("missing", mapping=tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="unknown param 'target_conn'; did you mean 'target_conn_id'"):
        build_reconcile_dag("typo", params={"target_conn": "warehouse"})
    with pytest.raises(ValueError, match="param 'batch_size'"):
        build_reconcile_dag("bad", params={"batch_size": 0})

    assert run_interval_of(build_reconcile_dag("d", schedule=timedelta(hours=2)).timetable) == timedelta(hours=2)
    assert run_interval_of(build_reconcile_dag("q", schedule="*/15 * * * *").timetable) == timedelta(minutes=15)
    assert run_interval_of(build_reconcile_dag("m", schedule=None).timetable) is None  # manual: one hour assumed


# -- the trigger form ------------------------------------------------------------------------------
def test_the_trigger_form_detects_a_required_param_left_empty() -> None:
    """The helper's rule catches what disabled the Trigger button before: non-null types with
    empty defaults."""
    from airflow.sdk import DAG, Param

    before = DAG("before", schedule=None, params={
        "target_schema": Param("", type="string"),
        "location_ids": Param([], type="array", items={"type": "string"}),
        "source_conn_id": Param("ghl_default", type="string"),
    })
    assert trigger_form_blockers(before) == ["target_schema", "location_ids"]
    assert nullable_params(before) == []


def test_the_trigger_form_accepts_the_defaults_and_every_param_left_empty(reconcile_dag: Any) -> None:
    from datetime import timedelta

    from airflow_provider_contacts.sync.dag import effective_params
    from airflow_provider_contacts.sync.runner import config_from_params

    assert trigger_form_blockers(reconcile_dag) == []  # Trigger is enabled as the DAG comes
    assert set(nullable_params(reconcile_dag)) == RECONCILE_PARAMS  # all optional
    form, served = trigger_form_params(reconcile_dag)
    defaults = {name: spec["value"] for name, spec in form.items()}
    assert defaults["target_schema"] is None and defaults["location_ids"] is None
    assert served.validate() == defaults == reconcile_dag.params.validate()
    for name in RECONCILE_PARAMS:  # each one left empty (the form sends null)
        assert served.deep_merge({name: None}).validate()[name] is None
    everything_empty = dict.fromkeys(RECONCILE_PARAMS)
    served.deep_merge(everything_empty).validate()
    for bad in ({"batch_size": "many"}, {"location_ids": "loc1"}, {"max_delete_fraction": 2}):
        with pytest.raises(Exception, match="Invalid input for param"):
            served.deep_merge(bad).validate()

    # What the tasks make of empty params: the defaults (None schema/locations: the database's
    # default schema, the connection's location).
    assert effective_params(everything_empty, defaults) == defaults
    blank = {"source_conn_id": " ", "target_schema": "", "location_ids": [], "full_sweep": None}
    assert effective_params(blank, defaults) == defaults
    assert effective_params({"location_ids": [" a ", "", "b", "a"]}, defaults)["location_ids"] == ["a", "b"]
    hourly = timedelta(hours=1)
    assert config_from_params(effective_params(everything_empty, defaults), hourly) == config_from_params({}, hourly)
    assert config_from_params(everything_empty, hourly) == config_from_params({}, hourly)
