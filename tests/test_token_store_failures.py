"""A token store that cannot be written fails loudly *before* the single-use refresh token is spent
(the refresh token in the store stays valid, nothing needs re-authorising), with an error naming the
store and the fix. And a store that cannot be read is never taken as empty (re-seeding it would
overwrite the live refresh token with a spent one).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import uuid

import pytest
import requests

from airflow_provider_contacts import auth
from airflow_provider_contacts.auth import (
    FileTokenStore,
    OAuthSettings,
    OAuthTokenSource,
    TokenSet,
    TokenStoreError,
    VariableTokenStore,
    build_token_store,
)
from airflow_provider_contacts.errors import GHLConfigError, GHLTransportError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from test_auth_oauth import _fresh_process_state, install_app, oauth_conn, token_calls  # noqa: F401 - autouse fixture


def refresh_token_still_works(sandbox, app: dict, refresh_token: str) -> bool:
    resp = requests.post(
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"],
              "grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=10,
    )
    return resp.status_code == 200


def _working_then_expired(sandbox, monkeypatch, token_store: str) -> tuple[dict, ContactsHook, TokenSet]:
    """A connection whose store works and holds a rotated token that has just expired."""
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, conn_id=f"ghl_fail_{uuid.uuid4().hex[:6]}", rotation_store=token_store)
    sandbox.admin.configure(access_token_lifetime_s=1)
    hook = ContactsHook(conn_id)
    hook.get_contacts(limit=1)  # seeds the store and refreshes once
    stored = hook.token_source.store.load()
    time.sleep(1.05)
    return app, hook, stored


def _assert_failed_before_refresh(sandbox, app, hook, stored, calls_before: int, err: pytest.ExceptionInfo) -> None:
    assert token_calls(sandbox) == calls_before  # no refresh token was sent
    assert hook.token_source.store.load() == stored
    message = str(err.value)
    assert repr(hook.token_source.store) in message and "Fix:" in message
    assert "No refresh was attempted" in message
    assert stored.refresh_token not in message and stored.access_token not in message
    assert refresh_token_still_works(sandbox, app, stored.refresh_token)  # nothing to re-authorise


def test_a_full_disk_fails_before_the_refresh_and_the_stored_token_stays_valid(sandbox, monkeypatch, tmp_path) -> None:
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, f"file:{tmp_path}/tokens.json")
    before = token_calls(sandbox)

    def full(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileTokenStore, "_write_temp", full)
    with pytest.raises(TokenStoreError) as err:
        hook.get_contacts(limit=1)
    assert "cannot write the token file's directory" in str(err.value) and "ENOSPC" not in str(err.value)
    assert "No space left on device" in str(err.value)
    _assert_failed_before_refresh(sandbox, app, hook, stored, before, err)


def test_a_file_store_whose_directory_cannot_exist_fails_before_seeding(sandbox, monkeypatch, tmp_path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, rotation_store=f"file:{tmp_path}/not-a-dir/tokens.json")
    with pytest.raises(TokenStoreError, match=r"FileTokenStore\(path=.*not-a-dir/tokens.json'\): cannot read the token file .NotADirectoryError"):
        ContactsHook(conn_id).get_contacts(limit=1)
    assert token_calls(sandbox) == 1  # the install only
    assert refresh_token_still_works(sandbox, app, app["refresh_token"])


def test_a_variable_store_that_cannot_be_written_fails_before_the_refresh(sandbox, monkeypatch, airflow_db) -> None:
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, f"variable:ghl_fail_{uuid.uuid4().hex[:6]}")
    before = token_calls(sandbox)

    def refused(key, value, description=""):
        raise PermissionError("403 Forbidden: the task may not write Variables")

    monkeypatch.setattr(auth._Variables, "set", staticmethod(refused))
    with pytest.raises(TokenStoreError) as err:
        hook.get_contacts(limit=1)
    assert "cannot write Airflow Variables (PermissionError: 403 Forbidden" in str(err.value)
    _assert_failed_before_refresh(sandbox, app, hook, stored, before, err)


def test_a_variable_shadowed_by_a_secrets_backend_is_refused_before_the_refresh(sandbox, monkeypatch, airflow_db) -> None:
    key = f"ghl_fail_{uuid.uuid4().hex[:6]}"
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, f"variable:{key}")
    before = token_calls(sandbox)
    # Someone also defined it as an environment variable: Airflow would read that, never the DB.
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", stored.to_json())
    with pytest.raises(TokenStoreError) as err:
        hook.get_contacts(limit=1)
    assert "EnvironmentVariablesBackend" in str(err.value) and f"unset AIRFLOW_VAR_{key.upper()}" in str(err.value)
    monkeypatch.delenv(f"AIRFLOW_VAR_{key.upper()}")
    _assert_failed_before_refresh(sandbox, app, hook, stored, before, err)


def test_a_variable_that_cannot_be_read_is_not_taken_as_empty(sandbox, monkeypatch, airflow_db) -> None:
    # Airflow's Variable.get answers "not found" when the API server or DB fails or a value cannot be
    # decrypted; taken as "empty", the store would be re-seeded with the spent seed refresh token.
    key = f"ghl_fail_{uuid.uuid4().hex[:6]}"
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, f"variable:{key}")
    auth.forget_process_tokens()
    before = token_calls(sandbox)

    def broken(key):
        raise auth._VariableReadError("OperationalError: database is locked")

    monkeypatch.setattr(auth._Variables, "get", staticmethod(broken))
    with pytest.raises(TokenStoreError, match="cannot read the Variable .OperationalError: database is locked"):
        ContactsHook(hook.ghl_conn_id).get_contacts(limit=1)
    monkeypatch.undo()
    assert VariableTokenStore(key).load() == stored and token_calls(sandbox) == before


def test_rotated_tokens_that_cannot_be_saved_are_reported_with_the_fix(sandbox, monkeypatch, tmp_path) -> None:
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, f"file:{tmp_path}/tokens.json")
    monkeypatch.setattr(auth.time, "sleep", lambda s: None)
    monkeypatch.setattr(FileTokenStore, "save", lambda self, tokens: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(TokenStoreError) as err:
        hook.get_contacts(limit=1)
    message = str(err.value)
    assert "were refreshed but could not be written" in message and "re-authorise the app" in message
    assert "I/O error" in message and stored.refresh_token not in message


def test_a_custom_store_without_a_lock_is_warned_about(caplog, tmp_path) -> None:
    class NoLock:
        def __init__(self) -> None:
            self.tokens = TokenSet(access_token="a" * 20, refresh_token="r" * 20)

        def load(self):
            return self.tokens

        def save(self, tokens):
            self.tokens = tokens

    settings = OAuthSettings(conn_id="c", base_url="http://127.0.0.1:9", client_id="id", client_secret="s")
    source = OAuthTokenSource(settings, NoLock(), process_cache=False)
    with caplog.at_level(logging.WARNING):
        with source._store_lock():  # noqa: SLF001
            pass
    assert "has no lock()" in caplog.text and "spend one single-use refresh token twice" in caplog.text


def test_no_token_request_is_started_that_could_outlive_the_lease(tmp_path) -> None:
    posts = []

    class _Session:
        def post(self, *args, **kwargs):
            posts.append(kwargs["timeout"])
            raise requests.ConnectionError("down")

    class ShortLease(FileTokenStore):
        lease_s = 1.0  # the source keeps 20 % of a lease: less than a second is left for the call

    store = ShortLease(tmp_path / "t.json")
    store.save(TokenSet(access_token=None, refresh_token="r" * 20))
    settings = OAuthSettings(conn_id="c", base_url="http://127.0.0.1:9", client_id="id", client_secret="s")
    source = OAuthTokenSource(settings, store, http=_Session, process_cache=False)
    with pytest.raises(GHLTransportError, match="refresh lease"):
        source.get_access_token()
    assert posts == []
    assert store.load().refresh_token == "r" * 20


def test_store_specs() -> None:
    from airflow_provider_contacts.token_stores import RedisTokenStore, SqlTokenStore

    assert repr(build_token_store("sql:pg_tokens", "ghl_x")) == (
        "SqlTokenStore(conn_id='pg_tokens', table='ghl_oauth_tokens', key='ghl_x')"
    )
    assert build_token_store("redis:cache", "ghl_x").key == "ghl_oauth_tokens:{ghl_x}"
    assert isinstance(build_token_store(" redis:cache ", "c"), RedisTokenStore)
    assert isinstance(build_token_store("sql:a.b", "c"), SqlTokenStore)
    for bad in ("sql:", "redis:"):
        with pytest.raises(GHLConfigError, match="needs an Airflow connection id"):
            build_token_store(bad, "c")
    with pytest.raises(GHLConfigError, match="'sql:<conn_id>', 'redis:<conn_id>'"):
        build_token_store("vault", "c")


def test_sql_store_refuses_sqlite(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TOKENS_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "t.db")}))
    with pytest.raises(GHLConfigError, match="sqlite is not supported .no SELECT ... FOR UPDATE"):
        build_token_store("sql:tokens_sqlite", "c").load()


@pytest.mark.postgres
def test_sql_store_on_a_read_only_role_fails_before_the_refresh(sandbox, monkeypatch, postgres_url) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_PG", postgres_url)
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, "sql:ghl_tokens_pg")
    before = token_calls(sandbox)
    role = f"ghl_ro_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT ON ghl_oauth_tokens TO {role}")
    try:
        url = sa.engine.make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
        monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_PG_RO", url)
        read_only = build_token_store("sql:ghl_tokens_pg_ro", hook.ghl_conn_id)
        assert read_only.load() == stored  # it can read...
        hook.token_source.store = read_only  # ...but this worker's store cannot write
        with pytest.raises(TokenStoreError) as err:
            hook.get_contacts(limit=1)
        assert "permission denied" in str(err.value) and "grant its user SELECT, INSERT, UPDATE" in str(err.value)
        _assert_failed_before_refresh(sandbox, app, hook, stored, before, err)
    finally:
        from airflow_provider_contacts import token_stores

        for key in [k for k in token_stores._ENGINES if k[0] == "ghl_tokens_pg_ro"]:
            token_stores._ENGINES.pop(key).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_redis_store_with_a_read_only_user_fails_before_the_refresh(sandbox, monkeypatch) -> None:
    url = os.environ.get("GHL_TEST_REDIS_URL")
    if not url:
        pytest.skip("GHL_TEST_REDIS_URL is not set: the Redis token store tests need a server")
    redis = pytest.importorskip("redis", reason="the Redis token store needs the redis package")
    monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_REDIS", url)
    app, hook, stored = _working_then_expired(sandbox, monkeypatch, "redis:ghl_tokens_redis")
    before = token_calls(sandbox)
    user, password = f"ghl_ro_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = redis.Redis.from_url(url)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@read", "+@connection", "+eval"])
    try:
        parsed = requests.utils.urlparse(url)
        monkeypatch.setenv("AIRFLOW_CONN_GHL_TOKENS_REDIS_RO", json.dumps({
            "conn_type": "redis", "host": parsed.hostname, "port": parsed.port or 6379, "login": user,
            "password": password, "extra": {"db": int((parsed.path or "/0").strip("/") or 0)}}))
        read_only = build_token_store("redis:ghl_tokens_redis_ro", hook.ghl_conn_id)
        assert read_only.load() == stored
        hook.token_source.store = read_only
        with pytest.raises(TokenStoreError) as err:
            hook.get_contacts(limit=1)
        assert "cannot take the refresh lock (NoPermissionError" in str(err.value) and password not in str(err.value)
        _assert_failed_before_refresh(sandbox, app, hook, stored, before, err)
    finally:
        admin.acl_deluser(user)
        admin.delete(f"ghl_oauth_tokens:{{{hook.ghl_conn_id}}}")
        admin.close()
