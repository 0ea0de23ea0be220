"""A real Airflow 3 deployment on the CeleryExecutor for integration tests: api-server, scheduler,
dag-processor, triggerer and two ``airflow celery worker`` processes, as an agency would run it.

Modelled on :mod:`airflow_cluster` (the LocalExecutor deployment), with what a distributed
deployment has instead:

* the metadata database and the Celery result backend are **PostgreSQL**: a database of its own,
  ``ghl_celery_<hex>``, created on the server of ``postgres_url`` and dropped after;
* the Celery broker is **Redis**: a database number of its own (``broker_db``) and a queue of its
  own (``ghl_celery_<hex>``), so parallel runs on one Redis never take each other's tasks;
* two workers (``-c concurrency`` task slots each) pick the tasks off the queue; the tasks run in
  the workers' processes under the Task SDK and reach the metadata only through the api-server.

Each worker skips ``serve-logs`` (both would bind port 8793 on one machine); every service writes
task logs to the shared AIRFLOW_HOME, where :meth:`DagRunResult.describe` reads them.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_cluster import AIRFLOW_BIN, SERVICES, AirflowCluster


def _with_database(url: str, database: str, scheme: str | None = None) -> str:
    """``url`` pointing at another database (and, optionally, with another scheme)."""
    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


class CeleryCluster(AirflowCluster):
    """Starts and stops a CeleryExecutor deployment; triggers DAG runs and waits for them.

    :param home: AIRFLOW_HOME of the services (created).
    :param extra_env: more environment for every service (e.g. ``AIRFLOW_CONN_*``).
    :param postgres_url: a PostgreSQL server the test may create a database on
        (``postgresql://user@host:port/db``, e.g. ``GHL_TEST_POSTGRES_URL``).
    :param redis_url: the Redis server of the broker (``redis://host:port/db``; the db is replaced
        by ``broker_db``).
    :param broker_db: Redis database number of the broker.
    :param workers: Celery workers to start; ``concurrency``: task slots of each.
    """

    def __init__(self, home: Path, extra_env: dict[str, str], *, postgres_url: str, redis_url: str,
                 dags_folder: Path | None = None, broker_db: int = 14, workers: int = 2,
                 concurrency: int = 2) -> None:
        super().__init__(home, extra_env, dags_folder)
        suffix = secrets.token_hex(4)
        self.database = f"ghl_celery_{suffix}"
        self.queue = f"ghl_celery_{suffix}"
        self.postgres_url = postgres_url
        self.workers = workers
        self.metadata_url = _with_database(postgres_url, self.database, "postgresql+psycopg2")
        redis = urlsplit(redis_url)
        self.broker_url = urlunsplit((redis.scheme, redis.netloc, f"/{broker_db}", "", ""))
        self.env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": _with_database(postgres_url, self.database, "db+postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            # The workers' calls to the api-server's execution API: 5 s by default, too short for a
            # busy CI machine running 6 Airflow processes (a timed-out start is a failed attempt).
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__CORE__PARALLELISM": str(max(4, workers * concurrency)),
            **extra_env,
        })
        self._created = False

    # -- database ------------------------------------------------------------------------------
    def _admin_sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(sql)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 600.0) -> CeleryCluster:
        """Create the database, migrate it, start the services and the workers; wait for the api-server.

        On any failure everything started so far is stopped and the database dropped (a context
        manager's ``__exit__`` does not run when ``__enter__`` raises)."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> CeleryCluster:
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self._admin_sql(f'CREATE DATABASE "{self.database}"')
        self._created = True
        self._cli("db", "migrate", timeout=timeout)
        commands = {name: [AIRFLOW_BIN, name] for name in SERVICES}
        for i in range(1, self.workers + 1):
            commands[f"celery-worker-{i}"] = [
                AIRFLOW_BIN, "celery", "worker", "--celery-hostname", f"ghl-worker-{i}@%h", "--queues", self.queue,
                "--skip-serve-logs", "--without-gossip", "--without-mingle",
            ]
        self._spawn(commands)
        self._wait_for_api(timeout)
        return self

    def stop(self) -> None:
        """Stop every service and worker, then drop the database."""
        try:
            super().stop()
        finally:
            if self._created:
                self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                self._created = False
            self._flush_queue()

    def _flush_queue(self) -> None:
        """Remove this cluster's queue and Celery bookkeeping from the broker DB (keys of its queue only)."""
        try:
            import redis
        except ImportError:
            return
        client = redis.Redis.from_url(self.broker_url)
        try:
            keys = [self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"]
            keys += [k for k in client.scan_iter(match=f"{self.queue}*")]
            client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()

    def set_pool(self, name: str, slots: int, description: str) -> None:
        """Create or resize an Airflow pool (``airflow pools set``)."""
        self._cli("pools", "set", name, str(slots), description, timeout=120)

    def worker_task_counts(self) -> dict[str, int]:
        """Task workloads each Celery worker received (from its log)."""
        counts = {}
        for name, path in self.service_logs.items():
            if name.startswith("celery-worker") and path.exists():
                text = path.read_text(errors="replace")  # "Task execute_workload[<id>] received"
                counts[name] = len(re.findall(r"Task \S+\[[0-9a-f-]+\] received", text))
        return counts

    # -- metadata reads (PostgreSQL instead of SQLite) ------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        url = _with_database(self.postgres_url, self.database)
        for attempt in range(5):
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    return conn.execute(sql.replace("?", "%s"), params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []  # not migrated yet
            except psycopg.OperationalError:
                if attempt == 4:
                    raise
                time.sleep(1.0)
        return []


def env_urls() -> tuple[str | None, str | None]:
    """``(GHL_TEST_POSTGRES_URL, GHL_TEST_REDIS_URL)`` from the environment (``None`` where unset)."""
    return os.environ.get("GHL_TEST_POSTGRES_URL"), os.environ.get("GHL_TEST_REDIS_URL")
