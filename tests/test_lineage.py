"""OpenLineage for HighLevel reads and writes (``airflow_provider_contacts.lineage``).

With the OpenLineage provider configured (file transport), a reconcile run emits events whose
inputs are the location's contacts, tasks and notes (``highlevel://<host>``,
``locations/<id>/<entity>``) and whose outputs are the target tables; operators give their
read or write dataset; without the provider nothing is emitted and nothing breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.lineage import (
    convert_asset_to_openlineage,
    highlevel_dataset,
    operator_entity,
    operator_lineage,
    report_reconcile_lineage,
    sql_dataset,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class _UriHook:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def get_uri(self) -> str:
        return self.uri


def test_dataset_names_follow_the_openlineage_naming_of_each_database() -> None:
    assert highlevel_dataset("https://services.leadconnectorhq.com", "loc1", "contacts") == (
        "highlevel://services.leadconnectorhq.com", "locations/loc1/contacts")
    assert highlevel_dataset("http://user:pw@127.0.0.1:8123/api/", "loc1", "notes") == (
        "highlevel://127.0.0.1:8123", "locations/loc1/notes")  # no credentials, no path
    assert sql_dataset(_UriHook("postgresql://u:secret@Db.Example.com/crm"), "ghl_contacts") == (
        "postgres://db.example.com:5432", "crm.public.ghl_contacts")
    assert sql_dataset(_UriHook("postgresql://u@db:6543/crm"), "ghl_tasks", "sales") == (
        "postgres://db:6543", "crm.sales.ghl_tasks")
    assert sql_dataset(_UriHook("mysql://u@mysql.local/crm"), "ghl_notes") == ("mysql://mysql.local:3306", "crm.ghl_notes")
    assert sql_dataset(_UriHook("sqlite:////data/ghl.sqlite"), "ghl_notes") == ("sqlite:///data/ghl.sqlite", "main.ghl_notes")


def test_a_real_postgres_connection_names_like_the_postgres_provider() -> None:
    from airflow.providers.postgres.assets.postgres import convert_asset_to_openlineage as postgres_converter
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Asset, Connection

    hook = PostgresHook(connection=Connection.from_uri("postgres://etl:pw@warehouse.internal:5433/analytics",
                                                       conn_id="wh"))
    ours = sql_dataset(hook, "ghl_contacts", "crm")
    theirs = postgres_converter(Asset(uri="postgres://warehouse.internal:5433/analytics/crm/ghl_contacts"), None)
    assert ours == (theirs.namespace, theirs.name) == ("postgres://warehouse.internal:5433", "analytics.crm.ghl_contacts")


def test_operators_read_or_write_their_entity() -> None:
    assert operator_entity("search-contacts-advanced") == ("contacts", True)
    assert operator_entity("get-all-notes") == ("notes", True)
    assert operator_entity("update-task-completed") == ("tasks", False)
    assert operator_entity("get-appointments-for-contact") == ("appointments", True)
    assert operator_entity("add-tags") == ("contacts", False)


def test_operator_facets_are_read_by_the_openlineage_extractors(sandbox: Any, ghl_conn: str) -> None:
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    from airflow_provider_contacts.operators.contacts import GHLCreateContactOperator, GHLSearchContactsOperator

    class Run:
        run_id = "manual__lineage"

    search = GHLSearchContactsOperator(task_id="search")
    create = GHLCreateContactOperator(task_id="create", body={"firstName": "Ada"})
    metadata = ExtractorManager().extract_metadata(Run(), search, TaskInstanceState.SUCCESS, None)
    host = sandbox.base_url.split("://", 1)[1].rstrip("/")
    assert [(d.namespace, d.name) for d in metadata.inputs] == [
        (f"highlevel://{host}", f"locations/{sandbox.location_id}/contacts")]
    assert metadata.outputs == []
    written = ExtractorManager().extract_metadata(Run(), create, TaskInstanceState.SUCCESS, None)
    assert [d.name for d in written.outputs] == [f"locations/{sandbox.location_id}/contacts"] and written.inputs == []


def test_without_the_openlineage_provider_nothing_is_emitted_and_nothing_breaks(
    sandbox: Any, ghl_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator
    from airflow_provider_contacts.sync import DEFAULT_MAPPING_FILE, run_reconcile

    sandbox.admin.reset(contacts=5)
    for name in list(sys.modules):  # "not installed": every import of the provider fails
        if name.startswith("airflow.providers.openlineage"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage", None)
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401
    assert operator_lineage(GHLSearchContactsOperator(task_id="search")) is None
    monkeypatch.setenv("AIRFLOW_CONN_NO_OL_TARGET", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "n.sqlite")}))
    report = run_reconcile(source_conn_id="ghl_default", target_conn_id="no_ol_target", location_id=None,
                           mapping_path=DEFAULT_MAPPING_FILE)
    assert report.counts("contacts").inserted == 5
    # And with no lineage collector at all (common-compat missing), the report is a no-op.
    monkeypatch.setitem(sys.modules, "airflow.providers.common.compat.lineage.hook", None)
    assert report_reconcile_lineage(object(), "loc", object(), ["t"]) is False


def test_the_converter_needs_names_for_target_assets() -> None:
    from airflow.sdk import Asset

    asset = Asset(uri="highlevel://services.leadconnectorhq.com/locations/L1/tasks")
    dataset = convert_asset_to_openlineage(asset, None)
    assert (dataset.namespace, dataset.name) == ("highlevel://services.leadconnectorhq.com", "locations/L1/tasks")
    with pytest.raises(ValueError, match="needs extra"):
        convert_asset_to_openlineage(Asset(uri="highlevel-target://sqlite/x/main.t"), None)
    with pytest.raises(ValueError, match="/locations/<location id>/<entity>"):
        Asset(uri="highlevel://services.leadconnectorhq.com/contacts")


# -- the reconcile DAG with the OpenLineage provider and a file transport ------------------------
_RUN_DAG = textwrap.dedent("""
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    dag = build_reconcile_dag(DEFAULT_DAG_ID, default_args={"retries": 0})
    run = dag.test(run_conf={"target_conn_id": "lineage_target"})
    print("RUN_STATE", run.state)
