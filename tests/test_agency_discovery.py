"""Agency discovery: ``GET /oauth/installedLocations`` in the sandbox and the hook, and the reconcile
DAG syncing every installed location of an agency connection alone (issue 13, "Done when").

An agency connection (extras ``auth_type: oauth``, ``user_type: Company``, ``company_id``, ``app_id``,
``client_id``, ``client_secret``, ``refresh_token``, no ``location_id``) and no ``location_ids``:
the DAG lists the installed locations, syncs each in a mapped task with its own location token into
one target (rows carry ``location_id``), picks up a location installed later on the next run, and
reports one uninstalled since, leaving its rows as they are.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_contacts.hooks.contacts import GHLContactsHook, forget_process_state


def _agency_conn(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app: dict[str, Any] | None = None,
                 **extra: Any) -> str:
    forget_process_state()
    conn_id = f"ghl_agency_{uuid.uuid4().hex[:8]}"
    value = sandbox.agency_conn_json(app, rotation_store=f"file:{tmp_path / 'tokens.json'}", **extra)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    return conn_id


def _listed(sandbox: Any, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{sandbox.base_url}/oauth/installedLocations", params=params,
                     headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"})


# -- the sandbox's endpoint -------------------------------------------------------------------------
def test_sandbox_lists_installed_locations_like_highlevel(sandbox: Any) -> None:
    sandbox.admin.reset(contacts=0)
    extra = [sandbox.admin.add_location() for _ in range(2)]
    app = sandbox.admin.install_oauth_app(user_type="Company")
    company, app_id = sandbox.company_id, app["app_id"]
    assert app["client_id"].startswith(app_id + "-")
    everyone = [sandbox.location_id, *extra]

    page = _listed(sandbox, app["access_token"], companyId=company, appId=app_id, limit="2", skip="1")
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 3 and body["installToFutureLocations"] is True
    assert [x["_id"] for x in body["locations"]] == everyone[1:]
    item = body["locations"][0]
    assert {"_id", "name", "address", "isInstalled", "versionId", "installedAt"} <= set(item)
    from test_sandbox_spec_conformance import _check, _load, _operations  # the spec's own schema

    spec = _load("oauth.json")
    schema = _operations(spec)["get-installed-location"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _check(spec, schema, body, "get-installed-location") == []
    assert item["isInstalled"] is True and item["installedAt"].endswith("Z")

    sandbox.admin.uninstall_app(app_id, extra[0])
    all_of_them = _listed(sandbox, app["access_token"], companyId=company, appId=app["client_id"]).json()
    assert [(x["_id"], x["isInstalled"]) for x in all_of_them["locations"]] == [
        (sandbox.location_id, True), (extra[0], False), (extra[1], True)]
    installed = _listed(sandbox, app["access_token"], companyId=company, appId=app_id, isInstalled="true").json()
    assert [x["_id"] for x in installed["locations"]] == [sandbox.location_id, extra[1]]
    named = _listed(sandbox, app["access_token"], companyId=company, appId=app_id, query="location 3").json()
    assert [x["_id"] for x in named["locations"]] == [extra[1]]

    # No location token for an uninstalled location; installed again later, there is one.
    minted = httpx.post(f"{sandbox.base_url}/oauth/locationToken", data={"companyId": company, "locationId": extra[0]},
                        headers={"Authorization": f"Bearer {app['access_token']}", "Version": "2021-07-28"})
    assert minted.status_code == 400 and "not installed" in minted.json()["message"]
    sandbox.admin.install_app(app_id, extra[0])
    assert extra[0] in sandbox.admin.installations(app_id)["locations"]

    # Errors: a location token (live: the authClass 401), a missing companyId, another company or app.
    assert _listed(sandbox, sandbox.token, companyId=company, appId=app_id).json()["message"].startswith(
        "This authClass type is not allowed")
    assert _listed(sandbox, app["access_token"], appId=app_id).status_code == 422
    assert _listed(sandbox, app["access_token"], companyId="other", appId=app_id).status_code == 400
    assert _listed(sandbox, app["access_token"], companyId=company, appId="otherapp").status_code == 400
    assert sandbox.admin.counters()["by_operation"]["get-installed-location"] == 8


# -- the hook -------------------------------------------------------------------------------------------
def test_hook_lists_every_page_and_filters(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sandbox.admin.reset(contacts=0)
    for _ in range(4):
        sandbox.admin.add_location()
    conn_id = _agency_conn(sandbox, monkeypatch, tmp_path)
    everyone = sandbox.admin.info()["locations"]
    hook = GHLContactsHook(conn_id)
    sandbox.admin.reset_counters()

    found = hook.installed_locations(page_size=2)  # 5 locations: more than a page
    assert [loc.id for loc in found] == everyone
    assert sandbox.admin.counters()["by_operation"]["get-installed-location"] == 3  # 2 + 2 + 1, no extra
    assert found[0].name == "Sandbox Location 1" and found[0].isInstalled is True and found[0].address

    assert [loc.id for loc in hook.installed_locations(name_pattern="sandbox location [24]")] == [everyone[1], everyone[3]]
    assert [loc.id for loc in hook.installed_locations(name_pattern="LOCATION 5")] == [everyone[4]]
    assert [loc.id for loc in hook.installed_locations(ids=[everyone[2], "notThere"])] == [everyone[2]]

    app_id = json.loads(hook.get_connection(conn_id).extra)["app_id"]
    sandbox.admin.uninstall_app(app_id, everyone[1])
    assert [loc.id for loc in hook.installed_locations()] == [everyone[0], *everyone[2:]]
    flags = {loc.id: loc.isInstalled for loc in hook.installed_locations(installed_only=False, page_size=3)}
    assert flags == {**dict.fromkeys(everyone, True), everyone[1]: False}

    # Installed again later, and a new location (the agency installed the app for future ones).
    sandbox.admin.install_app(app_id, everyone[1])
    newcomer = sandbox.admin.add_location()
    assert [loc.id for loc in asyncio.run(hook.ainstalled_locations(page_size=4))] == [*everyone, newcomer]
    assert hook.installed_locations.operation_id == "get-installed-location"


def test_discovery_needs_an_agency_oauth_connection(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_contacts.errors import GHLAuthError, GHLConfigError

    monkeypatch.setenv("AIRFLOW_CONN_GHL_PIT_AGENCY", json.dumps({
        "conn_type": "ghl", "host": sandbox.base_url, "password": sandbox.admin.issue_token(user_type="Company"),
        "extra": {"user_type": "Company", "company_id": sandbox.company_id, "app_id": "abc"}}))
    with pytest.raises(GHLAuthError, match="agency Private Integration token") as err:
        GHLContactsHook("ghl_pit_agency").installed_locations()
    assert "auth_type='oauth', user_type='Company', company_id, app_id" in str(err.value)
    monkeypatch.setenv("AIRFLOW_CONN_GHL_PIT_LOCATION", sandbox.conn_json())
    with pytest.raises(GHLConfigError, match="not an agency connection"):
        GHLContactsHook("ghl_pit_location").installed_locations()


def test_the_run_plan_filters_by_ids_and_name(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE
    from airflow_provider_contacts.sync.locations import plan_locations

    sandbox.admin.reset(contacts=0)
    second, third = sandbox.admin.add_location(), sandbox.admin.add_location()
    app = sandbox.admin.install_oauth_app(user_type="Company", location_ids=[sandbox.location_id, second, third])
    conn_id = _agency_conn(sandbox, monkeypatch, tmp_path, app)
    sandbox.admin.uninstall_app(app["app_id"], third)
    values = {"source_conn_id": conn_id, "target_conn_id": "no_target_yet", "target_schema": None,
              "location_ids": None, "location_name_pattern": None}

    plan = plan_locations(values, mapping_path=DEFAULT_MAPPING_FILE)
    assert (plan.source, plan.locations, plan.not_installed) == ("discovery", [sandbox.location_id, second], [])
    assert plan.names[second] == "Sandbox Location 2"
    plan = plan_locations({**values, "location_ids": [second, third]}, mapping_path=DEFAULT_MAPPING_FILE)
    assert plan.locations == [second] and plan.not_installed == [third]
    assert any(third in w and "not installed" in w for w in plan.warnings)
    plan = plan_locations({**values, "location_name_pattern": "*location 1"}, mapping_path=DEFAULT_MAPPING_FILE)
    assert plan.locations == [sandbox.location_id]


# -- the reconcile DAG: an agency connection alone --------------------------------------------------
def _reconcile_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_reconcile.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("ghl_contacts_reconcile")
    for task in dag.tasks:
        task.retries = 0  # a failure here is a finding, not a 30 s wait
    return dag


def _synced(summary: dict[str, Any]) -> set[str]:
    """The locations a run's report names (its ``locations``)."""
    return set(summary["locations"])


