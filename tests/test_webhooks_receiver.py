"""The webhook receiver (issue 11, deliverables 1, 2 and the receiver tests of 5): signatures over
the exact body bytes, event parsing, the durable store and its consume API, and the FastAPI app
(413/401/400/200/429) on SQLite and PostgreSQL targets.

Test keys are generated with ``cryptography`` (RSA 2048 to keep key generation fast; HighLevel's
own key is 4096 and is checked to load and to refuse our signatures).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from airflow_provider_contacts.webhooks.events import DOCUMENTED_EVENT_TYPES, EventParseError, parse_event
from airflow_provider_contacts.webhooks.store import StorageUnavailable, WebhookEventStore
from airflow_provider_contacts.webhooks.verify import (
    HIGHLEVEL_RSA_PUBLIC_KEY_PEM,
    WebhookVerifier,
    load_ed25519_public_keys,
    load_rsa_public_keys,
)


@pytest.fixture(scope="module", autouse=True)
def _airflow_loaded() -> None:
    """Import Airflow's connection lookup once, so no request of a test pays for it (the app
    answers 429 when the target takes longer than ``storage_timeout_seconds``)."""
    import airflow.sdk  # noqa: F401

    import airflow_provider_contacts.sync.target  # noqa: F401


# -- keys and signing ------------------------------------------------------------------------
def _pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Signer:
    """Signs bodies like HighLevel: base64 RSA-SHA256 PKCS#1 v1.5 and base64 Ed25519."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.rsa_pem = _pem(self.rsa)
        self.ed_pem = _pem(self.ed)

    def headers(self, body: bytes, *, rsa_sig: bool = True, ed_sig: bool = True) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if rsa_sig:
            out["x-wh-signature"] = base64.b64encode(self.rsa.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        if ed_sig:
            out["x-ghl-signature"] = base64.b64encode(self.ed.sign(body)).decode()
        return out


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="module")
def other_signer() -> Signer:
    return Signer()


