"""Starting the sandbox from the command line and as a child process (how benchmarks and real
Airflow services use it)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_contacts.sandbox.testing import SandboxConfig, SandboxServer


@pytest.fixture
def cli() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        p.terminate()
        p.wait(10)
        if p.stdout:
            p.stdout.close()


def _start(cli: list[subprocess.Popen[str]], *args: str) -> dict[str, str]:
    proc = subprocess.Popen([sys.executable, "-m", "airflow_provider_contacts.sandbox", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cli.append(proc)
    return json.loads(proc.stdout.readline())  # type: ignore[union-attr]


def test_cli_prints_its_address_and_applies_highlevels_rate_limit_by_default(cli) -> None:
    banner = _start(cli, "--contacts", "25", "--seed", "3")
    assert banner["base_url"].startswith("http://127.0.0.1:") and len(banner["location_id"]) == 20
    headers = {"Authorization": f"Bearer {banner['token']}", "Version": "2021-07-28"}
    r = httpx.get(f"{banner['base_url']}/contacts/", params={"locationId": banner["location_id"]}, headers=headers)
    assert r.status_code == 200 and r.json()["count"] == 25
    assert r.headers["X-RateLimit-Max"] == "100" and r.headers["X-RateLimit-Remaining"] == "99"


def test_cli_flags_set_the_config(cli) -> None:
    banner = _start(cli, "--contacts", "5", "--rate-limit", "2/60", "--fault-kinds", "503,drop",
                    "--allow-duplicates", "--daily-limit", "off")
    config = httpx.get(f"{banner['admin_url']}/config").json()
    assert config["rate_limit"] == "2/60" and config["fault_kinds"] == ["503", "drop"]
    assert config["allow_duplicates"] is True and config["daily_limit"] is None and config["contacts"] == 5
    headers = {"Authorization": f"Bearer {banner['token']}", "Version": "2021-07-28"}
    codes = [httpx.get(f"{banner['base_url']}/contacts/", params={"locationId": banner["location_id"]},
                       headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_cli_refuses_a_bad_setting_naming_it() -> None:
    done = subprocess.run([sys.executable, "-m", "airflow_provider_contacts.sandbox", "--port", "0",
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
    assert pid_alive
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{child.base_url}/_sandbox/info", timeout=2)