""")


def test_a_reconcile_run_emits_its_inputs_and_outputs(
    airflow_db: Path, sandbox: Any, ghl_conn: str, tmp_path: Path
) -> None:
    """In a child process: the OpenLineage provider reads its transport when its plugin loads."""
    sandbox.admin.reset(contacts=8)
    events_file = tmp_path / "events.jsonl"
    target = tmp_path / "lineage.sqlite"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "ghl_tests",
        "AIRFLOW_CONN_LINEAGE_TARGET": json.dumps({"conn_type": "sqlite", "host": str(target)}),
    }
    done = subprocess.run([sys.executable, "-c", _RUN_DAG], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=280)
    assert "RUN_STATE success" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]

    events = [json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    complete = [e for e in events if e.get("eventType") == "COMPLETE"
                and e["job"]["name"].startswith("ghl_contacts_reconcile.reconcile")]
    assert complete, sorted({e["job"]["name"] for e in events})
    event = complete[0]
    host = sandbox.base_url.split("://", 1)[1].rstrip("/")
    assert sorted((d["namespace"], d["name"]) for d in event["inputs"]) == sorted(
        (f"highlevel://{host}", f"locations/{sandbox.location_id}/{entity}") for entity in ("contacts", "tasks", "notes"))
    assert sorted((d["namespace"], d["name"]) for d in event["outputs"]) == sorted(
        (f"sqlite://{target}", f"main.{table}") for table in ("ghl_contacts", "ghl_tasks", "ghl_notes"))
    assert sandbox.token not in events_file.read_text(encoding="utf-8")