def event_body(webhook_id: str | None = None, *, type_: str = "ContactUpdate", location: str = "locA",
               timestamp: str | None = None, **extra) -> bytes:
    body = {"type": type_, "locationId": location, "id": extra.pop("id", "c1"), "email": "jane.secret@example.com",
            "timestamp": timestamp or datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"), **extra}
    if webhook_id is not None:
        body["webhookId"] = webhook_id
    # Unusual spacing on purpose: the signature is over these bytes, never a re-serialisation.
    return json.dumps(body, indent=1).encode()


# -- verification ----------------------------------------------------------------------------
def test_highlevel_published_key_is_the_default_and_refuses_a_foreign_signature(signer: Signer) -> None:
    verifier = WebhookVerifier.from_settings()
    assert [k.key_size for k in verifier.rsa_keys] == [4096] and verifier.ed25519_keys == ()
    body = event_body("w")
    check = verifier.verify(body, signer.headers(body))
    assert not check.ok and check.failed == ("x-wh-signature",) and check.unchecked == ("x-ghl-signature",)


@pytest.mark.parametrize(("rsa_sig", "ed_sig"), [(True, False), (False, True), (True, True)])
def test_a_valid_signature_of_either_kind_is_accepted(signer: Signer, rsa_sig: bool, ed_sig: bool) -> None:
    verifier = WebhookVerifier.from_settings(signer.rsa_pem, signer.ed_pem)
    body = event_body("w")
    check = verifier.verify(body, signer.headers(body, rsa_sig=rsa_sig, ed_sig=ed_sig))
    assert check.ok and len(check.valid) == rsa_sig + ed_sig and not check.failed


def test_tampered_wrong_key_unsigned_and_unverifiable_bodies_are_refused(signer: Signer, other_signer: Signer) -> None:
    verifier = WebhookVerifier.from_settings(signer.rsa_pem, signer.ed_pem)
    body = event_body("w")
    tampered = body.replace(b"jane", b"john")
    assert verifier.verify(tampered, signer.headers(body)).reason.startswith("signature does not match")
    assert not verifier.verify(body, other_signer.headers(body)).ok
    assert "no signature" in verifier.verify(body, {}).reason
    assert not verifier.verify(body, {"x-wh-signature": "not base64 !!", "x-ghl-signature": ""}).ok
    # A header no configured key can check does not count as a signature.
    rsa_only = WebhookVerifier.from_settings(signer.rsa_pem)
    check = rsa_only.verify(body, signer.headers(body, rsa_sig=False))
    assert not check.ok and "set ed25519_public_key" in check.reason


def test_one_valid_signature_is_enough_when_the_other_key_is_stale(signer: Signer, other_signer: Signer) -> None:
    verifier = WebhookVerifier.from_settings(other_signer.rsa_pem, signer.ed_pem)  # RSA key "rotated"
    body = event_body("w")
    check = verifier.verify(body, signer.headers(body))
    assert check.ok and check.valid == ("x-ghl-signature",) and check.failed == ("x-wh-signature",)


def test_keys_load_from_pem_text_files_escaped_newlines_raw_base64_and_bundles(
    signer: Signer, other_signer: Signer, tmp_path: Path
) -> None:
    bundle = tmp_path / "rsa.pem"
    bundle.write_text(signer.rsa_pem + other_signer.rsa_pem)
    assert len(load_rsa_public_keys(str(bundle))) == 2
    assert len(load_rsa_public_keys(signer.rsa_pem.replace("\n", "\\n"))) == 1
    raw = signer.ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(load_ed25519_public_keys(base64.b64encode(raw).decode())) == 1
    assert load_rsa_public_keys("none") == () and load_ed25519_public_keys(None) == ()
    body = event_body("w")
    two = WebhookVerifier(load_rsa_public_keys(str(bundle)))
    assert two.verify(body, other_signer.headers(body, ed_sig=False)).ok
    assert load_rsa_public_keys(None)[0].public_numbers() == load_rsa_public_keys(HIGHLEVEL_RSA_PUBLIC_KEY_PEM)[0].public_numbers()


def test_bad_key_settings_name_the_setting_and_the_fix(signer: Signer) -> None:
    with pytest.raises(ValueError, match="rsa_public_key: expected a RSA public key"):
        load_rsa_public_keys(signer.ed_pem)
    with pytest.raises(ValueError, match="ed25519_public_key: not a Ed25519 public key.*raw 32-byte"):
        load_ed25519_public_keys("/no/such/file.pem")
    with pytest.raises(ValueError, match="configure at least one public key"):
        WebhookVerifier.from_settings("none", None)


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("type_", sorted(DOCUMENTED_EVENT_TYPES))
def test_every_documented_type_yields_its_ids(type_: str) -> None:
    child = type_.startswith(("Task", "Note"))
    body = {"type": type_, "locationId": "L", "id": "E1", "timestamp": "2025-01-28T14:35:00Z", "webhookId": "abc"}
    if child:
        body["contactId"] = "C9"
    event = parse_event(json.dumps(body).encode())
    assert (event.event_type, event.location_id, event.entity_id, event.webhook_id) == (type_, "L", "E1", "abc")
    assert event.contact_id == ("C9" if child else "E1")
    assert event.timestamp == datetime(2025, 1, 28, 14, 35, tzinfo=timezone.utc)
    assert event.entity == ("task" if type_.startswith("Task") else "note" if child else "contact")
    assert event.is_delete == type_.endswith("Delete")


def test_unknown_types_and_missing_fields_are_kept_and_ids_are_derived_stably() -> None:
    event = parse_event(b'{"type": "OpportunityCreate", "locationId": "L", "id": "o1", "timestamp": "garbage"}')
    assert (event.event_type, event.entity_id, event.contact_id, event.timestamp, event.entity) == (
        "OpportunityCreate", "o1", None, None, None)
    assert event.webhook_id_derived and event.webhook_id.startswith("sha256:")
    # Same event, other key order and spacing: same derived key.
    again = parse_event(b'{"timestamp":"garbage","id":"o1","locationId":"L","type":"OpportunityCreate"}')
    assert again.webhook_id == event.webhook_id
    assert parse_event(b"{}").event_type is None
    with pytest.raises(EventParseError, match="not JSON"):
        parse_event(b"type=ContactCreate")
    with pytest.raises(EventParseError, match="not an object"):
        parse_event(b"[1, 2]")
    nul = parse_event(b'{"type": "NoteCreate", "body": "a\x00b", "webhookId": "n"}')
    assert "\x00" not in nul.body and json.loads(nul.body)["body"] == "a\x00b"


# -- targets -----------------------------------------------------------------------------------
@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An Airflow connection (AIRFLOW_CONN_*) to a SQLite file target."""
    path = tmp_path / "target.sqlite"
    conn_id = f"wh_sqlite_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return conn_id, path


@pytest.fixture(scope="module")
def pg_target(request: pytest.FixtureRequest):
    """An Airflow connection to PostgreSQL (GHL_TEST_POSTGRES_URL) and a schema of this module's own."""
    url = os.environ.get("GHL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("GHL_TEST_POSTGRES_URL is not set: PostgreSQL target tests need a server (.ci/run sets it)")
    parts = urlsplit(url)
    conn_id = "wh_pg_target"
    schema = f"ghl_webhooks_test_{os.getpid()}"
    os.environ["AIRFLOW_CONN_WH_PG_TARGET"] = json.dumps({
        "conn_type": "postgres", "host": parts.hostname, "port": parts.port or 5432, "login": parts.username,
        "password": parts.password or "", "schema": parts.path.lstrip("/")})
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    yield conn_id, schema, engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
    os.environ.pop("AIRFLOW_CONN_WH_PG_TARGET", None)


def _target_params():
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_target_params())
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if request.param == "sqlite":
        conn_id, _ = request.getfixturevalue("sqlite_conn")
        made = WebhookEventStore(conn_id)
    else:
        conn_id, schema, engine = request.getfixturevalue("pg_target")
        table_suffix = uuid.uuid4().hex[:8]
        made = WebhookEventStore(conn_id, schema=schema, table_name=f"ghl_webhook_events_{table_suffix}")
    yield made
    made.dispose()


def test_store_dedupes_reads_pending_oldest_first_and_marks_in_the_callers_transaction(store: WebhookEventStore) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, (wid, loc) in enumerate([("w1", "locA"), ("w2", "locB"), ("w3", "locA")]):
        assert store.store(parse_event(event_body(wid, location=loc)), received_at=t0 + timedelta(seconds=i)) is True
    assert store.store(parse_event(event_body("w1", location="locA"))) is False  # duplicate
    assert [e.webhook_id for e in store.pending("locA")] == ["w1", "w3"]
    assert [e.webhook_id for e in store.pending(None, limit=2)] == ["w1", "w2"]
    assert store.count_pending() == 3 and store.pending_by_location() == {"locA": 2, "locB": 1}
    first = store.pending("locA")[0]
    assert first.received_at == t0 and first.payload["email"] == "jane.secret@example.com" and first.entity == "contact"

    # SQLAlchemy transaction rolled back: nothing marked.
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        assert store.mark_consumed(["w1"], conn, "run_rolled_back") == 1
        raise RuntimeError("the caller's rows failed")
    assert store.count_pending("locA") == 2
    # Committed with the caller's transaction; already consumed ids are not marked again.
    with store.engine.begin() as conn:
        assert store.mark_consumed(["w1", "unknown"], conn, "run_1") == 1
        assert store.pending("locA", connection=conn)[0].webhook_id == "w3"
    assert store.mark_consumed(["w1"], None, "run_2") == 0
    # A DB-API connection of the caller (the sync's SqlSink works on these).
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        assert store.mark_consumed(["w3"], cur, "run_dbapi") == 1
        raw.commit()
    finally:
        raw.close()
    assert [e.webhook_id for e in store.pending(None)] == ["w2"]
    assert store.delete_consumed(datetime.now(timezone.utc) + timedelta(seconds=5)) == 2
    assert store.count_pending() == 1


def test_a_sink_transaction_of_the_reconcile_marks_events_with_its_rows(sqlite_conn: tuple[str, Path]) -> None:
    """``mark_consumed(ids, tx, run_id)`` with the sync's own ``SqlSink.transaction()``."""
    from airflow_provider_contacts.sync.mapping import FieldMapping
    from airflow_provider_contacts.sync.sinks import SqlSink
    from airflow_provider_contacts.sync.target import get_target_hook

    conn_id, path = sqlite_conn
    store = WebhookEventStore(conn_id)
    store.store(parse_event(event_body("w1")))
    with SqlSink(get_target_hook(conn_id), FieldMapping.from_dict(None)) as sink:
        with pytest.raises(RuntimeError), sink.transaction() as tx:
            store.mark_consumed(["w1"], tx, "run_x")
            raise RuntimeError("rows failed")
        assert store.count_pending() == 1
        with sink.transaction() as tx:
            assert store.mark_consumed(["w1"], tx, "run_y") == 1
    row = sqlite3.connect(path).execute("SELECT consumed_by_run, consumed_at FROM ghl_webhook_events").fetchone()
    assert row[0] == "run_y" and row[1].endswith("+00:00")
    store.dispose()


# -- the app -----------------------------------------------------------------------------------
def _client(settings, **kwargs):
    from fastapi.testclient import TestClient

    from airflow_provider_contacts.webhooks.app import create_app

    return TestClient(create_app(settings, warm_up=False, **kwargs))


@pytest.fixture(params=_target_params())
def app_target(request: pytest.FixtureRequest):
    """(settings kwargs, a function counting stored rows per webhook id)."""
    if request.param == "sqlite":
        conn_id, path = request.getfixturevalue("sqlite_conn")

        def count(wid: str) -> int:
            return sqlite3.connect(path).execute("SELECT count(*) FROM ghl_webhook_events WHERE webhook_id = ?", (wid,)).fetchone()[0]

        return {"target_conn_id": conn_id}, count
    conn_id, schema, engine = request.getfixturevalue("pg_target")

    def count_pg(wid: str) -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {schema}.ghl_webhook_events WHERE webhook_id = :w"),
                                {"w": wid}).scalar()

    return {"target_conn_id": conn_id, "schema": schema}, count_pg


