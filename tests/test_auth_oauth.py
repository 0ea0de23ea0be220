"""OAuth connections keep working: refresh before expiry and after a 401, single-use refresh tokens
rotated safely when several hooks or workers refresh at once, agency tokens exchanged per location."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from airflow_provider_contacts.auth import (
    FileTokenStore,
    OAuthSettings,
    OAuthTokenSource,
    TokenSet,
    VariableTokenStore,
    forget_process_tokens,
)
from airflow_provider_contacts.errors import GHLAuthError
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def install_app(sb, user_type: str = "Location", scopes: list[str] | None = None) -> dict:
    """The marketplace install: an OAuth app, its consent, and the code exchanged for tokens."""
    client_id, secret = sb.admin.create_oauth_client(scopes)
    code = sb.admin.authorize(
        client_id,
        location_id=sb.location_id if user_type == "Location" else None,
        user_type=user_type,
        company_id=sb.company_id if user_type == "Company" else None,
    )
    resp = requests.post(
        f"{sb.base_url}/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "authorization_code", "code": code, "user_type": user_type},
        timeout=10,
    )
    resp.raise_for_status()
    return {"client_id": client_id, "client_secret": secret, **resp.json()}


def oauth_conn(sb, app: dict, monkeypatch, conn_id: str = "ghl_oauth", access_token: str = "", **extra) -> str:
    conn = {
        "conn_type": "ghl",
        "host": sb.base_url,
        "password": access_token,
        "extra": {
            "location_id": sb.location_id,
            "auth_type": "oauth",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "refresh_token": app["refresh_token"],
            **extra,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def token_calls(sb) -> int:
    return sb.admin.counters()["by_operation"].get("get-access-token", 0)


class RecordingStore(FileTokenStore):
    """A file store that records when each access token was saved (see the save-before-use test)."""

    events: list[tuple[str, str]] = []

    def __init__(self, conn_id: str) -> None:
        super().__init__(Path(os.environ["GHL_TEST_TOKEN_DIR"]) / f"{conn_id}.json")

    def save(self, tokens: TokenSet) -> None:
        super().save(tokens)
        RecordingStore.events.append(("saved", tokens.access_token or ""))


def test_new_refresh_token_is_saved_before_the_new_access_token_is_used(sandbox, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GHL_TEST_TOKEN_DIR", str(tmp_path))
    RecordingStore.events = []
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, rotation_store=f"{__name__}.RecordingStore")
    sandbox.admin.configure(access_token_lifetime_s=1)
    hook = ContactsHook(conn_id)
    session = hook.get_conn()
    session.hooks["response"].append(
        lambda resp, *a, **k: RecordingStore.events.append(("used", resp.request.headers["Authorization"][7:]))
    )

    for _ in range(3):
        hook.search_contacts(page_limit=1)
        time.sleep(0.9)

    saved_at = {}
    for index, (kind, token) in enumerate(RecordingStore.events):
        if kind == "saved":
            saved_at.setdefault(token, index)
        elif token:
            assert token in saved_at and saved_at[token] < index, "a token was used before it was stored"
    stored = FileTokenStore(tmp_path / f"{conn_id}.json").load()
    assert stored.refresh_token != app["refresh_token"]
    assert hook.stats.refreshes >= 2


def test_access_token_expiring_mid_run_is_refreshed_and_the_run_carries_on(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, rotation_store=f"file:{tmp_path}/tokens.json")
    sandbox.admin.configure(access_token_lifetime_s=1)
    hook = ContactsHook(conn_id)

    seen = set()
    for _ in range(4):
        for contact in hook.iter_search_contacts(page_limit=100):
            seen.add(contact.id)
        time.sleep(0.5)

    assert len(seen) == 200
    assert hook.stats.refreshes >= 2
    assert sandbox.admin.counters()["status_401"] == 0  # refreshed before expiry, never after


def test_a_401_is_fixed_by_one_refresh(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    conn_id = oauth_conn(
        sandbox, app, monkeypatch, access_token="revoked-access-token", rotation_store=f"file:{tmp_path}/tokens.json"
    )
    hook = ContactsHook(conn_id)
    assert hook.search_contacts(page_limit=1).total == 200
    counters = sandbox.admin.counters()
    assert counters["status_401"] == 1 and hook.stats.refreshes == 1 and token_calls(sandbox) == 2


def test_two_hooks_refreshing_at_once_share_one_rotation(sandbox, monkeypatch, airflow_db) -> None:
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, rotation_store="variable:ghl_test_tokens_threads")
    sandbox.admin.configure(access_token_lifetime_s=1)
    first, second = ContactsHook(conn_id), ContactsHook(conn_id)
    first.search_contacts(page_limit=1)
    time.sleep(1.05)  # the token is now expired for both
    before = token_calls(sandbox)

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(hook: ContactsHook) -> None:
        barrier.wait()
        try:
            hook.search_contacts(page_limit=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(h,)) for h in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert token_calls(sandbox) - before == 1
    stored = VariableTokenStore("ghl_test_tokens_threads").load()
    assert first.token_source.get_access_token() == second.token_source.get_access_token() == stored.access_token


def _worker_source(sb, app: dict, store) -> OAuthTokenSource:
    """A token source as a separate worker process would have it (no shared in-process cache)."""
    settings = OAuthSettings(
        conn_id="ghl_workers",
        base_url=sb.base_url,
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        location_id=sb.location_id,
        seed_refresh_token=app["refresh_token"],
    )
    return OAuthTokenSource(settings, store, process_cache=False)


def test_a_worker_adopts_tokens_another_worker_rotated(sandbox, airflow_db) -> None:
    app = install_app(sandbox)
    sandbox.admin.configure(access_token_lifetime_s=1)
    store = VariableTokenStore("ghl_test_tokens_adopt")
    worker_a, worker_b = _worker_source(sandbox, app, store), _worker_source(sandbox, app, store)
    worker_a.get_access_token()
    worker_b.get_access_token()  # B adopts A's fresh tokens from the store
    assert token_calls(sandbox) == 2  # the install and A's first refresh
    time.sleep(1.05)

    token_a = worker_a.get_access_token()  # A rotates
    token_b = worker_b.get_access_token()  # B holds a spent refresh token: re-reads and adopts

    assert token_a == token_b == store.load().access_token
    assert token_calls(sandbox) == 3 and worker_b.refreshes == 0


class LaggingStore(VariableTokenStore):
    """A store whose next read returns an older value (a read racing another worker's write)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.stale: TokenSet | None = None

    def load(self) -> TokenSet | None:
        if self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return super().load()


def test_invalid_grant_rereads_the_store_once_and_adopts_the_rotated_tokens(sandbox, airflow_db) -> None:
    app = install_app(sandbox)
    sandbox.admin.configure(access_token_lifetime_s=1)
    shared = VariableTokenStore("ghl_test_tokens_lag")
    lagging = LaggingStore("ghl_test_tokens_lag")
    worker_a, worker_b = _worker_source(sandbox, app, shared), _worker_source(sandbox, app, lagging)
    worker_a.get_access_token()
    worker_b.get_access_token()
    # On a busy machine A's 1-second token can expire before B first reads it, so B may refresh
    # here; only refreshes from the rotation on are what this test is about.
    b_refreshes_before = worker_b.refreshes
    time.sleep(1.05)
    before_rotation = shared.load()
    # The rotated token lives long, so a slow machine cannot expire it between A's refresh and
    # B's adoption (which would make B refresh on its own, a different failure than the one tested).
    sandbox.admin.configure(access_token_lifetime_s=3600)

    token_a = worker_a.get_access_token()
    lagging.stale = before_rotation  # B's re-read still sees the spent refresh token
    token_b = worker_b.get_access_token()  # invalid_grant -> re-read -> adopt

    assert token_a == token_b
    assert worker_b.refreshes == b_refreshes_before  # B adopted A's rotation instead of refreshing


def test_a_spent_refresh_token_fails_with_what_to_reauthorise(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    requests.post(  # someone else spends the refresh token
        f"{sandbox.base_url}/oauth/token",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "grant_type": "refresh_token",
              "refresh_token": app["refresh_token"]},
        timeout=10,
    ).raise_for_status()
    conn_id = oauth_conn(sandbox, app, monkeypatch, rotation_store=f"file:{tmp_path}/tokens.json")

    with pytest.raises(GHLAuthError) as err:
        ContactsHook(conn_id).search_contacts(page_limit=1)

    message = str(err.value)
    assert "invalid_grant" in message and "'ghl_oauth'" in message
    assert "Re-authorise the app" in message and "'refresh_token' extra" in message
    assert app["refresh_token"] not in message and app["client_secret"] not in message


def test_a_new_refresh_token_in_the_connection_reseeds_the_store(sandbox, monkeypatch, tmp_path) -> None:
    store = f"file:{tmp_path}/tokens.json"
    old_app = install_app(sandbox)
    ContactsHook(oauth_conn(sandbox, old_app, monkeypatch, rotation_store=store)).search_contacts(page_limit=1)
    forget_process_tokens()
    # The user re-authorised (new install) and pasted the new refresh token into the connection.
    new_app = install_app(sandbox)
    hook = ContactsHook(oauth_conn(sandbox, new_app, monkeypatch, rotation_store=store))
    assert hook.search_contacts(page_limit=1).total == 200
    assert FileTokenStore(tmp_path / "tokens.json").load().refresh_token not in (
        old_app["refresh_token"], new_app["refresh_token"]
    )


def test_agency_token_is_exchanged_for_a_location_token(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox, user_type="Company")
    conn_id = oauth_conn(
        sandbox, app, monkeypatch, user_type="Company", company_id=sandbox.company_id,
        rotation_store=f"file:{tmp_path}/agency.json",
    )
    assert ContactsHook(conn_id).search_contacts(page_limit=1).total == 200
    assert ContactsHook(conn_id).get_contacts(limit=1).contacts
    assert sandbox.admin.counters()["by_operation"]["get-location-access-token"] == 1


def test_default_store_is_one_variable_per_connection(sandbox, monkeypatch, airflow_db) -> None:
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, conn_id="ghl_varstore")
    ContactsHook(conn_id).search_contacts(page_limit=1)
    from airflow.models import Variable

    stored = json.loads(Variable.get("ghl_oauth_tokens__ghl_varstore"))
    assert stored["refresh_token"] and stored["refresh_token"] != app["refresh_token"]


