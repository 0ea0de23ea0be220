"""``python -m airflow_provider_contacts.webhooks`` (issue 11, deliverable 1): the receiver as its
own process behind a deployment's ingress. Its first stdout line is the ``listening`` JSON; the
target connection resolves through Airflow's lookup (an ``AIRFLOW_CONN_*`` env var here)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa


def _pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_contacts.webhooks", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def _first_line(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        proc.kill()
        raise AssertionError(f"no listening line; stderr:\n{proc.communicate(timeout=10)[1][-3000:]}")
    return box[0]


def test_standalone_receiver_prints_its_url_verifies_and_stores(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_file = tmp_path / "ed25519.pem"
    ed_file.write_text(_pem(ed_key))
    target = tmp_path / "events.sqlite"
    env = {**os.environ, "AIRFLOW_CONN_WH_STANDALONE": json.dumps({"conn_type": "sqlite", "host": str(target)})}

    proc = _start(["--host", "127.0.0.1", "--port", "0", "--target-conn-id", "wh_standalone",
                   "--rsa-public-key", _pem(rsa_key), "--ed25519-public-key", str(ed_file)], env)
    # A bad key flag is refused at start, naming the flag, before Airflow is even loaded.
    bad = _start(["--port", "0", "--target-conn-id", "wh_standalone", "--ed25519-public-key", _pem(rsa_key)], env)
    try:
        line = json.loads(_first_line(proc))
        assert line["event"] == "listening" and line["url"].startswith("http://127.0.0.1:")
        body = json.dumps({"type": "NoteCreate", "locationId": "loc1", "id": "n1", "contactId": "c1",
                           "body": "private note text", "webhookId": "sa-1", "timestamp": "2025-01-28T14:35:00Z"}).encode()
        wh_sig = base64.b64encode(rsa_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        ghl_sig = base64.b64encode(ed_key.sign(body)).decode()
        with httpx.Client(base_url=line["url"], timeout=30) as client:
            assert client.get("/health").json()["status"] == "ok"
            assert client.post("/events", content=body).status_code == 401
            assert client.post("/events", content=body, headers={"x-wh-signature": wh_sig}).json()["status"] == "stored"
            again = client.post("/events", content=body, headers={"x-ghl-signature": ghl_sig})
            assert again.json()["status"] == "duplicate"
        rows = sqlite3.connect(target).execute(
            "SELECT webhook_id, event_type, contact_id, entity_id FROM ghl_webhook_events").fetchall()
        assert rows == [("sa-1", "NoteCreate", "c1", "n1")]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    for secret in (wh_sig, ghl_sig, "private note text"):
        assert secret not in out + err

    _, bad_err = bad.communicate(timeout=180)
    assert bad.returncode == 2 and "--ed25519-public-key: expected a Ed25519 public key" in bad_err
