"""The default token store (an Airflow Variable) inside real Airflow task processes: a mapped task
with 3 map indexes runs in 3 LocalExecutor worker processes at once, each with 3 threads sharing one
OAuth connection whose access tokens expire every 2 s. The tasks read and write the Variable (and its
refresh lock) through the Task SDK and the api-server's execution API, as every task in Airflow 3
does. No refresh token may be sent twice and no call may fail.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import uuid
from pathlib import Path

import pytest

from airflow_provider_contacts.auth import TokenSet, default_variable_key
from test_auth_oauth import install_app
from test_token_store_concurrency import BYTECODE_ENV, LIFETIME_S, PROCESSES, RUN_S, THREADS, check

DAG_ID = "ghl_token_store_mapped"
CONN_ID = "ghl_tasks"

DAG = textwrap.dedent(
    f"""
    from airflow.sdk import DAG, task

    with DAG("{DAG_ID}", schedule=None, catchup=False) as dag:

        @task
        def hammer(worker: int) -> None:
            import hashlib, json, os, threading, time
            from pathlib import Path
            from urllib.parse import parse_qsl

            import requests

            from airflow_provider_contacts.auth import _in_task_process
            from airflow_provider_contacts.hooks.contacts import ContactsHook

            events, guard = [], threading.Lock()
            _send = requests.Session.send

            def send(self, request, **kwargs):
                response = _send(self, request, **kwargs)
                if request.url.endswith("/oauth/token"):
                    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
                    sent = dict(parse_qsl(body)).get("refresh_token")
                    try:
                        error = response.json().get("error")
                    except Exception:
                        error = None
                    with guard:
                        events.append({{"rt": hashlib.sha256(sent.encode()).hexdigest()[:16] if sent else None,
                                       "status": response.status_code, "error": error}})
                return response

            requests.Session.send = send
            results = Path(os.environ["GHL_TEST_RESULTS_DIR"])
            hooks = [ContactsHook("{CONN_ID}") for _ in range({THREADS})]
            for hook in hooks:
                hook.token_source.store.load()
            (results / f"ready{{worker}}").touch()
            deadline = time.time() + 120
            while len(list(results.glob("ready*"))) < {PROCESSES}:  # start together
                assert time.time() < deadline, "the other mapped tasks did not start"
                time.sleep(0.01)
            end = time.time() + {RUN_S}
            calls, failures, errors = [0], [0], []

            def work(hook):
                while time.time() < end:
                    try:
                        hook.get_contacts(limit=1)
                        with guard:
                            calls[0] += 1
                    except Exception as exc:
                        with guard:
                            failures[0] += 1
                            errors.append(f"{{type(exc).__name__}}: {{str(exc)[:600]}}")
                    time.sleep(0.05)

            threads = [threading.Thread(target=work, args=(hook,)) for hook in hooks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            result = {{"calls": calls[0], "failures": failures[0], "errors": errors[:5], "events": events,
                      "refreshes": sum(hook.token_source.refreshes for hook in hooks),
                      "in_task": _in_task_process()}}
            (results / f"worker{{worker}}.json").write_text(json.dumps(result))

        hammer.expand(worker=list(range({PROCESSES})))
    """
)


class _ClusterVariable:
    """The token Variable, read from the cluster's SQLite metadata DB (no Fernet key there)."""

    def __init__(self, db_path: Path, key: str) -> None:
        self.db_path, self.key = db_path, key

    def load(self) -> TokenSet:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            (value,) = db.execute("SELECT val FROM variable WHERE key=?", (self.key,)).fetchone()
        return TokenSet.from_json(value)

    def __repr__(self) -> str:
        return f"VariableTokenStore(key={self.key!r}) in Airflow tasks"


class _Admin:
    """What ``check`` needs of a sandbox (a child-process one here)."""

    def __init__(self, server) -> None:
        self.base_url, self.admin = server.base_url, server.admin


@pytest.mark.integration
@pytest.mark.slow
def test_default_variable_store_in_mapped_tasks_of_a_real_deployment(tmp_path_factory) -> None:
    from airflow_cluster import AirflowCluster

    from ghl_sandbox.testing import SandboxConfig, SandboxServer

    dags, results = tmp_path_factory.mktemp("token-store-dags"), tmp_path_factory.mktemp("token-store-results")
    (dags / f"{DAG_ID}.py").write_text(DAG)
    with SandboxServer(SandboxConfig(contacts=50, seed=7, rate_limit=None), subprocess=True) as sandbox:
        app = install_app(sandbox)
        conn = {
            "conn_type": "ghl", "host": sandbox.base_url, "password": "",
            "extra": {"location_id": sandbox.location_id, "auth_type": "oauth", "client_id": app["client_id"],
                      "client_secret": app["client_secret"], "refresh_token": app["refresh_token"]},
        }  # no token_store extra: the default Variable store
        env = {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn), "GHL_TEST_RESULTS_DIR": str(results),
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", **BYTECODE_ENV}
        sandbox.admin.configure(access_token_lifetime_s=LIFETIME_S)
        home = tmp_path_factory.mktemp(f"airflow-token-store-{uuid.uuid4().hex[:6]}")
        with AirflowCluster(home, env, dags_folder=dags) as cluster:
            run = cluster.run_dag(DAG_ID, timeout=240)
            assert run.state == "success", run.describe()
            outcome = [json.loads((results / f"worker{i}.json").read_text()) for i in range(PROCESSES)]
            assert all(r["in_task"] for r in outcome)  # Task SDK path, not the metadata DB
            numbers = check(_Admin(sandbox), app, outcome, _ClusterVariable(cluster.db_path, default_variable_key(CONN_ID)))
    assert numbers["calls"] > 0