WORKER = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    hook = ContactsHook("ghl_procs")
    hook.search_contacts(page_limit=1)
    print(json.dumps({"token": hook.token_source.get_access_token(), "refreshes": hook.token_source.refreshes}))
    """
)


def test_two_worker_processes_with_a_file_store_both_end_with_the_live_token(sandbox, monkeypatch, tmp_path) -> None:
    app = install_app(sandbox)
    oauth_conn(sandbox, app, monkeypatch, conn_id="ghl_procs", rotation_store=f"file:{tmp_path}/procs.json")
    sandbox.admin.configure(access_token_lifetime_s=30)
    # Bytecode in a temporary directory: with PYTHONDONTWRITEBYTECODE each worker recompiles Airflow.
    pycache = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ghl-test-pycache-{os.getuid()}")
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "",
           "PYTHONPYCACHEPREFIX": pycache}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    stored = FileTokenStore(tmp_path / "procs.json").load()
    assert {r["token"] for r in results} == {stored.access_token}
    assert sorted(r["refreshes"] for r in results) == [0, 1]
    assert token_calls(sandbox) == 2  # the install and one refresh


IN_TASK_DAG = textwrap.dedent(
    """
    from airflow.sdk import DAG, task

    with DAG("ghl_oauth_in_task", schedule=None) as dag:

        @task
        def count_contacts() -> int:
            from airflow_provider_contacts.auth import _in_task_process
            from airflow_provider_contacts.hooks.contacts import ContactsHook

            assert _in_task_process(), "expected to run in a task process (Task SDK Variables)"
            return ContactsHook("ghl_in_task").search_contacts(page_limit=1).total

        count_contacts()
    """
)


def test_inside_a_task_the_tokens_rotate_through_an_airflow_variable(sandbox, monkeypatch, airflow_db, tmp_path) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models import Variable

    app = install_app(sandbox)
    oauth_conn(sandbox, app, monkeypatch, conn_id="ghl_in_task")
    (tmp_path / "ghl_oauth_in_task.py").write_text(IN_TASK_DAG)
    bag = BundleDagBag(dag_folder=str(tmp_path), bundle_path=tmp_path, bundle_name="dags-folder", safe_mode=False)
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)  # dag.test() runs serialized DAGs only
    dag = bag.dags["ghl_oauth_in_task"]

    run = dag.test()

    assert run.state == "success"
    stored = json.loads(Variable.get("ghl_oauth_tokens__ghl_in_task"))
    assert stored["refresh_token"] not in (None, app["refresh_token"])
    assert token_calls(sandbox) == 2


def test_a_stored_naive_expiry_is_taken_as_utc() -> None:
    # A custom store may write the expiry without an offset; comparing it must not raise TypeError.
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(tzinfo=None)
    tokens = TokenSet.from_json({"access_token": "a", "refresh_token": "r", "expires_at": later.isoformat()})
    assert tokens.expires_at is not None and tokens.expires_at.tzinfo is timezone.utc
    assert tokens.is_fresh()


def test_a_token_endpoint_error_that_is_not_a_json_object_is_reported(tmp_path) -> None:
    class _Answer:
        status_code, ok, reason = 400, False, "Bad Request"

        def json(self) -> list[str]:
            return ["not", "an", "object"]

    class _Session:
        def post(self, *args: object, **kwargs: object) -> _Answer:
            return _Answer()

    store = FileTokenStore(tmp_path / "tokens.json")
    store.save(TokenSet(access_token=None, refresh_token="r1"))
    settings = OAuthSettings(conn_id="c", base_url="http://127.0.0.1:9", client_id="id", client_secret="s")
    source = OAuthTokenSource(settings, store, http=_Session, process_cache=False)
    with pytest.raises(GHLAuthError, match="Bad Request; check the connection's OAuth extras") as info:
        source.get_access_token()
    assert info.value.status == 400


def test_the_former_token_store_extra_still_picks_the_store(sandbox, monkeypatch, tmp_path) -> None:
    # Connections written before the extra became 'rotation_store' (Airflow masks names with 'token').
    app = install_app(sandbox)
    conn_id = oauth_conn(sandbox, app, monkeypatch, conn_id="ghl_legacy_store", token_store=f"file:{tmp_path}/old.json")
    assert ContactsHook(conn_id).search_contacts(page_limit=1).total == 200
    assert FileTokenStore(tmp_path / "old.json").load().refresh_token not in (None, app["refresh_token"])
