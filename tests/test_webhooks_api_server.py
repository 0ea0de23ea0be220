"""The webhook receiver mounted in a real Airflow API server (issue 11, deliverable 1): installing
the provider is enough for ``POST /ghl-webhooks/events`` to verify and store an event in the
target, with no new service. Uses the session's ``airflow_cluster`` (tests/conftest.py), whose
``[ghl_webhooks]`` settings hold an Ed25519 test key (``cluster.webhook_signing_key``)."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

from airflow_provider_contacts.webhooks.store import WebhookEventStore

pytestmark = pytest.mark.integration


def test_the_api_server_mounts_the_receiver_and_stores_a_signed_event(airflow_cluster, monkeypatch) -> None:
    base = f"http://127.0.0.1:{airflow_cluster.api_port}/ghl-webhooks"
    wid = f"it-{uuid.uuid4().hex}"
    body = json.dumps({"type": "ContactCreate", "locationId": "loc-it", "id": "c-it", "webhookId": wid,
                       "timestamp": "2025-01-28T14:35:00Z"}).encode()
    signature = base64.b64encode(airflow_cluster.webhook_signing_key.sign(body)).decode()
    with httpx.Client(timeout=60) as client:
        health = client.get(f"{base}/health")
        assert health.status_code == 200, health.text
        assert "x-ghl-signature" in health.json()["signature_headers"]
        # No Airflow login: the signature is the authentication.
        assert client.post(f"{base}/events", content=body).status_code == 401
        resp = client.post(f"{base}/events", content=body, headers={"x-ghl-signature": signature})
        assert resp.status_code == 200 and resp.json()["status"] == "stored", resp.text

    # Read it back through the receiver's own target connection, as the services resolve it.
    conn_id = health.json()["target_conn_id"]
    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if env_name in airflow_cluster.env:
        monkeypatch.setenv(env_name, airflow_cluster.env[env_name])
    else:  # ghl_target undefined: the embedded SQLite file of the services' AIRFLOW_HOME
        monkeypatch.setenv("AIRFLOW_HOME", str(airflow_cluster.airflow_home))
    store = WebhookEventStore(conn_id)
    try:
        [stored] = [e for e in store.pending("loc-it", limit=1000) if e.webhook_id == wid]
    finally:
        store.dispose()
    assert (stored.event_type, stored.contact_id, stored.body) == ("ContactCreate", "c-it", body.decode())