def test_app_verifies_dedupes_and_stores_before_answering(app_target, signer: Signer, other_signer: Signer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_contacts.webhooks.app import WebhookSettings

    target, count = app_target
    client = _client(WebhookSettings(rsa_public_key=signer.rsa_pem, ed25519_public_key=signer.ed_pem, **target))
    caplog.set_level(logging.DEBUG)
    wid = f"wh-{uuid.uuid4().hex}"
    body = event_body(wid, type_="TaskComplete", id="task1", contactId="c7")
    headers = signer.headers(body)

    for rsa_sig, ed_sig in [(True, True), (True, False), (False, True)]:
        resp = client.post("/events", content=body, headers=signer.headers(body, rsa_sig=rsa_sig, ed_sig=ed_sig))
        assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "duplicate", "webhookId": wid, "type": "TaskComplete"}
    assert count(wid) == 1
    assert client.post("/events", content=body.replace(b"task1", b"task2"), headers=headers).status_code == 401
    assert client.post("/events", content=body, headers=other_signer.headers(body)).status_code == 401
    unsigned = event_body("unsigned")
    assert client.post("/events", content=unsigned, headers={"content-type": "application/json"}).status_code == 401
    assert count("unsigned") == 0
    not_json = b"<xml/>"
    assert client.post("/events", content=not_json, headers=signer.headers(not_json)).status_code == 400
    assert client.get("/health").json()["status"] == "ok"

    logged = caplog.text
    assert wid in logged  # events are traceable by id ...
    for secret in (headers["x-wh-signature"], headers["x-ghl-signature"], "jane.secret@example.com", "BEGIN PUBLIC KEY"):
        assert secret not in logged  # ... but no signature, body or key reaches the logs


