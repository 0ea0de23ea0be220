"""The connection extra naming the OAuth token store is not masked by Airflow (it holds no secret),
the secret extras are; the former name ``token_store`` is still read, and a ``***`` left in either
by Airflow's masker is refused with the fix instead of being taken for a store."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_contacts import CONN_FIELDS
from airflow_provider_contacts.auth import (
    ROTATION_STORE_EXTRA,
    FileTokenStore,
    VariableTokenStore,
    build_token_store,
    default_variable_key,
    rotation_store_extra,
)
from airflow_provider_contacts.errors import GHLConfigError

#: A plausible value for each connection form field.
_VALUES = {
    "location_id": "ve9EPM428h8vShlRW1KT",
    "auth_type": "oauth",
    "client_id": "65f0c0ffee-lq2x9",
    "client_secret": "0b5e2b1c-5d7e-4c0a-9f7e-2f8a1c3d4e5f",
    "refresh_token": "eyJhbGciOiJIUzI1NiJ9.refresh.sig",
    "user_type": "Company",
    "company_id": "Cmp8Xq2LkQ",
    "app_id": "65f0c0ffee",
    "rotation_store": "file:/var/lib/airflow/ghl_tokens.json",
    "api_version": "2021-07-28",
    "connect_timeout": 5,
    "read_timeout": 45.5,
    "rate_limit_redis_conn_id": "redis_ghl_limits",
    "rate_limit_key_prefix": "ghl:ratelimit:prod",
}
SECRET_FIELDS = {"client_secret", "refresh_token"}


def _shown_by_airflow(extra: dict[str, str]) -> dict[str, str]:
    """``extra`` as Airflow's REST API / UI shows a connection (its own redaction, its own config)."""
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionResponse

    shown = ConnectionResponse.model_validate(
        {"conn_id": "ghl_masking", "conn_type": "ghl", "description": None, "host": None, "login": None,
         "schema": None, "port": None, "password": None, "extra": json.dumps(extra), "team_name": None}
    )
    return json.loads(shown.extra)


def test_every_form_field_has_a_value_here() -> None:
    assert set(_VALUES) == set(CONN_FIELDS)


@pytest.mark.parametrize("prefixed", [False, True], ids=["short", "extra__ghl__"])
def test_airflow_masks_the_secret_fields_and_no_other(prefixed: bool) -> None:
    from airflow._shared.secrets_masker import should_hide_value_for_key  # what the API server uses

    def key(name: str) -> str:
        return f"extra__ghl__{name}" if prefixed else name

    hidden = {name for name in CONN_FIELDS if should_hide_value_for_key(key(name))}
    assert hidden == SECRET_FIELDS
    shown = _shown_by_airflow({key(name): value for name, value in _VALUES.items()})
    for name, value in _VALUES.items():
        assert shown[key(name)] == ("***" if name in SECRET_FIELDS else value), name
    for name in SECRET_FIELDS:  # and the form hides what it types
        assert CONN_FIELDS[name]["schema"].get("format") == "password"


def test_the_store_field_is_the_unmasked_name_and_the_former_one_was_masked() -> None:
    from airflow._shared.secrets_masker import should_hide_value_for_key

    assert ROTATION_STORE_EXTRA in CONN_FIELDS and "token_store" not in CONN_FIELDS
    assert not should_hide_value_for_key(ROTATION_STORE_EXTRA)
    assert should_hide_value_for_key("token_store")  # why it was renamed
    assert _shown_by_airflow({"token_store": "variable"}) == {"token_store": "***"}


@pytest.mark.parametrize(
    ("extras", "spec"),
    [
        ({}, None),
        ({"rotation_store": "file:/tmp/a.json"}, "file:/tmp/a.json"),
        ({"extra__ghl__rotation_store": " sql:pg "}, "sql:pg"),
        ({"token_store": "variable:k"}, "variable:k"),  # legacy name
        ({"extra__ghl__token_store": "redis:r"}, "redis:r"),  # legacy, as the old form saved it
        ({"rotation_store": "", "token_store": "file:/tmp/b.json"}, "file:/tmp/b.json"),
        ({"rotation_store": "variable", "token_store": "file:/tmp/old.json"}, "variable"),  # new name wins
        ({"rotation_store": "variable:k", "token_store": "***"}, "variable:k"),  # a masked leftover is ignored
    ],
)
def test_the_store_extra_and_its_legacy_alias(extras: dict[str, str], spec: str | None) -> None:
    assert rotation_store_extra(extras, "ghl_x") == spec


@pytest.mark.parametrize(
    ("extras", "name"),
    [
        ({"token_store": "***"}, "token_store"),
        ({"extra__ghl__token_store": "***"}, "extra__ghl__token_store"),
        ({"rotation_store": "***", "token_store": "variable"}, "rotation_store"),
        ({"extra__ghl__rotation_store": " *** "}, "extra__ghl__rotation_store"),
    ],
)
def test_a_masked_store_extra_is_refused_with_the_fix(extras: dict[str, str], name: str) -> None:
    with pytest.raises(GHLConfigError) as err:
        rotation_store_extra(extras, "ghl_x")
    message = str(err.value)
    assert f"extra {name!r} is '***'" in message and "'ghl_x'" in message
    assert "Fix: put the store into the extra 'rotation_store'" in message
    if "token_store" in name:
        assert "contains 'token'" in message and f"delete the extra {name!r}" in message


def test_a_masked_store_is_irrelevant_to_a_private_token_connection() -> None:
    assert rotation_store_extra({"token_store": "***"}, "ghl_x", oauth=False) is None


def test_build_token_store_refuses_a_masked_spec() -> None:
    with pytest.raises(GHLConfigError, match=r"is '\*\*\*'.*Fix: put the store into the extra 'rotation_store'"):
        build_token_store("***", "ghl_x")


def test_the_legacy_name_is_read_with_a_rename_warning_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts.auth"):
        for _ in range(3):
            assert rotation_store_extra({"token_store": "variable"}, "ghl_legacy_warn") == "variable"
    warnings = [r for r in caplog.records if "rename it to 'rotation_store'" in r.getMessage()]
    assert len(warnings) == 1


def test_a_connection_read_by_the_hook_settings(monkeypatch, tmp_path) -> None:
    from airflow_provider_contacts.hooks.settings import ConnectionSettings

    class Conn:
        host, port, schema, password = "http://127.0.0.1:1", None, None, None

        def __init__(self, extra: dict[str, str]) -> None:
            self.extra_dejson = extra

    base = {"auth_type": "oauth", "client_id": "id", "client_secret": "s" * 12}
    new = ConnectionSettings.from_connection(Conn({**base, "rotation_store": f"file:{tmp_path}/t.json"}), "c1")
    assert isinstance(build_token_store(new.token_store, "c1"), FileTokenStore)
    old = ConnectionSettings.from_connection(Conn({**base, "extra__ghl__token_store": "variable"}), "c2")
    store = build_token_store(old.token_store, "c2")
    assert isinstance(store, VariableTokenStore) and store.key == default_variable_key("c2")
    with pytest.raises(GHLConfigError, match="extra 'token_store' is '\\*\\*\\*'"):
        ConnectionSettings.from_connection(Conn({**base, "token_store": "***"}), "c3")
    private = ConnectionSettings.from_connection(Conn({"token_store": "***"}), "c4")
    assert private.auth_type == "private_token" and private.token_store is None
