"""The example DAGs parse cleanly and run end to end with ``dag.test()`` against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sensors_contacts import after_check

DAGS = Path(__file__).resolve().parent.parent / "dags"
EXAMPLES = sorted(DAGS.glob("ghl_example_*.py"))


def _bag(path: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path), safe_mode=False)


def _states(run) -> dict[str, str]:
    return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_dag_parses_without_import_errors(path: Path, airflow_db) -> None:
    bag = _bag(path)
    assert not bag.import_errors, bag.import_errors
    assert [d.dag_id for d in bag.dags.values()] == [path.stem]
    dag = bag.dags[path.stem]
    assert {"ghl", "example"} <= set(dag.tags) and dag.description


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_dag_params_suit_the_trigger_form(path: Path, airflow_db) -> None:
    """As Airflow's trigger form sees them: the defaults validate, no param the form requires is
    empty (the Trigger button is enabled as the DAG comes), and each optional (nullable) param can
    be left empty."""
    from test_reconcile_dag import nullable_params, trigger_form_blockers, trigger_form_params

    dag = _bag(path).dags[path.stem]
    assert trigger_form_blockers(dag) == []
    _, served = trigger_form_params(dag)
    assert served.validate() == dag.params.validate()
    for name in nullable_params(dag):
        assert served.deep_merge({name: None}).validate()[name] is None
    served.deep_merge(dict.fromkeys(nullable_params(dag))).validate()


def test_there_is_an_example_for_each_group_of_operators_and_a_deferrable_sensor() -> None:
    used = "\n".join(p.read_text() for p in EXAMPLES)
    for module in ("contacts", "tasks", "notes", "tags", "appointments", "followers", "campaigns", "workflows", "businesses"):
        assert f"airflow_provider_contacts.operators.{module} import" in used, module
    assert "deferrable=True" in used and "AssetWatcher(" in used


def test_new_lead_followup_waits_for_the_tagged_lead_then_follows_up(sandbox, ghl_conn, airflow_db) -> None:
    dag = _bag(DAGS / "ghl_example_new_lead_followup.py").dags["ghl_example_new_lead_followup"]
    lead = sandbox.admin.dump()["contacts"][10]
    tag_it = lambda: sandbox.admin.update_contact(lead["id"], tags=[*lead["tags"], "new-lead"])  # noqa: E731
    with after_check(sandbox, "search-contacts-advanced", tag_it):
        run = dag.test()
    states = _states(run)
    assert run.state == "success", states
    assert states["wait_for_new_leads"] == "success" and states["create_follow_up_task[0]"] == "success"
    data = sandbox.admin.dump()
    tasks = [t for t in data["tasks"] if t["contactId"] == lead["id"] and t["title"] == "Call the new lead"]
    notes = [n for n in data["notes"] if n["contactId"] == lead["id"] and n.get("title") == "New lead"]
    tags = {c["id"]: c for c in data["contacts"]}[lead["id"]]["tags"]
    assert len(tasks) == 1 and len(notes) == 1
    assert "followed-up" in tags and "new-lead" not in tags


def test_contact_hygiene_runs_and_exports_to_files(sandbox, ghl_conn, airflow_db, tmp_path) -> None:
    dag = _bag(DAGS / "ghl_example_contact_hygiene.py").dags["ghl_example_contact_hygiene"]
    run = dag.test(run_conf={"export_dir": str(tmp_path), "email": "jane.hygiene@example.com"})
    states = _states(run)
    assert run.state == "success", states
    vips = list(tmp_path.rglob("vips.jsonl"))
    assert len(vips) == 1
    exported = [json.loads(line) for line in vips[0].read_text().splitlines()]
    data = sandbox.admin.dump()
    assert {c["id"] for c in exported} == {c["id"] for c in data["contacts"] if "vip" in c["tags"]}
    jane = [c for c in data["contacts"] if c.get("email") == "jane.hygiene@example.com"]
    assert len(jane) == 1 and jane[0]["website"] == "https://acme.example.com" and set(jane[0]["tags"]) == {"vip"}
    assert not any(c.get("businessId") for c in data["contacts"])  # attached, listed, detached
    assert not any(c.get("lastName", "") and c["lastName"].startswith("manual__") for c in data["contacts"])
    business = list(tmp_path.rglob("business.jsonl"))[0].read_text().splitlines()
    assert len(business) == 25


def test_task_lifecycle_runs_on_the_oldest_contact(sandbox, ghl_conn, airflow_db) -> None:
    dag = _bag(DAGS / "ghl_example_task_lifecycle.py").dags["ghl_example_task_lifecycle"]
    before = sandbox.admin.dump()
    run = dag.test()
    states = _states(run)
    assert run.state == "success", states
    assert set(states.values()) == {"success"}
    after = sandbox.admin.dump()
    # The prep task and the note were created and cleaned up again.
    assert {t["id"] for t in after["tasks"]} == {t["id"] for t in before["tasks"]}
    assert {n["id"] for n in after["notes"]} == {n["id"] for n in before["notes"]}
    counters = sandbox.admin.counters()["by_operation"]
    for op in ("create-task", "update-task", "get-task", "update-task-completed", "delete-task", "create-note",
               "update-note", "get-note", "delete-note", "add-contact-to-campaign", "remove-contact-from-campaign",
               "remove-contact-from-every-campaign", "add-contact-to-workflow", "delete-contact-from-workflow",
               "get-appointments-for-contact", "get-all-tasks", "get-all-notes"):
        assert counters.get(op, 0) >= 1, op


def test_asset_driven_dag_runs_manually_with_nothing_to_fetch(sandbox, ghl_conn, airflow_db) -> None:
    dag = _bag(DAGS / "ghl_example_contacts_changed_asset.py").dags["ghl_example_contacts_changed_asset"]
    run = dag.test()
    states = _states(run)
    assert run.state == "success", states
    assert states == {"change_window": "skipped", "fetch_changed_contacts": "skipped"}
    assert sandbox.admin.counters()["total"] == 0


def test_asset_driven_dag_is_scheduled_by_the_contacts_watcher() -> None:
    import runpy

    module = runpy.run_path(str(DAGS / "ghl_example_contacts_changed_asset.py"))
    asset = module["contacts_changed"]
    assert list(module["dag"].timetable.asset_condition.objects) == [asset]
    assert asset.uri.startswith("ghl://") and asset.uri.endswith("/contacts")
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath.endswith("GHLContactsChangedEventTrigger") and kwargs["poll_interval"] == 30.0


def test_parsing_the_dags_does_not_import_the_http_stack_or_the_sync_engine() -> None:
    """The dag-processor parses these files over and over: the hook (requests, its async transport)
    and the reconcile engine (common-sql) are imported by the tasks and triggers that use them."""
    import subprocess
    import sys

    script = (
        "import glob, runpy, sys\n"
        f"for path in sorted(glob.glob({str(DAGS / '*.py')!r})):\n"
        "    runpy.run_path(path)\n"
        "heavy = ('requests', 'airflow_provider_contacts.hooks.contacts', 'airflow_provider_contacts.hooks.transport',\n"
        "         'airflow_provider_contacts.sync.engine', 'airflow.providers.common.sql.hooks.sql')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