def test_oversized_bodies_get_413_before_they_are_read(sqlite_conn, signer: Signer) -> None:
    from airflow_provider_contacts.webhooks.app import WebhookSettings

    client = _client(WebhookSettings(target_conn_id=sqlite_conn[0], rsa_public_key=signer.rsa_pem, max_body_bytes=2048))
    big = event_body("big", pad="x" * 4096)
    assert client.post("/events", content=big, headers=signer.headers(big)).status_code == 413

    def chunks():  # no Content-Length: refused while streaming
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    assert client.post("/events", content=chunks(), headers=signer.headers(big)).status_code == 413
    small = event_body("small")
    assert client.post("/events", content=small, headers=signer.headers(small)).status_code == 200


def test_storage_down_answers_429_and_the_retry_with_its_original_timestamp_is_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    from airflow_provider_contacts.webhooks.app import WebhookSettings

    folder = tmp_path / "not-yet"  # SQLite cannot open a file in a missing folder: the database is down
    monkeypatch.setenv("AIRFLOW_CONN_WH_DOWN", json.dumps({"conn_type": "sqlite", "host": str(folder / "t.sqlite")}))
    client = _client(WebhookSettings(target_conn_id="wh_down", rsa_public_key=signer.rsa_pem, retry_after_seconds=600))
    original = (datetime.now(timezone.utc) - timedelta(minutes=70)).isoformat()  # HighLevel's 6th retry
    body = event_body("retry-me", timestamp=original)
    resp = client.post("/events", content=body, headers=signer.headers(body))
    assert resp.status_code == 429 and resp.headers["retry-after"] == "600"
    health = client.get("/health")
    assert health.status_code == 503 and "unable to open database file" in health.json()["storage"]

    folder.mkdir()  # the database is back; HighLevel delivers the same bytes again
    for expected in ("stored", "duplicate"):
        resp = client.post("/events", content=body, headers=signer.headers(body))
        assert resp.status_code == 200 and resp.json()["status"] == expected
    rows = sqlite3.connect(folder / "t.sqlite").execute(
        "SELECT webhook_id, event_timestamp FROM ghl_webhook_events").fetchall()
    assert len(rows) == 1 and datetime.fromisoformat(rows[0][1]) == datetime.fromisoformat(original)


