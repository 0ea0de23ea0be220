"""The reconcile DAG under a real Airflow 3 deployment: scheduler with LocalExecutor, dag-processor,
api-server; the tasks run in worker processes through the Task SDK (no metadata DB access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.sync import FieldMapping, SqlSink
from airflow_provider_contacts.sync.scenario import apply_mutations
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from airflow_provider_contacts.sync.verify import diff_target

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"

pytestmark = pytest.mark.integration


def _diff(cluster: Any) -> list[str]:
    sandbox = cluster.sandbox
    truth = sandbox.admin.dump()
    mapping = FieldMapping.load(MAPPING_FILE)
    mapping.resolve_custom_fields(truth["customFields"])
    with SqlSink(EmbeddedSqliteHook(cluster.airflow_home / "ghl_contacts.sqlite"), mapping) as sink:
        return diff_target(sink, mapping, sandbox.location_id, truth)


def test_reconcile_runs_under_the_scheduler_and_converges(airflow_cluster: Any) -> None:
    first = airflow_cluster.run_dag("ghl_contacts_reconcile", timeout=400)
    assert first.state == "success", first.describe()
    assert first.task_states["reconcile[0]"] == "success"
    assert first.task_states["publish_report"] == "success"
    assert _diff(airflow_cluster) == []

    apply_mutations(airflow_cluster.sandbox.admin, seed=23)
    second = airflow_cluster.run_dag("ghl_contacts_reconcile", conf={"sweep_period_hours": 1}, timeout=400)
    assert second.state == "success", second.describe()
    assert _diff(airflow_cluster) == []
