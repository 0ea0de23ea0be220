"""Tokens without a given scope, from the config, the CLI, the admin surface and the pytest fixtures,
so the provider can be run against a location whose token lacks e.g. ``locations/tasks.readonly``."""

from __future__ import annotations

import json
import os

import pytest

from ghl_sandbox.__main__ import _parser, config_from_args
from ghl_sandbox.client import SandboxAdminError
from ghl_sandbox.config import ALL_SCOPES, SandboxConfig
from ghl_sandbox.testing import SandboxServer

TASKS_READ = "locations/tasks.readonly"


def _task_search_status(sb: SandboxServer, token: str | None = None) -> int:
    with sb.client(token=token) as api:
        return api.post(f"/locations/{sb.location_id}/tasks/search", json={"limit": 1}).status_code


def test_missing_scopes_config_takes_the_scope_from_the_private_token(sandbox_factory) -> None:
    sb = sandbox_factory(contacts=5, missing_scopes=(TASKS_READ,))
    assert _task_search_status(sb) == 401
    with sb.client() as api:
        cid = sb.admin.dump()["contacts"][0]["id"]
        assert api.get(f"/contacts/{cid}/tasks").status_code == 200  # the per-contact route needs contacts.readonly
        assert api.post("/contacts/search", json={"locationId": sb.location_id}).status_code == 200
    # tokens minted without explicit scopes lack it too; explicit scopes are taken as given
    assert _task_search_status(sb, sb.admin.issue_token()) == 401
    assert _task_search_status(sb, sb.admin.location_token(sb.location_id)) == 401
    assert _task_search_status(sb, sb.admin.issue_token(scopes=[TASKS_READ])) == 200


def test_token_scopes_config_lists_the_scopes_exactly(sandbox_factory) -> None:
    sb = sandbox_factory(contacts=3, token_scopes=("contacts.readonly",))
    with sb.client() as api:
        assert api.post("/contacts/search", json={"locationId": sb.location_id}).status_code == 200
        assert api.post("/contacts/", json={"locationId": sb.location_id, "firstName": "x"}).status_code == 401
    assert _task_search_status(sb) == 401


def test_scopes_can_change_at_run_time_and_reset_restores_them(sandbox: SandboxServer) -> None:
    assert _task_search_status(sandbox) == 200
    sandbox.admin.configure(missing_scopes=[TASKS_READ])
    assert _task_search_status(sandbox) == 401
    sandbox.admin.configure(missing_scopes=[])
    assert _task_search_status(sandbox) == 200
    sandbox.admin.configure(missing_scopes=[TASKS_READ])
    sandbox.admin.reset()
    assert _task_search_status(sandbox) == 200


def test_admin_issue_token_with_missing_scopes(sandbox: SandboxServer) -> None:
    token = sandbox.admin.issue_token(missing_scopes=[TASKS_READ, "contacts.write"])
    assert _task_search_status(sandbox, token) == 401
    with sandbox.client(token=token) as api:
        assert api.post("/contacts/", json={"locationId": sandbox.location_id}).status_code == 401
        assert api.get(f"/locations/{sandbox.location_id}/customFields").status_code == 200
    with pytest.raises(SandboxAdminError, match="not.a.scope"):
        sandbox.admin.issue_token(missing_scopes=["not.a.scope"])


def test_unknown_scope_names_are_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match="missing_scopes"):
        SandboxConfig(missing_scopes=("locations/tasks.read",))
    with pytest.raises(ValueError, match="token_scopes"):
        SandboxConfig(token_scopes=("everything",))
    cfg = SandboxConfig(missing_scopes="locations/tasks.readonly, contacts.write")  # type: ignore[arg-type]
    assert cfg.default_scopes() == frozenset(ALL_SCOPES) - {TASKS_READ, "contacts.write"}


def test_cli_flags_for_scopes_strict_mode_and_lag() -> None:
    args = _parser().parse_args(["--missing-scopes", f"{TASKS_READ},contacts.write", "--strict-spec",
                                 "--search-lag-s", "2.5"])
    cfg = config_from_args(args)
    assert cfg.missing_scopes == (TASKS_READ, "contacts.write") and cfg.strict_spec and cfg.search_lag_s == 2.5
    cfg = config_from_args(_parser().parse_args(["--scopes", "contacts.readonly,contacts.write", "--search-lag", "1"]))
    assert cfg.token_scopes == ("contacts.readonly", "contacts.write") and cfg.search_lag_s == 1.0
    default = config_from_args(_parser().parse_args([]))
    # The CLI lags search like HighLevel's index (a few seconds); SandboxConfig() does not.
    assert default.strict_spec is False and default.search_lag_s == 2.0 and default.token_scopes is None
    assert config_from_args(_parser().parse_args(["--search-lag", "0"])).search_lag_s == 0
    assert SandboxConfig().search_lag_s == 0
    with pytest.raises(SystemExit, match="missing_scopes"):
        config_from_args(_parser().parse_args(["--missing-scopes", "bogus"]))


def test_ghl_conn_factory_sets_a_connection_with_a_token_lacking_the_scope(sandbox: SandboxServer,
                                                                             ghl_conn_factory) -> None:
    conn_id = ghl_conn_factory(missing_scopes=[TASKS_READ], read_timeout=5)
    conn = json.loads(os.environ["AIRFLOW_CONN_GHL_DEFAULT"])
    assert conn_id == "ghl_default" and conn["host"] == sandbox.base_url
    assert conn["extra"] == {"location_id": sandbox.location_id, "read_timeout": 5}
    assert conn["password"] != sandbox.token
    assert _task_search_status(sandbox, conn["password"]) == 401
    with sandbox.client(token=conn["password"]) as api:
        assert api.post("/contacts/search", json={"locationId": sandbox.location_id}).status_code == 200
    other = ghl_conn_factory(scopes=["contacts.readonly"], conn_id="ghl_readonly")
    assert other == "ghl_readonly" and "AIRFLOW_CONN_GHL_READONLY" in os.environ


def test_conn_json_takes_another_token(sandbox: SandboxServer) -> None:
    token = sandbox.admin.issue_token(missing_scopes=[TASKS_READ])
    conn = json.loads(sandbox.conn_json(token=token, read_timeout=3))
    assert conn["password"] == token and conn["extra"]["read_timeout"] == 3
    assert json.loads(sandbox.conn_json())["password"] == sandbox.token