def test_store_errors_are_storage_unavailable_without_sql_parameters(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_GONE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "x" / "t.db")}))
    with pytest.raises(StorageUnavailable) as err:
        WebhookEventStore("wh_gone").store(parse_event(event_body("w")))
    assert "jane.secret" not in str(err.value)
    with pytest.raises(StorageUnavailable, match="no_such_conn"):
        WebhookEventStore("no_such_conn").ping()


def test_settings_come_from_the_airflow_config_and_a_bad_one_answers_429(
    sqlite_conn, monkeypatch: pytest.MonkeyPatch, signer: Signer, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_contacts.webhooks.app import WebhookSettings
    from airflow_provider_contacts.webhooks.plugin import URL_PREFIX, GHLWebhooksPlugin, LazyWebhookApp

    key_file = tmp_path / "ed.pem"
    key_file.write_text(signer.ed_pem)
    monkeypatch.setenv("AIRFLOW__GHL_WEBHOOKS__TARGET_CONN_ID", sqlite_conn[0])
    monkeypatch.setenv("AIRFLOW__GHL_WEBHOOKS__ED25519_PUBLIC_KEY", str(key_file))
    monkeypatch.setenv("AIRFLOW__GHL_WEBHOOKS__MAX_BODY_BYTES", "4096")
    settings = WebhookSettings.from_airflow_config()
    assert (settings.target_conn_id, settings.max_body_bytes, settings.rsa_public_key) == (sqlite_conn[0], 4096, None)

    [mounted] = GHLWebhooksPlugin.fastapi_apps
    assert mounted["url_prefix"] == URL_PREFIX == "/ghl-webhooks" and isinstance(mounted["app"], LazyWebhookApp)
    client = TestClient(LazyWebhookApp())
    body = event_body("via-config")
    assert client.post("/events", content=body, headers=signer.headers(body, rsa_sig=False)).status_code == 200

    monkeypatch.setenv("AIRFLOW__GHL_WEBHOOKS__MAX_BODY_BYTES", "lots")
    broken = TestClient(LazyWebhookApp())
    resp = broken.post("/events", content=body, headers=signer.headers(body))
    assert resp.status_code == 429 and resp.headers["retry-after"] == "600"
    assert "max_body_bytes = 'lots' is not a int" in broken.get("/health").json()["error"]
