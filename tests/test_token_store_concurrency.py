"""Every shipped token store serialises OAuth refreshes across processes: 3 worker processes x 3
threads share one OAuth connection whose access tokens expire every 2 s, and no refresh token is
ever sent twice (HighLevel counts every reuse and may force a re-authorisation), no call fails.

Reuse is counted twice, independently:

* client side, each worker records the fingerprint of every refresh token it sends to
  ``POST /oauth/token`` (and the answer); a fingerprint seen twice, or an ``invalid_grant``
  answer, is a reuse;
* server side, the sandbox counts ``get-access-token`` calls: they must equal the install plus the
  successful refreshes the workers report (a reused token is refused, so it would be an extra call).

Stores: the Airflow Variable store (the default) on the session's shared SQLite metadata DB and, with
``GHL_TEST_POSTGRES_URL``, on a PostgreSQL metadata DB; the file store; the SQL store
(``GHL_TEST_POSTGRES_URL``) and the Redis store (``GHL_TEST_REDIS_URL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests

from airflow_provider_contacts.auth import build_token_store, fingerprint
from test_auth_oauth import _fresh_process_state, install_app, oauth_conn, token_calls  # noqa: F401 - autouse fixture

PROCESSES = 3
THREADS = 3
LIFETIME_S = 2
RUN_S = 9.0

WORKER = textwrap.dedent(
    """
    import hashlib, json, os, sys, threading, time
    from urllib.parse import parse_qsl

    import requests

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
                events.append({"rt": hashlib.sha256(sent.encode()).hexdigest()[:16] if sent else None,
                               "status": response.status_code, "error": error, "at": time.time()})
        return response

    requests.Session.send = send

    from airflow_provider_contacts.hooks.contacts import ContactsHook

    conn_id, out = os.environ["GHL_W_CONN"], os.environ["GHL_W_OUT"]
    hooks = [ContactsHook(conn_id) for _ in range(int(os.environ["GHL_W_THREADS"]))]
    for hook in hooks:
        hook.token_source.store.load()  # imports and connections done before the start line
    open(out + ".ready", "w").close()
    while not os.path.exists(os.environ["GHL_W_GO"]):
        time.sleep(0.005)
    end = time.time() + float(os.environ["GHL_W_SECONDS"])
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
                    errors.append(f"{type(exc).__name__}: {str(exc)[:600]}")
            time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(hook,)) for hook in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = {"calls": calls[0], "failures": failures[0], "errors": errors[:5], "events": events,
              "refreshes": sum(hook.token_source.refreshes for hook in hooks)}
    with open(out, "w") as handle:
        json.dump(result, handle)
    """
)


#: Worker processes import Airflow (~1,300 modules): where bytecode writing is off
#: (PYTHONDONTWRITEBYTECODE), each would compile them all again (~12 s on 2 cores). They keep their
#: bytecode in a temporary directory instead (never in the virtualenv).
BYTECODE_ENV = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"ghl-test-pycache-{os.getuid()}")}


def run_workers(tmp_path: Path, conn_id: str, env: dict[str, str] | None = None) -> list[dict]:
    """Start the worker processes, release them together, return their results."""
    from airflow.configuration import conf

    go = tmp_path / "go"
    # Like every Airflow component, the workers share this process's Fernet key (in unit-test mode
    # each process would otherwise make its own, and could not decrypt the others' Variables).
    env = {"AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key", fallback=""), **(env or {})}
    outs = [tmp_path / f"worker{i}.json" for i in range(PROCESSES)]
    base = {**os.environ, **BYTECODE_ENV, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "GHL_W_CONN": conn_id,
            "GHL_W_THREADS": str(THREADS), "GHL_W_SECONDS": str(RUN_S), "GHL_W_GO": str(go), **env}
    logs = [out.with_suffix(".log") for out in outs]  # files, not pipes: a full pipe would block a worker
    procs = []
    for out, log in zip(outs, logs):
        with log.open("w") as handle:
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env={**base, "GHL_W_OUT": str(out)},
                                          cwd=tmp_path, stdout=handle, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while not all(Path(f"{out}.ready").exists() for out in outs):
        dead = [i for i, p in enumerate(procs) if p.poll() is not None]
        assert not dead, logs[dead[0]].read_text()[-3000:]
        assert time.monotonic() < deadline, "workers did not start within 60 s"
        time.sleep(0.05)
    go.touch()
    results = []
    for proc, out, log in zip(procs, outs, logs):
        proc.wait(timeout=RUN_S + 60)
        assert proc.returncode == 0, log.read_text()[-3000:]
        results.append(json.loads(out.read_text()))
    return results


def check(sandbox, app: dict, results: list[dict], store) -> dict[str, int]:
    """The numbers of the run, asserted: 0 reused refresh tokens, 0 failed calls, one refresh per expiry."""
    events = [e for r in results for e in r["events"]]
    sent = [e["rt"] for e in events]
    numbers = {
        "calls": sum(r["calls"] for r in results),
        "failed_calls": sum(r["failures"] for r in results),
        "refreshes": sum(r["refreshes"] for r in results),
        "token_requests": len(events),
        "reused_refresh_tokens": len(sent) - len(set(sent)),
        "invalid_grant": sum(1 for e in events if e["error"] == "invalid_grant" or e["status"] == 400),
        "server_token_calls": token_calls(sandbox),
    }
    print(f"{store!r}: {numbers}")
    errors = [e for r in results for e in r["errors"]]
    assert numbers["failed_calls"] == 0, errors
    assert numbers["reused_refresh_tokens"] == 0 and numbers["invalid_grant"] == 0, numbers
    assert numbers["token_requests"] == numbers["refreshes"], numbers  # every token request was a refresh
    assert numbers["server_token_calls"] == 1 + numbers["refreshes"], numbers  # the install + the refreshes
    assert all(r["calls"] > 0 for r in results), numbers
    # One refresh per expiry: the tokens live 2 s and are refreshed when 0.4 s are left, so a run of
    # RUN_S seconds has at most RUN_S / 1.6 + 1 expiries (plus the first refresh of the seed).
    assert RUN_S / LIFETIME_S - 1 <= numbers["refreshes"] <= RUN_S / (0.8 * LIFETIME_S) + 2, numbers
    # The store ends with the live refresh token: it was never sent, and it works.
    stored = store.load()
    assert fingerprint(stored.refresh_token)[:16] not in set(sent)
    resp = requests.post(
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"],
              "grant_type": "refresh_token", "refresh_token": stored.refresh_token},
        timeout=10,
    )
    assert resp.status_code == 200
    return numbers


def _scenario(sandbox, monkeypatch, tmp_path, token_store: str, env: dict[str, str] | None = None) -> dict[str, int]:
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, conn_id=f"ghl_conc_{uuid.uuid4().hex[:8]}", rotation_store=token_store)
    sandbox.admin.configure(access_token_lifetime_s=LIFETIME_S)
    results = run_workers(tmp_path, conn_id, env)
    store = build_token_store(token_store, conn_id)
    try:
        return check(sandbox, app, results, store)
    finally:
        _drop(store)


def _drop(store) -> None:
    """Remove what a SQL or Redis store left in the shared test servers."""
    from airflow_provider_contacts.token_stores import RedisTokenStore, SqlTokenStore

    if isinstance(store, RedisTokenStore):
        store.client.delete(store.key, store.lock_key)
    elif isinstance(store, SqlTokenStore):
        import sqlalchemy as sa

        with store._engine().begin() as conn:  # noqa: SLF001
            conn.execute(sa.delete(store._table).where(store._table.c.store_key == store.key))  # noqa: SLF001


@pytest.mark.slow
def test_variable_store_on_a_shared_sqlite_metadata_db(sandbox, monkeypatch, tmp_path, airflow_db) -> None:
    # The default store; the workers and this process share the session's migrated SQLite metadata DB.
    _scenario(sandbox, monkeypatch, tmp_path, f"variable:ghl_conc_{uuid.uuid4().hex[:8]}")


@pytest.mark.slow
def test_file_store(sandbox, monkeypatch, tmp_path) -> None:
    _scenario(sandbox, monkeypatch, tmp_path, f"file:{tmp_path}/tokens.json")


@pytest.fixture(scope="session")
def postgres_metadata_db(postgres_url: str) -> str:
    """A fresh PostgreSQL database holding Airflow's ``variable`` table (made from Airflow's own model).

    Only the table the Variable store touches is created: a full ``airflow db migrate`` takes ~25 s.
    """
    import sqlalchemy as sa

    from airflow.models import Variable

    name = f"ghl_meta_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(postgres_url).set(drivername="postgresql+psycopg2", database=name)
    engine = sa.create_engine(url)
    tables = [Variable.__table__] + [fk.column.table for fk in Variable.__table__.foreign_keys]
    Variable.metadata.create_all(engine, tables=tables)
    engine.dispose()
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_variable_store_on_a_postgres_metadata_db(sandbox, monkeypatch, tmp_path, postgres_metadata_db) -> None:
    # Workers on a PostgreSQL metadata DB (concurrent transactions, READ COMMITTED), as in production.
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_metadata_db}
    key = f"ghl_conc_{uuid.uuid4().hex[:8]}"
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, conn_id=f"ghl_conc_{uuid.uuid4().hex[:8]}", rotation_store=f"variable:{key}")
    sandbox.admin.configure(access_token_lifetime_s=LIFETIME_S)
    results = run_workers(tmp_path, conn_id, env)

    class _PostgresVariable:  # read the final tokens from that DB (this process uses SQLite)
        def load(self):
            import sqlalchemy as sa

            from airflow.models import Variable
            from airflow_provider_contacts.auth import TokenSet

            engine = sa.create_engine(postgres_metadata_db)
            with engine.connect() as conn:
                row = conn.execute(sa.select(Variable.__table__).where(Variable.__table__.c.key == key)).first()
            engine.dispose()
            var = Variable(key=key)
            var._val, var.is_encrypted = row._mapping["val"], row._mapping["is_encrypted"]
            return TokenSet.from_json(var.val)

        def __repr__(self) -> str:
            return f"VariableTokenStore(key={key!r}) on PostgreSQL"

    check(sandbox, app, results, _PostgresVariable())


@pytest.mark.slow
@pytest.mark.postgres
def test_sql_store(sandbox, monkeypatch, tmp_path, postgres_url) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_PG", postgres_url)
    _scenario(sandbox, monkeypatch, tmp_path, "sql:ghl_tokens_pg")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("GHL_TEST_REDIS_URL")
    if not url:
        pytest.skip("GHL_TEST_REDIS_URL is not set: the Redis token store tests need a server "
                    "(e.g. GHL_TEST_REDIS_URL=redis://127.0.0.1:6379/0)")
    pytest.importorskip("redis", reason="the Redis token store needs the redis package (pip install redis)")
    return url


@pytest.mark.slow
def test_redis_store(sandbox, monkeypatch, tmp_path, redis_url) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_REDIS", redis_url)
    _scenario(sandbox, monkeypatch, tmp_path, "redis:ghl_tokens_redis")
