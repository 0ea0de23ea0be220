"""Install as documented: the README's install line, from a wheel built out of this checkout, into
a fresh virtual environment that shares nothing with the test environment; then a deployment with
only the two documented lines in its dags folder runs ``ghl_contacts_reconcile`` against the
sandbox the wheel carries (``python -m ghl_sandbox``) into SQLite.

This is what a user does on a new machine (README, "Install into an Airflow deployment"), so every
step runs as a separate process of the fresh venv: ``pip wheel``, ``uv venv`` + ``uv pip install``
(uv's cache makes the install take seconds after ``make setup``), ``airflow providers list``,
``airflow db migrate``, ``airflow dags test`` (which parses the dags folder itself).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The two lines the README tells a user to put in their dags folder.
TWO_LINE_DAG = "from airflow_provider_contacts.sync.dag import build_reconcile_dag\n\ndag = build_reconcile_dag()\n"


def _run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(REPO_ROOT), "-w", str(out)], timeout=600)
    wheels = list(out.glob("airflow_provider_contacts-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    if not UV.exists() and shutil.which("uv") is None:
        pytest.skip("uv is not installed in the test venv (make setup installs it)")
    uv = str(UV if UV.exists() else shutil.which("uv"))
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    # The README's install line, with the wheel in place of the package index name.
    _run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"{wheel}[sandbox]"], timeout=900)
    return venv


def test_the_wheel_carries_the_mapping_the_sandbox_and_the_licence(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "airflow_provider_contacts/sync/ghl_contacts_mapping.yaml" in names
    assert "airflow_provider_contacts/sync/dag.py" in names
    assert "ghl_sandbox/__main__.py" in names
    assert any(n.endswith("licenses/LICENSE") for n in names), "LICENSE is not in the wheel's dist-info"
    assert not any(n.startswith(("tests/", "dags/", "benchmarks/")) for n in names), "test or example files leaked into the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "apache_airflow_provider" in text


def test_fresh_install_registers_the_provider_and_runs_the_documented_dag(fresh_venv: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv / "bin"
    home = tmp_path / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "ghl_contacts_reconcile.py").write_text(TWO_LINE_DAG)
    target_db = tmp_path / "target.db"
    conn_file = tmp_path / "sandbox-conn.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "GHL_"))}
    env.update({
        "PATH": f"{bin_dir}:{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    })

    providers = _run([str(bin_dir / "airflow"), "providers", "list", "--output", "json"], env=env)
    listed = json.loads(providers[providers.index("["):providers.rindex("]") + 1])
    assert any(p.get("package_name") == "airflow-provider-contacts" for p in listed), providers[-2000:]

    sandbox = subprocess.Popen(
        [str(bin_dir / "python"), "-m", "ghl_sandbox", "--port", "0", "--contacts", "40", "--seed", "11",
         "--rate-limit", "off", "--conn-file", str(conn_file)],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not conn_file.exists():
            assert sandbox.poll() is None, f"the sandbox exited: {sandbox.stdout.read() if sandbox.stdout else ''}"
            assert time.monotonic() < deadline, "the sandbox did not write its connection file within 60 s"
            time.sleep(0.1)
        env["AIRFLOW_CONN_GHL_DEFAULT"] = conn_file.read_text()
        env["AIRFLOW_CONN_GHL_TARGET"] = json.dumps({"conn_type": "sqlite", "host": str(target_db)})
        _run([str(bin_dir / "airflow"), "db", "migrate"], env=env, timeout=300)
        out = _run([str(bin_dir / "airflow"), "dags", "test", "ghl_contacts_reconcile"], env=env, timeout=600)
        token = json.loads(conn_file.read_text())["password"]
        assert token not in out, "a token reached the output of `airflow dags test`"
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    with sqlite3.connect(target_db) as db:
        contacts = db.execute("SELECT COUNT(*) FROM ghl_contacts").fetchone()[0]
    assert contacts == 40, f"expected the sandbox's 40 contacts in the target, found {contacts}:\n{out[-3000:]}"
