"""The reconcile DAG under a real Airflow 3 deployment: scheduler with LocalExecutor, dag-processor,
api-server; the tasks run in worker processes through the Task SDK (no metadata DB access).

The cluster's sandbox is shared with other tests, so this test works in a location of its own
(added through the admin surface) with its own HighLevel connection and its own SQLite target,
both created through the Airflow CLI as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.sync import FieldMapping, SqlSink
from ghl_sandbox.scenario import apply_mutations
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from support.verify import diff_target

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))

pytestmark = pytest.mark.integration


def _add_connection(cluster: Any, conn_id: str, conn: dict[str, Any]) -> None:
    subprocess.run(
        [AIRFLOW_BIN, "connections", "add", conn_id, "--conn-json", json.dumps(conn)],
        env=cluster.env, check=True, capture_output=True, timeout=120,
    )


def _diff(sandbox: Any, location_id: str, target: Path) -> list[str]:
    truth = sandbox.admin.dump(location_id)
    mapping = FieldMapping.load(MAPPING_FILE)
    mapping.resolve_custom_fields(truth["customFields"])
    with SqlSink(EmbeddedSqliteHook(target), mapping) as sink:
        return diff_target(sink, mapping, location_id, truth)


def test_reconcile_runs_under_the_scheduler_and_converges(airflow_cluster: Any) -> None:
    sandbox = airflow_cluster.sandbox
    location = sandbox.admin.add_location(contacts=80)
    token = sandbox.admin.issue_token(location_id=location)
    _add_connection(airflow_cluster, "ghl_sched_test", {
        "conn_type": "ghl", "host": sandbox.base_url, "password": token, "extra": {"location_id": location},
    })
    target = airflow_cluster.airflow_home / "sched_test_target.sqlite"
    _add_connection(airflow_cluster, "sched_test_target", {"conn_type": "sqlite", "host": str(target)})
    conf = {"source_conn_id": "ghl_sched_test", "target_conn_id": "sched_test_target"}

    first = airflow_cluster.run_dag("ghl_contacts_reconcile", conf=conf, timeout=400)
    assert first.state == "success", first.describe()
    assert first.task_states["reconcile[0]"] == "success"
    assert first.task_states["publish_report"] == "success"
    assert _diff(sandbox, location, target) == []

    apply_mutations(sandbox.admin, location, seed=23)
    second = airflow_cluster.run_dag(
        "ghl_contacts_reconcile", conf={**conf, "sweep_period_hours": 1}, timeout=400
    )
    assert second.state == "success", second.describe()
    assert _diff(sandbox, location, target) == []
