"""Starting the sandbox from the command line and as a child process (how benchmarks and real
Airflow services use it)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghl_sandbox.testing import SandboxConfig, SandboxServer


@pytest.fixture
def cli() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(10)
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"the sandbox CLI exited ({proc.returncode})"
        assert time.monotonic() < deadline, f"the sandbox CLI wrote no {path.name} within {timeout_s} s"
        time.sleep(0.02)


def _start(cli: list[subprocess.Popen[str]], tmp_path: Path, *args: str) -> dict[str, str]:
    """Start the CLI in ``tmp_path`` the way ``SandboxServer(subprocess=True)`` does: start info through
    ``--info-file``, no conn file."""
    info_file = tmp_path / "start-info.json"
    proc = subprocess.Popen([sys.executable, "-m", "ghl_sandbox", "--port", "0",
                             "--info-file", str(info_file), "--conn-file", "off", *args],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    cli.append(proc)
    _wait_for(info_file, proc)
    assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
    return json.loads(info_file.read_text())


def test_cli_gives_its_address_and_applies_highlevels_rate_limit_by_default(cli, tmp_path) -> None:
    banner = _start(cli, tmp_path, "--contacts", "25", "--seed", "3")
    assert banner["base_url"].startswith("http://127.0.0.1:") and len(banner["location_id"]) == 20
    headers = {"Authorization": f"Bearer {banner['token']}", "Version": "2021-07-28"}
    r = httpx.get(f"{banner['base_url']}/contacts/", params={"locationId": banner["location_id"]}, headers=headers)
    assert r.status_code == 200 and r.json()["count"] == 25
    assert r.headers["X-RateLimit-Max"] == "100" and r.headers["X-RateLimit-Remaining"] == "99"


def test_cli_flags_set_the_config(cli, tmp_path) -> None:
    banner = _start(cli, tmp_path, "--contacts", "5", "--rate-limit", "2/60", "--fault-kinds", "503,drop",
                    "--allow-duplicates", "--daily-limit", "off")
    config = httpx.get(f"{banner['admin_url']}/config").json()
    assert config["rate_limit"] == "2/60" and config["fault_kinds"] == ["503", "drop"]
    assert config["allow_duplicates"] is True and config["daily_limit"] is None and config["contacts"] == 5
    headers = {"Authorization": f"Bearer {banner['token']}", "Version": "2021-07-28"}
    codes = [httpx.get(f"{banner['base_url']}/contacts/", params={"locationId": banner["location_id"]},
                       headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_cli_keeps_the_token_out_of_its_output_and_hands_it_over_in_a_0600_conn_file(tmp_path) -> None:
    # Started by hand in a directory: default --conn-file, verbose uvicorn logs, stdout+stderr captured.
    proc = subprocess.Popen([sys.executable, "-m", "ghl_sandbox", "--port", "0",
                             "--contacts", "12", "--log-level", "debug"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    conn_file = tmp_path / ".ghl-sandbox-conn.json"
    try:
        _wait_for(conn_file, proc)
        assert stat.S_IMODE(conn_file.stat().st_mode) == 0o600
        conn = json.loads(conn_file.read_text())
        token, base_url, location_id = conn["password"], conn["host"], conn["extra"]["location_id"]
        assert conn == {"conn_type": "ghl", "host": base_url, "password": token,
                        "extra": {"location_id": location_id}}
        assert token and base_url.startswith("http://127.0.0.1:")
        ok = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
        r = httpx.get(f"{base_url}/contacts/", params={"locationId": location_id}, headers=ok)
        assert r.status_code == 200 and r.json()["count"] == 12
        r = httpx.post(f"{base_url}/contacts/search", json={"locationId": location_id}, headers=ok)
        assert r.status_code == 200 and r.json()["total"] == 12
        assert httpx.get(f"{base_url}/contacts/", params={"locationId": location_id},
                         headers={**ok, "Version": "1999-01-01"}).status_code == 400
        assert httpx.get(f"{base_url}/contacts/", params={"locationId": location_id},
                         headers={**ok, "Authorization": f"Bearer {token}x"}).status_code == 401
        assert httpx.post(f"{base_url}/_sandbox/tokens").status_code == 200  # the other way to a token
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    output = out + err
    assert token not in output and token[8:] not in output and "Bearer" not in output
    for shown in (base_url, location_id, f"{base_url}/_sandbox", "12", "100/10", str(conn_file),
                  f'export AIRFLOW_CONN_GHL_DEFAULT="$(cat {shlex.quote(str(conn_file))})"',
                  f"curl -s -X POST {base_url}/_sandbox/tokens"):
        assert shown in out, shown
    assert not conn_file.exists()  # removed on a clean stop (SIGTERM included)
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left behind either


def test_cli_conn_file_off_writes_no_conn_file(cli, tmp_path) -> None:
    banner = _start(cli, tmp_path, "--contacts", "3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["start-info.json"]  # no ./.ghl-sandbox-conn.json
    assert httpx.get(f"{banner['admin_url']}/info").json()["token"] == banner["token"]


def test_cli_refuses_a_bad_setting_naming_it() -> None:
    done = subprocess.run([sys.executable, "-m", "ghl_sandbox", "--port", "0",
                           "--fault-rate", "2"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "fault_rate" in done.stderr and "between 0.0 and 1.0" in done.stderr


def test_subprocess_mode_serves_the_same_seeded_data(sandbox: SandboxServer) -> None:
    with SandboxServer(SandboxConfig(seed=7, contacts=200), subprocess=True) as child:
        assert child.location_id == sandbox.location_id and child.token == sandbox.token
        assert child.admin.dump() == sandbox.admin.dump()
        assert json.loads(child.conn_json(read_timeout=5)) == {
            "conn_type": "ghl", "host": child.base_url, "password": child.token,
            "extra": {"location_id": child.location_id, "read_timeout": 5}}
        with child.client() as api:
            assert api.post("/contacts/search", json={"locationId": child.location_id}).json()["total"] == 200
        pid_alive = child._proc is not None and child._proc.poll() is None
        child_dir = Path(child._child_dir or "")
        assert stat.S_IMODE(child_dir.stat().st_mode) == 0o700
        assert [p.name for p in child_dir.iterdir()] == ["sandbox.log"]  # start info read and deleted
        assert child.token not in (child_dir / "sandbox.log").read_text()
    assert pid_alive and not child_dir.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{child.base_url}/_sandbox/info", timeout=2)
