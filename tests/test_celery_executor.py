"""The reconcile DAG on a CeleryExecutor deployment (tests/celery_cluster.py): 2 Celery workers,
Redis as the broker, PostgreSQL as the metadata database, result backend and target.

An agency connection alone (Company OAuth, no location ids: the reconcile discovers the locations
the app is installed on and mints each one's token) syncs the 3 locations of a sandbox (its burst limit on: 100 requests per 10 s per app and location) as mapped tasks spread
over the workers, with the rate limit shared through Redis (``rate_limit_redis_conn_id``) and the
tasks in one pool. Every location's tables must equal the sandbox's data, and no location may have
gone past its limit: the sandbox counts, per (app, location), the most requests admitted in any
10 s and every 429.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from celery_cluster import CeleryCluster, env_urls

# Starting 6 Airflow processes on a fresh PostgreSQL database takes most of the time; a busy machine needs more.
pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(900)]

DAG_FILE = '''
from airflow_provider_contacts.sync.dag import build_reconcile_dag

# One pool for every HighLevel task: the workers never run more syncs at once than it has slots.
dag = build_reconcile_dag("ghl_celery_reconcile", schedule=None, default_args={"pool": "ghl_highlevel"})
'''


def _redis_conn(url: str) -> str:
    parts = urlsplit(url)
    extra = {"db": int((parts.path or "/0").strip("/") or 0)}
    conn: dict[str, Any] = {"conn_type": "redis", "host": parts.hostname, "port": parts.port or 6379, "extra": extra}
    if parts.password:
        conn["password"] = parts.password
    return json.dumps(conn)


def test_reconcile_of_three_locations_on_celery_with_a_shared_rate_limit(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_url, redis_url = env_urls()
    if not postgres_url or not redis_url:
        pytest.skip("GHL_TEST_POSTGRES_URL and GHL_TEST_REDIS_URL must both be set: the CeleryExecutor test needs "
                    "PostgreSQL (metadata, results, target) and Redis (broker, shared limits); .ci/run sets them")
    import redis

    from airflow_provider_contacts.sync import FieldMapping, SqlSink, get_target_hook
    from airflow_provider_contacts.sync.dag import DEFAULT_MAPPING_FILE
    from ghl_sandbox.testing import SandboxConfig, SandboxServer
    from support.verify import diff_target

    suffix = secrets.token_hex(4)
    schema, prefix = f"ghl_celery_{suffix}", f"ghl-celery-rl-{suffix}"
    home = tmp_path_factory.mktemp("celery-cluster")
    dags = home / "dags"
    dags.mkdir()
    (dags / "ghl_celery_reconcile.py").write_text(DAG_FILE)
    # 120 contacts: about 130 requests per location, so each location waits for its window once.
    config = SandboxConfig(seed=11, locations=3, contacts=120, rate_limit="100/10")
    with SandboxServer(config, subprocess=True) as sandbox:
        locations = list(sandbox.admin.info()["locations"])
        assert len(locations) == 3
        extras = {"rotation_store": f"file:{home / 'tokens.json'}", "rate_limit_redis_conn_id": "ghl_celery_redis",
                  "rate_limit_key_prefix": prefix}
        env = {
            # The agency app installed on every location: the reconcile discovers them (no location ids).
            "AIRFLOW_CONN_GHL_AGENCY": sandbox.agency_conn_json(**extras),
            "AIRFLOW_CONN_GHL_CELERY_REDIS": _redis_conn(redis_url),
            "AIRFLOW_CONN_GHL_CELERY_TARGET": postgres_url,
        }
        try:
            with CeleryCluster(home, env, postgres_url=postgres_url, redis_url=redis_url, dags_folder=dags) as cluster:
                cluster.set_pool("ghl_highlevel", 3, "HighLevel API calls: one slot per location synced at once")
                sandbox.admin.reset_counters()
                run = cluster.run_dag("ghl_celery_reconcile", timeout=600, conf={
                    "source_conn_id": "ghl_agency", "target_conn_id": "ghl_celery_target", "target_schema": schema})
                assert run.state == "success", run.describe()
                assert all(run.task_states[f"reconcile[{i}]"] == "success" for i in range(3)), run.task_states
                per_worker = cluster.worker_task_counts()
                # Both workers took tasks off the queue (5 task instances: resolve, 3 x reconcile, report).
                assert sum(per_worker.values()) >= 5 and all(n > 0 for n in per_worker.values()), per_worker
            usage = {row["location_id"]: row for row in sandbox.admin.counters()["limits"]}
            for location in locations:
                row = usage[location]
                # The sandbox admits at most its limit in any 10 s; what the shared limiter must avoid is
                # being refused: at most 1 % of a location's requests (a worker descheduled for longer
                # than the window's 220 ms margin on a busy machine), where unshared workers get dozens.
                assert row["peak"] <= row["max"] == 100 and row["admitted"] > 0, row
                assert row["throttled"] <= row["admitted"] // 100, row
            mapping = FieldMapping.load(DEFAULT_MAPPING_FILE)
            monkeypatch.setenv("AIRFLOW_CONN_GHL_CELERY_TARGET", postgres_url)
            with SqlSink(get_target_hook("ghl_celery_target"), mapping, schema=schema) as sink:
                for location in locations:
                    truth = sandbox.admin.dump(location)
                    assert truth["contacts"], location
                    assert diff_target(sink, mapping, location, truth) == [], location
        finally:
            _drop_schema(postgres_url, schema)
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
            client.close()


def _drop_schema(postgres_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