def _run(dag: Any, **conf: Any) -> tuple[Any, dict[str, Any]]:
    run = dag.test(run_conf=conf)
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    summary = next(ti for ti in run.get_task_instances() if ti.task_id == "publish_report").xcom_pull(
        task_ids="publish_report")
    return run, summary


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_agency_connection_alone_syncs_every_installed_location(
    kind: str, sandbox: Any, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    import os

    from airflow_provider_contacts.sync import FieldMapping, SqlSink, get_target_hook
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE
    from support.verify import diff_target, live_rows

    schema = None
    if kind == "postgresql":
        url = os.environ.get("GHL_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("GHL_TEST_POSTGRES_URL is not set: the PostgreSQL target needs a server (.ci/run sets it)")
        schema = f"ghl_agency_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("AIRFLOW_CONN_AGENCY_TARGET", url)
    else:
        monkeypatch.setenv("AIRFLOW_CONN_AGENCY_TARGET", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "t.sqlite")}))

    sandbox.admin.reset(contacts=12)
    locations = [sandbox.location_id, sandbox.admin.add_location(contacts=9), sandbox.admin.add_location(contacts=7)]
    app = sandbox.admin.install_oauth_app(user_type="Company")
    conn_id = _agency_conn(sandbox, monkeypatch, tmp_path, app)
    dag = _reconcile_dag()  # dags/ghl_contacts_reconcile.py: build_reconcile_dag() as a user's DAG file has it
    conf = {"source_conn_id": conn_id, "target_conn_id": "agency_target", "target_schema": schema}
    mapping = FieldMapping.load(DEFAULT_MAPPING_FILE)

    def check(expected: list[str]) -> None:
        with SqlSink(get_target_hook("agency_target"), mapping, schema=schema) as sink:
            for location in expected:
                assert diff_target(sink, mapping, location, sandbox.truth(location)) == [], location

    try:
        sandbox.admin.reset_counters()
        _, summary = _run(dag, **conf)  # no location ids anywhere: discovery
        assert _synced(summary) == set(locations) and summary["uninstalled_locations"] == []
        assert summary["tables"]["ghl_contacts"]["inserted"] == 12 + 9 + 7
        check(locations)  # one target, every location's tables equal to HighLevel's
        by_op = sandbox.admin.counters()["by_operation"]
        assert by_op["get-location-access-token"] == 3  # one location token per location
        assert by_op["get-access-token"] == 1  # the agency's refresh token rotated once
        if kind == "postgresql":
            return

        # Next run: one location uninstalled, one added (the app is installed on future locations).
        with SqlSink(get_target_hook("agency_target"), mapping) as sink:
            kept = live_rows(sink, "contacts", locations[1])
        sandbox.admin.uninstall_app(app["app_id"], locations[1])
        added = sandbox.admin.add_location(contacts=5)
        sandbox.admin.create_contact(locations[0], firstName="Later", email="later@example.com")
        _, summary = _run(dag, **conf)
        assert summary["uninstalled_locations"] == [locations[1]]
        assert any(locations[1] in w and "left as they are" in w for w in summary["warnings"])
        assert _synced(summary) == {locations[0], locations[2], added}
        assert summary["tables"]["ghl_contacts"]["inserted"] == 1 + 5
        check([locations[0], locations[2], added])
        with SqlSink(get_target_hook("agency_target"), mapping) as sink:
            now = live_rows(sink, "contacts", locations[1])
        # Left as it was: every row, every column it had (the new location's custom fields may
        # have added columns to the shared table since).
        assert {cid: {k: row[k] for k in kept[cid]} for cid, row in now.items()} == kept
    finally:
        if schema:
            get_target_hook("agency_target").run(f"DROP SCHEMA IF EXISTS {schema} CASCADE", autocommit=True)
