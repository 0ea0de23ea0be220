"""Test-wide setup: an isolated AIRFLOW_HOME and Airflow's unit-test settings.

Airflow reads its configuration when first imported, so everything here happens at import time of
this conftest, before any test module imports Airflow. The sandbox fixtures (``sandbox``,
``sandbox_factory``) come from the package's own pytest plugin,
``ghl_sandbox.pytest_plugin``, opted into below with ``pytest_plugins`` (installing the provider
forces no fixtures on anyone's pytest sessions; a user's conftest opts in the same way, or
``pytest -p ghl_sandbox.pytest_plugin``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["ghl_sandbox.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers such as airflow_cluster

_home = Path(tempfile.mkdtemp(prefix="ghl-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# One Fernet key for this process and every child it starts on the same metadata database: trigger
# kwargs (e.g. an AssetWatcher's) are stored encrypted, and a child `dag.test()` that re-syncs the
# dags folder must decrypt what this process wrote. A test-only key, encrypting nothing real.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "kJ0aRwLiELFCPMLniat1NdId-GXjAWZxebz9S6mkp1E=")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite in the session's AIRFLOW_HOME).

    ``dag.test()`` and Variables need it; migrating once per session costs a few seconds.
    """
    from airflow.utils import db

    db.initdb()
    return _home


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the PostgreSQL server for target tests, from ``GHL_TEST_POSTGRES_URL``."""
    url = os.environ.get("GHL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("GHL_TEST_POSTGRES_URL is not set: PostgreSQL target tests need a server (.ci/run sets it)")
    return url


def _webhook_receiver_env(home: Path, sandbox) -> tuple[dict[str, str], object]:
    """``[ghl_webhooks]`` settings of the cluster's webhook receiver (mounted on its api-server at
    ``/ghl-webhooks``): an Ed25519 test key whose private half the tests sign with
    (``cluster.webhook_signing_key``), plus the sandbox's own webhook keys when it has them, so
    events the sandbox sends verify too. HighLevel's published RSA key stays in."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from airflow_provider_contacts.webhooks.verify import HIGHLEVEL_RSA_PUBLIC_KEY_PEM

    key = ed25519.Ed25519PrivateKey.generate()
    ed_pems = [key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()]
    rsa_pems = [HIGHLEVEL_RSA_PUBLIC_KEY_PEM]
    try:
        sandbox_keys = sandbox.webhook_keys()
        ed_pems.append(sandbox_keys["ed25519_public_key_pem"])
        rsa_pems.append(sandbox_keys["rsa_public_key_pem"])
    except Exception:  # noqa: BLE001 - a sandbox without webhook keys: the test key only
        pass
    home.mkdir(parents=True, exist_ok=True)
    ed_path, rsa_path = home / "ghl_webhooks_ed25519.pem", home / "ghl_webhooks_rsa.pem"
    ed_path.write_text("\n".join(ed_pems))
    rsa_path.write_text("\n".join(rsa_pems))
    env = {"AIRFLOW__GHL_WEBHOOKS__ED25519_PUBLIC_KEY": str(ed_path), "AIRFLOW__GHL_WEBHOOKS__RSA_PUBLIC_KEY": str(rsa_path)}
    return env, key


@pytest.fixture(scope="session")
def airflow_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real Airflow deployment (api-server, scheduler with LocalExecutor, dag-processor,
    triggerer) over the repository's ``dags/``, wired to a sandbox HighLevel API in a child
    process (300 contacts, seed 7) through ``AIRFLOW_CONN_GHL_DEFAULT``. The reconcile DAG's
    default target ``ghl_target`` is a SQLite file (``cluster.target_path``), so a run with every
    param at its default (the UI's Trigger form) works; the UI's connection *Test* is enabled.

    Offers ``run_dag(dag_id, conf=None, timeout=300) -> DagRunResult``, ``sandbox``,
    ``target_path``, ``api_url`` and ``airflow_home``. Starting it takes about 20 s; it is shared
    by the whole session.
    """
    import json

    from airflow_cluster import AirflowCluster

    from ghl_sandbox.testing import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(contacts=300, seed=7), subprocess=True) as sandbox:
        home = tmp_path_factory.mktemp("airflow-cluster")
        target = home / "ghl_target.sqlite"
        webhook_env, webhook_key = _webhook_receiver_env(home, sandbox)
        cluster = AirflowCluster(home, {
            "AIRFLOW_CONN_GHL_DEFAULT": sandbox.conn_json(),
            "AIRFLOW_CONN_GHL_TARGET": json.dumps({"conn_type": "sqlite", "host": str(target)}),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            **webhook_env,  # the webhook receiver's keys (tests/test_webhooks_api_server.py)
            # dags/ghl_contacts_events.py (tests/test_integration_webhook_events.py): its own target,
            # event-triggered runs only, a watcher polling every second.
            "AIRFLOW_CONN_GHL_EVENTS_IT": json.dumps({"conn_type": "sqlite", "host": str(home / "ghl_events_it.sqlite")}),
            "GHL_EVENTS_TARGET_CONN_ID": "ghl_events_it",
            "GHL_EVENTS_SCHEDULE": "none",
            "GHL_EVENTS_POLL_INTERVAL": "1",
        })
        cluster.sandbox = sandbox  # type: ignore[attr-defined]
        cluster.target_path = target  # type: ignore[attr-defined]
        cluster.webhook_signing_key = webhook_key  # type: ignore[attr-defined]
        with cluster:
            yield cluster


# -- test layers -------------------------------------------------------------------------------
#: Fixtures that put a test in the contract layer (the sandbox over real HTTP).
_CONTRACT_FIXTURES = {"sandbox", "sandbox_factory", "ghl_conn", "ghl_conn_factory", "airflow_db"}
#: Module text that shows a test talks HTTP, starts processes or a database of its own.
_CONTRACT_SIGNS = ("SandboxServer", "http.server", "HTTPServer", "subprocess", "multiprocessing", "postgres_url",
                   "support.chaos", "dag.test(", "airflow_cluster")
_module_signs: dict[str, bool] = {}


def _module_talks_to_something(path: Path) -> bool:
    key = str(path)
    if key not in _module_signs:
        text = path.read_text(encoding="utf-8")
        _module_signs[key] = any(sign in text for sign in _CONTRACT_SIGNS)
    return _module_signs[key]


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its layer, so each layer can be run alone (README, "Tests"):

    * ``integration``: real Airflow services (marked by the tests themselves);
    * ``contract``: the sandbox or a stub server over real HTTP, child processes, databases;
    * ``fast``: everything else (no HTTP, no Airflow services: mapping, transforms, models, retry
      decisions), which runs in seconds.
    """
    for item in items:
        if "airflow_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)  # the one shared deployment (scripts/test.sh)
        if item.get_closest_marker("integration"):
            continue
        if set(getattr(item, "fixturenames", ())) & _CONTRACT_FIXTURES or _module_talks_to_something(Path(item.fspath)):
            item.add_marker(pytest.mark.contract)
        else:
            item.add_marker(pytest.mark.fast)

