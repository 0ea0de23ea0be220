"""A real Airflow 3 deployment for integration tests: api-server, scheduler (LocalExecutor),
dag-processor and triggerer as separate processes over the repository's ``dags/`` folder.

``dag.test()`` runs tasks in the test process with direct access to the metadata database; real
workers do not have it (they talk to the api-server's execution API). DAGs that pass here also
pass in a real deployment: the tasks run in LocalExecutor worker processes under the Task SDK,
deferrable sensors go through the triggerer.

The services share one AIRFLOW_HOME (SQLite metadata DB, logs) and a sandbox HighLevel API in a
child process; ``AIRFLOW_CONN_GHL_DEFAULT`` points the services at it. The test process itself
only triggers runs through the CLI and reads run states from the metadata DB (a reader, never a
writer).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_STATES = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DagRunResult:
    """Outcome of one DAG run: its final state and each task instance's state."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    log_dir: Path
    service_logs: dict[str, Path] = field(default_factory=dict)

    def describe(self, tail_lines: int = 40) -> str:
        """States plus the tails of the task logs and service logs, for assertion messages."""
        parts = [f"dag run {self.dag_id}/{self.run_id}: {self.state}", f"tasks: {self.task_states}"]
        run_logs = sorted(self.log_dir.glob(f"dag_id={self.dag_id}/run_id={self.run_id}/**/*.log"))
        for path in run_logs:
            lines = path.read_text(errors="replace").splitlines()[-tail_lines:]
            parts.append(f"--- {path.relative_to(self.log_dir)}\n" + "\n".join(lines))
        for name, path in self.service_logs.items():
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-tail_lines // 2 :]
                parts.append(f"--- service {name}\n" + "\n".join(lines))
        return "\n".join(parts)


class AirflowCluster:
    """Starts and stops the Airflow services; triggers DAG runs and waits for them.

    :param home: AIRFLOW_HOME of the services (created).
    :param extra_env: more environment for every service (e.g. ``AIRFLOW_CONN_*``).
    :param dags_folder: DAGs to serve; the repository's ``dags/`` by default.
    """

    def __init__(self, home: Path, extra_env: dict[str, str], dags_folder: Path | None = None) -> None:
        self.airflow_home = home
        self.api_port = _free_port()
        self.db_path = home / "airflow.db"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env: dict[str, str] = {
            **base,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO_ROOT / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            **extra_env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.service_logs: dict[str, Path] = {}

    @property
    def api_url(self) -> str:
        """Root URL of the api-server: the UI (``/``) and the REST API (``/api/v2``)."""
        return f"http://127.0.0.1:{self.api_port}"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> AirflowCluster:
        """Migrate the DB, start the four services and wait until the api-server answers."""
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self._cli("db", "migrate", timeout=timeout)
        self._spawn({name: [AIRFLOW_BIN, name] for name in SERVICES})
        self._wait_for_api(timeout)
        return self

    def _spawn(self, commands: dict[str, list[str]]) -> None:
        """Start each named command in its own session, its output in ``<home>/<name>.log``."""
        for name, cmd in commands.items():
            log_path = self.airflow_home / f"{name}.log"
            self.service_logs[name] = log_path
            with log_path.open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.airflow_home, start_new_session=True,
                )

    def stop(self) -> None:
        """Terminate every service (SIGTERM, then SIGKILL after 20 s)."""
        for proc in self.processes.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)

    def __enter__(self) -> AirflowCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- runs ------------------------------------------------------------------------------
    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 300.0) -> DagRunResult:
        """Trigger ``dag_id`` (waiting until the dag-processor has parsed it) and wait for the run.

        Returns when the run reaches success or failed; raises ``TimeoutError`` (with the
        run's description) if it does not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        self._wait_for_dag(dag_id, deadline)
        run_id = f"it__{dag_id}__{int(time.time() * 1000)}"
        self._cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf or {}), timeout=120)
        while True:
            self._check_services_alive()
            state = self._query_one("SELECT state FROM dag_run WHERE dag_id=? AND run_id=?", (dag_id, run_id))
            if state in TERMINAL_STATES or time.monotonic() > deadline:
                result = self._result(dag_id, run_id, str(state))
                if state not in TERMINAL_STATES:
                    raise TimeoutError(f"run did not finish in {timeout:.0f} s\n{result.describe()}")
                return result
            time.sleep(1.0)

    # -- internals -------------------------------------------------------------------------
    def _result(self, dag_id: str, run_id: str, state: str) -> DagRunResult:
        rows = self._query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id=? AND run_id=?", (dag_id, run_id)
        )
        task_states = {(t if m < 0 else f"{t}[{m}]"): str(s) for t, m, s in rows}
        return DagRunResult(dag_id, run_id, state, task_states, self.airflow_home / "logs", self.service_logs)

    def _cli(self, *args: str, timeout: float) -> str:
        proc = subprocess.run(
            [AIRFLOW_BIN, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.airflow_home,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def _query_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    def _wait_for_api(self, timeout: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        url = f"{self.api_url}/api/v2/monitor/health"
        while time.monotonic() < deadline:
            self._check_services_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"api-server did not answer on {url} in {timeout:.0f} s\n{self._service_tails()}")

    def _wait_for_dag(self, dag_id: str, deadline: float) -> None:
        while True:
            self._check_services_alive()
            row = self._query("SELECT is_paused FROM dag WHERE dag_id=?", (dag_id,))
            errors = self._query("SELECT filename, stacktrace FROM import_error", ())
            if row:
                if row[0][0]:
                    self._cli("dags", "unpause", dag_id, timeout=120)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG {dag_id} was not parsed in time; import errors: {errors}")
            time.sleep(1.0)

    def _check_services_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow services exited: {dead}\n{self._service_tails()}")

    def _service_tails(self, lines: int = 30) -> str:
        out = []
        for name, path in self.service_logs.items():
            if path.exists():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)
