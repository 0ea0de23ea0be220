"""Bad input fails before any request, naming the field and the fix; answers parse forward-compatibly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_contacts import models
from airflow_provider_contacts.errors import GHLConfigError, GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda h: h.create_contact({"email": "not-an-email"}),
         "create-contact: field 'email': 'not-an-email' is not a valid email address; fix the value or leave it out"),
        (lambda h: h.create_contact({"firstName": "Al", "favouriteColour": "red"}),
         "field 'favouriteColour' is not accepted here; remove it"),
        (lambda h: h.create_contact({}), "at least one of 'email', 'phone', 'firstName', 'lastName' or 'name'"),
        (lambda h: h.create_contact({"phone": "call me"}), "field 'phone': 'call me' is not a valid phone number"),
        (lambda h: h.create_contact({"firstName": "Al", "timezone": "Mars/Olympus"}), "is not an IANA time zone"),
        (lambda h: h.update_contact("c1", {"country": "Germany"}), "two-letter ISO 3166 country code"),
        (lambda h: h.update_contact("c1", {}), "an update needs at least one field to change"),
        (lambda h: h.create_task("c1", {"title": "Call"}), "create-task: field 'dueDate' is required; add it"),
        (lambda h: h.create_task("c1", {"title": "", "dueDate": "2030-01-01"}), "field 'title'"),
        (lambda h: h.create_task("c1", {"title": "x", "dueDate": "next tuesday"}),
         "field 'dueDate': 'next tuesday' is not a date; use ISO 8601"),
        (lambda h: h.update_contact("c1", {"dateOfBirth": "1990-02-30"}),
         "field 'dateOfBirth': '1990-02-30' is not a date of birth; use one of YYYY/MM/DD, MM/DD/YYYY"),
        (lambda h: h.update_contact("c1", {"customFields": [{"id": "F", "fieldValu": "x"}]}),
         "field 'customFields.0.fieldValu' is not accepted here; remove it (accepted fields at 'customFields.0': "
         "id, key, fieldValue, field_value, value)"),
        (lambda h: h.update_contact("c1", {"customFields": [{"fieldValue": "x"}]}),
         "field 'customFields.0': a custom field needs its 'id' (or its 'key'"),
        (lambda h: h.update_contact("c1", {"customFields": [{"id": "F", "value": 1, "field_value": 2}]}),
         "the value is given twice ('value' and 'field_value'); give it once"),
        (lambda h: h.update_contact("c1", {"phone": "+1 555 CALL NOW"}), "field 'phone': '+1 555 CALL NOW' is not a valid phone"),
        (lambda h: h.create_note("c1", {"body": "hi", "color": "red"}), "field 'color': 'red' is not a hex colour"),
        (lambda h: h.create_note("c1", {}), "create-note: field 'body' is required"),
        (lambda h: h.add_tags("c1", [" "]), "tags must be non-empty strings"),
        (lambda h: h.get_contact(""), "parameter 'contact_id': '' is not a HighLevel id"),
        (lambda h: h.delete_note("c1", ".."), "parameter 'note_id': '..' is not a HighLevel id"),
        (lambda h: h.search_contacts(page=30, page_limit=500), "pass 'searchAfter' instead"),
        (lambda h: h.search_contacts(page_limit=501), "field 'pageLimit'"),
        (lambda h: h.search_contacts(filters=[{"field": "dateAdded", "operator": "after", "value": 1}]),
         "field 'filters.0"),
        (lambda h: h.search_contacts(filters=[{"field": "dateAdded", "operator": "range", "value": {"from": 1}}]),
         "using only the keys gt, gte, lt, lte"),
        (lambda h: h.bulk_update_tags("toggle", ["c1"], ["t"]), "parameter 'type' must be 'add' or 'remove'"),
        (lambda h: h.get_duplicate_contact(), "give 'email' or 'number'"),
        (lambda h: h.search_location_tasks(limit=2000),
         "field 'limit': limit 2000 is above the task search's largest page (1000); use at most 1000 and page on with 'skip'"),
        (lambda h: h.get_contacts_by_business("b1", limit=200), "parameter 'limit' must be 1..100 (got 200)"),
    ],
)
def test_bad_input_fails_before_any_request(sandbox, ghl_conn, call, needle) -> None:
    hook = ContactsHook(ghl_conn)
    sandbox.admin.reset_counters()
    with pytest.raises(GHLValidationError) as err:
        call(hook)
    assert needle in str(err.value)
    assert err.value.status is None
    assert sandbox.admin.counters()["total"] == 0


def test_request_models_validate_for_operators_and_accept_models_as_bodies(sandbox, ghl_conn) -> None:
    body = models.validate_body(models.CreateContact, {"email": "m@example.com", "country": "us"}, "create-contact")
    assert body.country == "US"
    contact = ContactsHook(ghl_conn).create_contact(body)
    assert contact.email == "m@example.com" and contact.locationId == sandbox.location_id
    task_body = models.CreateTask(title="Follow up", dueDate=datetime(2030, 1, 2, 3, 4, 5, 600000))
    assert task_body.payload() == {"title": "Follow up", "dueDate": "2030-01-02T03:04:05.600Z", "completed": False}


def test_dates_are_timezone_aware_and_naive_values_are_utc() -> None:
    assert models.parse_datetime("2021-07-08T02:30:00.000Z") == datetime(2021, 7, 8, 2, 30, tzinfo=timezone.utc)
    assert models.parse_datetime("2021-07-16 11:00:00") == datetime(2021, 7, 16, 11, tzinfo=timezone.utc)
    assert models.parse_datetime(1_603_870_249_758).tzinfo is timezone.utc
    plus_two = models.parse_datetime("2021-07-08T04:30:00+02:00")
    assert plus_two == datetime(2021, 7, 8, 2, 30, tzinfo=timezone.utc) and plus_two.utcoffset() == timedelta(0)
    task = models.Task.model_validate({"id": "t", "dueDate": "2030-01-01T00:00:00"})
    assert task.dueDate.tzinfo is not None


def test_models_parse_dates_with_the_one_date_module() -> None:
    """models.parse_datetime / format_datetime stay importable and are dates.parse_datetime /
    dates.format_datetime: numbers and digit strings are epoch milliseconds by shape (negative ones
    too), exactly eight digits are YYYYMMDD, never a guess by magnitude."""
    from airflow_provider_contacts import dates

    for value in ("1714555800000", 1_714_555_800_000, "100000000000", -89_596_800_000, "20240501", "09/25/1990",
                  "2021-07-08T04:30:00+02:00", ""):
        assert models.parse_datetime(value) == dates.parse_datetime(value)
    assert models.parse_datetime("1714555800000") == datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    assert models.parse_datetime(-89_596_800_000) == datetime(1967, 3, 1, tzinfo=timezone.utc)
    assert models.parse_datetime("20240501") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert models.format_datetime(datetime(2024, 5, 1, 9, 30)) == "2024-05-01T09:30:00.000Z"
    for bad in ("next tuesday", True, ["2024-05-01"], "2024-02-30"):
        with pytest.raises(ValueError):
            models.parse_datetime(bad)
    body = models.validate_body(models.CreateTask, {"title": "t", "dueDate": "20240501"}, "create-task")
    assert body.payload()["dueDate"] == "2024-05-01T00:00:00.000Z"
    with pytest.raises(GHLValidationError, match="field 'dueDate': 'soon' is not a date"):
        models.validate_body(models.CreateTask, {"title": "t", "dueDate": "soon"}, "create-task")


def test_a_malformed_date_in_an_answer_is_kept_raw_and_logged(caplog) -> None:
    with caplog.at_level("WARNING", logger="airflow_provider_contacts.models"):
        page = models.ContactSearchPage.model_validate(
            {"contacts": [{"id": "c1", "dateAdded": "2024-05-01T00:00:00Z", "dateUpdated": "yesterday"},
                          {"id": "c2", "dateUpdated": "2024-05-02T00:00:00Z"}]}
        )
        task = models.Task.model_validate({"id": "t1", "dueDate": "31/12/2024", "dateAdded": 1_714_555_800_000})
    bad, good = page.contacts
    assert bad.dateUpdated == "yesterday" and bad.dateAdded == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert good.dateUpdated == datetime(2024, 5, 2, tzinfo=timezone.utc)
    assert task.dueDate == "31/12/2024" and isinstance(task.dateAdded, datetime)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith("record c1: field 'dateUpdated': 'yesterday' is not a date")
    assert warnings[1].startswith("record t1: field 'dueDate': '31/12/2024' is not a calendar date")
    assert all(w.endswith("kept as the raw value") for w in warnings)
    # Request bodies stay strict, and other types are still refused in answers.
    with pytest.raises(GHLValidationError, match="field 'dueDate'"):
        models.validate_body(models.UpdateTask, {"dueDate": "31/12/2024"}, "update-task")
    with pytest.raises(ValueError):
        models.Task.model_validate({"id": "t2", "dueDate": ["2024-05-01"]})
    # A raw string dateAdded counts as unknown, not as a crash, where the hook compares it.
    since = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert models.added_since(models.Note.model_validate({"id": "n", "dateAdded": "soon"}), since)
    assert not models.added_since(models.Note.model_validate({"id": "n", "dateAdded": "2024-04-30T00:00:00Z"}), since)


def test_answers_keep_unknown_fields_and_tolerate_nulls() -> None:
    contact = models.Contact.model_validate(
        {"id": "c", "tags": None, "customFields": None, "brandNewField": {"x": 1}, "followers": "u1"}
    )
    assert contact.tags == [] and contact.customFields == [] and contact.followers == ["u1"]
    assert contact.model_extra == {"brandNewField": {"x": 1}}
    assert contact.model_dump()["brandNewField"] == {"x": 1}


def test_search_filters_take_datetimes_and_groups() -> None:
    since = datetime(2024, 1, 1, tzinfo=timezone.utc)
    group = models.SearchFilterGroup(
        group="OR",
        filters=[
            models.SearchFilter(field="dateUpdated", operator="range", value={"gte": since}),
            models.SearchFilter(field="tags", operator="eq", value="vip"),
        ],
    )
    assert group.payload()["filters"][0]["value"] == {"gte": "2024-01-01T00:00:00.000Z"}


def test_bad_hook_parameters_are_named() -> None:
    with pytest.raises(GHLConfigError, match="parameter 'task_batch_size' must be an integer >= 1, got 0"):
        ContactsHook(task_batch_size=0)
    with pytest.raises(GHLConfigError, match="'daily_reserve'"):
        ContactsHook(daily_reserve=-5)


@pytest.mark.parametrize(
    ("extra", "host", "needle"),
    [
        ({"auth_type": "basic"}, "http://127.0.0.1:1", "extra 'auth_type' is 'basic'; use 'private_token' or 'oauth'"),
        ({"extra__ghl__read_timeout": "soon"}, "http://127.0.0.1:1", "extra 'read_timeout': 'soon' is not a positive number"),
        ({"user_type": "Agency"}, "http://127.0.0.1:1", "extra 'user_type' is 'Agency'; use 'Location' or 'Company'"),
        ({"auth_type": "oauth", "refresh_token": "r"}, "http://127.0.0.1:1", "OAuth needs extras 'client_id' and 'client_secret'"),
        ({"token_store": "somewhere"}, "http://127.0.0.1:1", None),
        ({}, "ftp://example.com", "'host': 'ftp://example.com' is not a URL"),
    ],
)
def test_connection_mistakes_name_the_field_and_the_fix(monkeypatch, extra, host, needle) -> None:
    conn = {"conn_type": "ghl", "host": host, "password": "t", "extra": {"location_id": "L", **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_GHL_BROKEN", json.dumps(conn))
    hook = ContactsHook("ghl_broken")
    if needle is None:  # a token store only matters for OAuth
        assert hook.token_source.get_access_token() == "t"
        return
    with pytest.raises(GHLConfigError) as err:
        hook.token_source  # noqa: B018 - reading the connection is the point
    assert needle in str(err.value)


def test_a_scheme_less_host_gets_https(monkeypatch) -> None:
    conn = {"conn_type": "ghl", "host": "services.example.com", "password": "t", "extra": {"location_id": "L"}}
    monkeypatch.setenv("AIRFLOW_CONN_GHL_PLAIN", json.dumps(conn))
    assert ContactsHook("ghl_plain").base_url == "https://services.example.com"
