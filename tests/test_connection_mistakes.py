"""Mistakes a new user makes in a ``ghl`` connection, and what they are told.

1. Extras the provider does not read are not ignored silently: HighLevel's own camelCase
   spellings (``locationId``, ``clientId``, ``refreshToken`` ...) are read as the field when the
   field itself is not set; a field and another spelling of it with different values is an error
   naming both; every other unknown key gets a did-you-mean; one warning per connection and process
   names them (never a value); a key close to a field the connection needs, while that field is
   unset, is an error that says what to rename. Keys Airflow writes itself never warn.
2. A location id is checked for shape where it enters - the connection's extra, the hook's
   ``location_id``, the operators' rendered ``location_id`` - with the path builder's rule, before
   any request, naming where it came from.
3. Error messages say the problem once and the fix once.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_contacts import CONN_FIELDS
from airflow_provider_contacts.errors import GHLConfigError, GHLLocationAccessError, GHLValidationError
from airflow_provider_contacts.hooks import settings as settings_module
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.paths import MAX_ID_LENGTH, is_highlevel_id
from airflow_provider_contacts.hooks.settings import ConnectionSettings
from airflow_provider_contacts.params import GHLInputError, clean_location_id
from test_client_live_statuses import FAST, LOCATION_403, _error, _fresh_process_state, stub_api  # noqa: F401

LOCATION = "wdEmR0mrJTnXfUq5Wk9d"  # 20 characters, as HighLevel's
LOGGER = "airflow_provider_contacts.hooks.settings"


@pytest.fixture(autouse=True)
def _no_warnings_yet():
    warned = getattr(settings_module, "_WARNED_EXTRAS", set())
    warned.clear()
    yield
    warned.clear()


def _conn(extra: dict[str, Any], password: str | None = "pit-token-value") -> SimpleNamespace:
    return SimpleNamespace(extra_dejson=extra, host=None, port=None, schema=None, password=password, login=None)


def _read(extra: dict[str, Any], conn_id: str = "ghl_badfield", **kw: Any) -> ConnectionSettings:
    return ConnectionSettings.from_connection(_conn(extra, **kw), conn_id)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def _ok(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
    return 200, {"contact": {"id": "c1"}, "contacts": [], "total": 0, "customFields": [], "tasks": []}


# -- 1. extras the provider does not read ---------------------------------------------------------
def test_the_trial_connection_with_highlevels_camel_case_location_id_works(caplog, stub_api) -> None:
    stub, hook = stub_api(_ok, conn_id="ghl_badfield", location_id=None, locationId=LOCATION)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert hook.location_id == LOCATION
        hook.search_contacts(page_limit=1)
    assert stub.calls and stub.calls[0][2]["locationId"] == LOCATION
    assert _warnings(caplog) == [
        "connection 'ghl_badfield': extra 'locationId' is read as 'location_id': rename it to 'location_id'."
    ]


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [("locationId", "location_id", LOCATION), ("clientId", "client_id", "65f0c0ffee-lq2x9"),
     ("clientSecret", "client_secret", "0b5e2b1c-5d7e"), ("refreshToken", "refresh_token", "eyJ.refresh.sig"),
     ("companyId", "company_id", "Cmp8Xq2LkQ"), ("userType", "user_type", "Company"),
     ("authType", "auth_type", "oauth"), ("appId", "app_id", "65f0c0ffee"), ("Location ID", "location_id", LOCATION),
     ("location-id", "location_id", LOCATION), ("LOCATION_ID", "location_id", LOCATION),
     ("extra__ghl__locationId", "location_id", LOCATION), ("readTimeout", "read_timeout_s", 7.0),
     ("rotationStore", "token_store", "file:/tmp/t.json")],
)
def test_other_spellings_of_a_field_are_read_as_it(caplog, key, field, value) -> None:
    base = {"auth_type": "oauth", "client_id": "c", "client_secret": "s"} if field == "token_store" else {}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        settings = _read({**base, key: value}, conn_id=f"ghl_{field}")
    assert getattr(settings, field) == value
    (warning,) = _warnings(caplog)
    assert repr(key) in warning and "rename it to" in warning
    if "token" in key.lower() or "secret" in key.lower():
        assert str(value) not in warning


def test_a_field_and_another_spelling_with_different_values_is_an_error_naming_both() -> None:
    with pytest.raises(GHLConfigError) as err:
        _read({"location_id": LOCATION, "locationId": "otherLocation123"})
    message = str(err.value)
    assert "'location_id'" in message and "'locationId'" in message and "ghl_badfield" in message
    assert "delete the other" in message
    # the same value twice is no conflict
    assert _read({"location_id": LOCATION, "locationId": f" {LOCATION} "}).location_id == LOCATION
    # an empty spelling is no value: the field is used
    assert _read({"location_id": LOCATION, "locationId": ""}).location_id == LOCATION


def test_a_conflict_between_secret_spellings_shows_no_value() -> None:
    with pytest.raises(GHLConfigError) as err:
        _read({"auth_type": "oauth", "client_id": "c", "client_secret": "s", "refresh_token": "rt-one-secret",
               "refreshToken": "rt-two-secret"})
    message = str(err.value)
    assert "'refresh_token'" in message and "'refreshToken'" in message
    assert "rt-one-secret" not in message and "rt-two-secret" not in message


def test_a_misspelt_needed_field_is_an_error_saying_what_to_rename() -> None:
    with pytest.raises(GHLConfigError) as err:
        _read({"loction_id": LOCATION})
    assert str(err.value) == (
        "connection 'ghl_badfield': the extra 'location_id' is not set, but the connection has "
        "'loction_id': rename it to 'location_id'"
    )
    with pytest.raises(GHLConfigError, match="has 'clientid_x'.*rename it to 'client_id'"):
        _read({"location_id": LOCATION, "auth_type": "oauth", "clientid_x": "c", "client_secret": "s"})
    with pytest.raises(GHLConfigError, match="has 'compnay_id'.*rename it to 'company_id'"):
        _read({"auth_type": "oauth", "user_type": "Company", "client_id": "c", "client_secret": "s",
               "compnay_id": "Cmp8Xq2LkQ"})
    # an agency connection works without a location (every location): a key close to it only warns
    agency = _read({"auth_type": "oauth", "user_type": "Company", "client_id": "c", "client_secret": "s",
                    "company_id": "Cmp8Xq2LkQ", "location_ids": [LOCATION]})
    assert agency.location_id is None


def test_a_misspelt_key_next_to_its_field_or_an_optional_one_only_warns(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        settings = _read({"location_id": LOCATION, "loction_id": "x", "comapny_id": "c", "apiversion2": "v"})
    assert settings.location_id == LOCATION and settings.company_id is None
    (warning,) = _warnings(caplog)
    assert "'loction_id' is not read: did you mean 'location_id'?" in warning
    assert "'comapny_id' is not read: did you mean 'company_id'?" in warning


def test_an_unknown_key_is_named_with_the_settings_and_no_value(caplog) -> None:
    extra = {"location_id": LOCATION, "foo": "bar-value", "access_token": "pit-secret-in-extra",
             "webhookSecret": "whsec-value"}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _read(extra)
    (warning,) = _warnings(caplog)
    assert "'foo' is not read: it is not a setting of a 'ghl' connection" in warning
    assert "'access_token' is not read: the Private Integration token goes into the connection's password" in warning
    assert "'webhookSecret'" in warning
    assert all(field in warning for field in CONN_FIELDS)  # the settings, for the unknown one
    for value in extra.values():
        assert value == LOCATION or value not in warning


def test_one_warning_per_connection(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            _read({"locationId": LOCATION, "foo": 1})
        _read({"locationId": LOCATION}, conn_id="ghl_other")
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert "'locationId'" in warnings[0] and "'foo'" in warnings[0]  # one warning naming each key


def test_keys_airflow_and_its_form_write_do_not_warn(caplog) -> None:
    form = {name: None for name in CONN_FIELDS}  # what the form stores for empty fields
    prefixed = {f"extra__ghl__{name}": "" for name in CONN_FIELDS}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _read({**form, "location_id": LOCATION})
        _read({**prefixed, "extra__ghl__location_id": LOCATION})
        _read({"location_id": LOCATION, "token_store": "variable"})  # the former name, still read
        _read({"location_id": LOCATION, "__extra__": "{}", "extra__http__endpoint": "x"})
    assert _warnings(caplog) == []


def test_no_two_fields_spell_alike() -> None:
    squashed = [settings_module._squash(f) for f in settings_module._known_fields()]
    assert len(squashed) == len(set(squashed))


# -- 2. the shape of a location id, checked where it enters ----------------------------------------
BAD_LOCATIONS = ["../etc", "..", "a/b", "a?b", "a b", "é", "a" * (MAX_ID_LENGTH + 1), "%2e"]
GOOD_LOCATIONS = [LOCATION, "L1", "a", "x_y-z", "5f0c1d2e3b4a596877665544", "a" * MAX_ID_LENGTH]


@pytest.mark.parametrize("bad", BAD_LOCATIONS)
def test_a_bad_location_extra_is_refused_naming_the_connection_extra(stub_api, bad) -> None:
    stub, hook = stub_api(_ok, conn_id="ghl_badloc", location_id=bad)
    for call in (lambda: hook.search_contacts(page_limit=1), hook.get_custom_fields, lambda: hook.location_id):
        with pytest.raises(GHLConfigError) as err:
            call()
        assert str(err.value).startswith("connection 'ghl_badloc': the extra 'location_id' is ")
        assert "is not a HighLevel id" in str(err.value) and "set it to the id of the location" in str(err.value)
    ok, message = ContactsHook("ghl_badloc").test_connection()
    assert not ok and "the extra 'location_id'" in message
    assert stub.calls == []


def test_the_key_a_bad_location_was_read_from_is_named(stub_api) -> None:
    stub, hook = stub_api(_ok, conn_id="ghl_badloc", location_id=None, locationId="../etc")
    with pytest.raises(GHLConfigError, match="the extra 'locationId' is '../etc'"):
        hook.search_contacts()
    stub, hook = stub_api(_ok, conn_id="ghl_badloc2", location_id=None, extra__ghl__location_id="../etc")
    with pytest.raises(GHLConfigError, match="the extra 'extra__ghl__location_id' is '../etc'"):
        hook.search_contacts()
    assert stub.calls == []


@pytest.mark.parametrize("bad", BAD_LOCATIONS)
def test_a_bad_hook_location_is_refused_by_the_constructor(stub_api, bad) -> None:
    stub, _ = stub_api(_ok)
    with pytest.raises(GHLValidationError) as err:
        ContactsHook("ghl_stub", location_id=bad)
    assert err.value.status is None
    assert err.value.message.startswith("GHLContactsHook: parameter 'location_id': ")
    assert "is not a HighLevel id" in err.value.message and "pass the location's id" in err.value.message
    assert stub.calls == []


@pytest.mark.parametrize("bad", BAD_LOCATIONS)
def test_a_bad_operator_location_fails_before_any_request(stub_api, bad) -> None:
    from airflow_provider_contacts.operators.contacts import GHLGetContactOperator

    stub, _ = stub_api(_ok)
    op = GHLGetContactOperator(task_id="get", ghl_conn_id="ghl_stub", contact_id="x", location_id=bad)
    with pytest.raises(GHLInputError) as err:
        op.execute({})
    assert "parameter 'location_id'" in str(err.value) and "is not a HighLevel id" in str(err.value)
    assert "contact_id" not in str(err.value)
    assert stub.calls == []


def test_clean_location_id_is_liberal_with_what_the_id_rule_accepts() -> None:
    for unset in (None, "", "  ", "None"):
        assert clean_location_id(unset) is None
    for good in GOOD_LOCATIONS:
        assert is_highlevel_id(good)
        assert clean_location_id(good) == good
        assert clean_location_id(f" {good}\n") == good  # a templating artefact
    assert clean_location_id(12345) == "12345"
    for bad in [*BAD_LOCATIONS, ["L1"], True]:
        with pytest.raises(GHLInputError, match="^GetContact: parameter 'location_id'"):
            clean_location_id(bad, owner="GetContact")


@pytest.mark.parametrize("good", GOOD_LOCATIONS)
def test_every_id_the_path_rule_accepts_is_accepted_at_every_entry(stub_api, good) -> None:
    stub, hook = stub_api(_ok, location_id=f" {good} ")  # copied with a space: stripped
    assert hook.location_id == good
    assert ContactsHook("ghl_stub", location_id=good).location_id == good
    hook.get_custom_fields()
    assert stub.calls[-1][1] == f"/locations/{good}/customFields"


# -- 3. messages that say the problem once and the fix once ---------------------------------------
def test_the_location_403_reads_as_two_sentences(stub_api) -> None:
    _, hook = stub_api(lambda *a: _error(403, LOCATION_403))
    with pytest.raises(GHLLocationAccessError) as err:
        hook.search_contacts(page_limit=1)
    assert ".:" not in str(err.value)
    assert err.value.message.startswith(f"{LOCATION_403} The token was issued for another location")


def test_test_connection_says_a_bad_token_once(stub_api) -> None:
    _, hook = stub_api(lambda *a: _error(401, "Invalid JWT"))
    ok, message = hook.test_connection()
    assert not ok
    assert message == (
        "HighLevel rejected the token (401): it is invalid or expired (HighLevel: 'Invalid JWT'). Put a valid "
        "Private Integration token in the connection's password, or re-authorise the OAuth app and update the "
        "'refresh_token' extra."
    )


def test_test_connection_says_a_location_403_once(stub_api) -> None:
    _, hook = stub_api(lambda *a: _error(403, LOCATION_403))
    ok, message = hook.test_connection()
    assert not ok
    assert message == (
        "HighLevel refused the location 'L1' (403): the token was issued for another location. Set the "
        "connection's 'location_id' extra to the token's location, or use a token issued for this one."
    )


def test_test_connection_says_a_missing_scope_403_once(stub_api) -> None:
    _, hook = stub_api(lambda *a: _error(403, "Forbidden resource"))
    ok, message = hook.test_connection()
    assert not ok
    assert message.count("lacks") == 1 and message.count("re-authorise") == 1
    assert "'Forbidden resource'" in message and "contacts.readonly" in message

