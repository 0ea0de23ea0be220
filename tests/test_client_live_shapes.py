"""Contacts parse the same whichever endpoint they come from, and request bodies the LIVE API accepts
are not refused by our validation (ghl-live-notes.md, "Contact shapes differ by endpoint" and "What
the live API accepts that the spec's DTOs refuse"). Sync and async paths; the API is the in-test
:class:`~test_client_live_statuses.StubAPI`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timezone
from typing import Any

import pytest

from airflow_provider_contacts import models
from airflow_provider_contacts.errors import GHLValidationError
from airflow_provider_contacts.sync.extract import to_api_dict
from test_client_live_statuses import _fresh_process_state, stub_api  # noqa: F401 - fixtures

#: A contact as the live ``POST /contacts/search`` returns it (highlevel-api-docs #314).
SEARCH_CONTACT = {
    "id": "c1",
    "locationId": "L1",
    "firstName": "Ada",
    "firstNameLowerCase": "ada",
    "lastNameLowerCase": "lovelace",
    "email": "ada@example.com",
    "validEmail": True,
    "phone": "+12010710892",
    "phoneLabel": "Mobile",
    "address": "1 Test St",
    "businessName": "Engines Ltd",
    "additionalEmails": [{"email": "ada2@example.com"}],
    "additionalPhones": [{"phone": "+12010710893", "phoneLabel": "Work"}],
    "followers": ["u1"],
    "dndSettings": {"SMS": {"status": "active", "message": "", "code": ""}},
    "dateOfBirth": 74736000000,
    "customFields": [{"id": "F1", "value": "gold"}],
    "dateAdded": "2024-05-01T12:30:00.000Z",
    "dateUpdated": 1714577400000,
    "searchAfter": [1714577400000, "c1"],
}
#: The same contact from ``GET /contacts/{id}`` (``GetContectByIdSchema``).
GET_CONTACT = {
    "id": "c1",
    "locationId": "L1",
    "firstName": "Ada",
    "email": "ada@example.com",
    "phone": "+12010710892",
    "address1": "1 Test St",
    "dateOfBirth": "1972-05-15T00:00:00.000Z",
    "customFields": [{"id": "F1", "value": "gold"}],
    "dateAdded": "2024-05-01T12:30:00.000Z",
    "dateUpdated": "2024-05-01T15:30:00.000Z",
}
SEARCH_ONLY = ("businessName", "phoneLabel", "additionalEmails", "additionalPhones", "validEmail", "followers",
               "dndSettings", "firstNameLowerCase", "lastNameLowerCase")


def _contacts_api(search_contacts: list[dict[str, Any]], sent: list[Any] | None = None):
    def route(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
        if sent is not None and body is not None:
            sent.append(body)
        if path == "/contacts/search":
            return 200, {"contacts": search_contacts, "total": len(search_contacts)}
        if method == "GET":
            return 200, {"contact": GET_CONTACT}
        if method == "PUT":
            return 200, {"succeded": True, "contact": {"id": path.rsplit("/", 1)[-1], **(body or {})}}
        return 201, {"contact": {"id": "new1", **(body or {})}, "new": True}

    return route


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def test_the_issue_examples_parse_from_a_search_answer() -> None:
    contact = models.Contact.model_validate({"id": "c1", "address": "1 Test St", "dateOfBirth": 74736000000})
    assert contact.address1 == "1 Test St" and contact.dateOfBirth == date(1972, 5, 15)
    assert models.Contact.model_validate({"id": "c2", "dateOfBirth": -89596800000}).dateOfBirth == date(1967, 3, 1)


def test_search_and_get_give_the_same_contact(stub_api) -> None:
    _, hook = stub_api(_contacts_api([SEARCH_CONTACT]))
    searched = hook.search_contacts(page_limit=10).contacts[0]
    fetched = hook.get_contact("c1")
    for name in ("id", "firstName", "email", "phone", "address1", "dateOfBirth", "dateAdded", "customFields"):
        assert getattr(searched, name) == getattr(fetched, name), name
    assert searched.dateOfBirth == date(1972, 5, 15) and searched.address1 == "1 Test St"
    assert searched.dateUpdated == fetched.dateUpdated == datetime(2024, 5, 1, 15, 30, tzinfo=timezone.utc)


def test_search_fields_are_kept_in_the_raw_record(stub_api) -> None:
    _, hook = stub_api(_contacts_api([SEARCH_CONTACT]))
    contact = next(iter(hook.iter_search_contacts(page_limit=10)))
    raw = contact.model_dump(exclude_unset=True)
    for name in SEARCH_ONLY:
        assert raw[name] == SEARCH_CONTACT[name], name
    assert raw["address"] == "1 Test St" and raw["address1"] == "1 Test St"  # the original key stays
    assert raw["dateOfBirth"] == "1972-05-15"  # one form whichever endpoint: YYYY-MM-DD in every dump
    assert contact.model_dump(mode="json", exclude_unset=True)["dateOfBirth"] == "1972-05-15"
    stored = to_api_dict(contact)  # what the reconciliation stores as raw_json
    assert {k: stored[k] for k in SEARCH_ONLY} == {k: SEARCH_CONTACT[k] for k in SEARCH_ONLY}
    assert stored["address"] == "1 Test St" and "searchAfter" not in stored
    # A GET answer has no ``address``, and nothing invents one.
    assert "address" not in hook.get_contact("c1").model_dump(exclude_unset=True)


def test_async_search_parses_the_live_shape_like_the_sync_one(stub_api) -> None:
    _, hook = stub_api(_contacts_api([SEARCH_CONTACT, {**SEARCH_CONTACT, "id": "c2", "dateOfBirth": -89596800000}]))

    async def read() -> list[models.Contact]:
        return [c async for c in hook.aiter_search_contacts(page_limit=10)]

    first, second = asyncio.run(read())
    assert first.model_dump() == hook.search_contacts(page_limit=10).contacts[0].model_dump()
    assert (first.address1, first.dateOfBirth, second.dateOfBirth) == ("1 Test St", date(1972, 5, 15), date(1967, 3, 1))
    assert first.model_extra["businessName"] == "Engines Ltd"


def test_custom_field_values_read_under_any_name() -> None:
    contact = models.Contact.model_validate(
        {"id": "c", "customFields": [{"id": "a", "value": 1}, {"id": "b", "fieldValue": 2}, {"id": "c", "field_value": 3}]}
    )
    assert [f.value for f in contact.customFields] == [1, 2, 3]
    assert contact.model_dump(exclude_unset=True)["customFields"][1] == {"id": "b", "fieldValue": 2, "value": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1990-09-25", date(1990, 9, 25)), ("1990-09-25T00:00:00.000Z", date(1990, 9, 25)), (74736000000, date(1972, 5, 15)),
     (-89596800000, date(1967, 3, 1)), ("-89596800000", date(1967, 3, 1)), ("09/25/1990", date(1990, 9, 25)),
     (None, None), ("", None)],
)
def test_date_of_birth_in_answers(value, expected) -> None:
    assert models.Contact.model_validate({"id": "c", "dateOfBirth": value}).dateOfBirth == expected


def test_a_bad_date_in_an_answer_never_raises_and_is_kept_raw(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_contacts.models"):
        page = models.ContactSearchPage.model_validate({"contacts": [
            {"id": "c1", "dateOfBirth": "sometime in May", "dateAdded": 10**20, "dateUpdated": "2024-02-30T00:00:00Z"},
            {"id": "c2", "dateOfBirth": float("nan")},
            {"id": "c3", "dateOfBirth": 74736000000},
        ]})
    bad, nan, good = page.contacts
    assert (bad.dateOfBirth, bad.dateAdded, bad.dateUpdated) == ("sometime in May", 10**20, "2024-02-30T00:00:00Z")
    assert isinstance(nan.dateOfBirth, float) and good.dateOfBirth == date(1972, 5, 15)
    assert bad.model_dump(exclude_unset=True)["dateOfBirth"] == "sometime in May"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4 and all("kept as the raw value" in m for m in messages)
    assert messages[0].startswith("record c1: field 'dateOfBirth': 'sometime in May'")
    with pytest.raises(ValueError):  # not a date value at all: still a shape error
        models.Contact.model_validate({"id": "c", "dateOfBirth": ["1990-09-25"]})


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def test_the_issue_examples_are_accepted_and_sent_as_the_live_api_wants(stub_api) -> None:
    sent: list[Any] = []
    stub, hook = stub_api(_contacts_api([], sent))
    hook.update_contact("c1", {"customFields": [{"id": "F", "fieldValue": "x"}]})
    hook.update_contact("c1", {"dateOfBirth": "09/25/1990"})
    assert sent == [{"customFields": [{"id": "F", "fieldValue": "x"}]}, {"dateOfBirth": "1990-09-25"}]
    assert stub.paths("PUT") == ["/contacts/c1", "/contacts/c1"]


def test_custom_field_values_in_every_accepted_form(stub_api) -> None:
    sent: list[Any] = []
    _, hook = stub_api(_contacts_api([], sent))
    fields = [
        {"id": "A", "fieldValue": "x"},                  # live, preferred
        {"id": "B", "field_value": ["p", "q"]},          # the spec's (older, still accepted)
        {"id": "C", "value": 3},                         # the answers' name: sent as fieldValue
        {"key": "contact.plan", "fieldValue": "gold"},   # by key
        {"key": "contact.size", "field_value": {"n": 1}},
    ]
    hook.update_contact("c1", {"customFields": fields})
    hook.create_contact({"email": "a@example.com", "customFields": fields[:1]})
    hook.upsert_contact({"email": "a@example.com", "customFields": fields[2:3]})
    assert sent[0]["customFields"] == [
        {"id": "A", "fieldValue": "x"}, {"id": "B", "field_value": ["p", "q"]}, {"id": "C", "fieldValue": 3},
        {"key": "contact.plan", "fieldValue": "gold"}, {"key": "contact.size", "field_value": {"n": 1}},
    ]
    assert sent[1]["customFields"] == [{"id": "A", "fieldValue": "x"}]
    assert sent[2]["customFields"] == [{"id": "C", "fieldValue": 3}]


@pytest.mark.parametrize(
    "value",
    ["1990/09/25", "09/25/1990", "1990-09-25", "09-25-1990", "1990.09.25", "09.25.1990", "1990_09_25", "09_25_1990",
     date(1990, 9, 25), datetime(1990, 9, 25, 8, 0, tzinfo=timezone.utc), 654220800000, "654220800000",
     "1990-09-25T00:00:00.000Z"],
)
def test_date_of_birth_in_every_form_the_spec_lists_is_sent_as_iso(value) -> None:
    for model in (models.CreateContact, models.UpdateContact, models.UpsertContact):
        body = models.validate_body(model, {"firstName": "A", "dateOfBirth": value}, "op")
        assert body.payload()["dateOfBirth"] == "1990-09-25"


def test_date_of_birth_can_still_be_cleared_and_nonsense_is_refused() -> None:
    assert models.validate_body(models.UpdateContact, {"dateOfBirth": None}, "op").payload() == {"dateOfBirth": None}
    for bad in ("25/09/1990", "1990-02-30", "next year", True, ["1990-09-25"]):
        with pytest.raises(GHLValidationError, match=r"field 'dateOfBirth': .* is not a date of birth; use one of "
                                                     r"YYYY/MM/DD, MM/DD/YYYY, YYYY-MM-DD"):
            models.validate_body(models.UpdateContact, {"dateOfBirth": bad}, "update-contact")


@pytest.mark.parametrize(
    "phone", ["+12010710892", "+1 201-071-0892", "(201) 071-0892", "2010710892", "+44 20 7123 4567", "+1 555 123 4567 ext. 12",
              "555-0100", "+919876543210"],
)
def test_phones_as_highlevel_stores_them_are_accepted(stub_api, phone) -> None:
    sent: list[Any] = []
    _, hook = stub_api(_contacts_api([], sent))
    hook.update_contact("c1", {"phone": phone})
    assert sent == [{"phone": phone}]
    assert models.validate_body(models.CreateContact, {"phone": phone}, "create-contact").phone == phone


@pytest.mark.parametrize("phone", ["call me", "+", "12", "+1 (555) CALL-NOW", "ada@example.com", "1" * 21])
def test_only_what_cannot_be_a_phone_is_refused(phone) -> None:
    with pytest.raises(GHLValidationError, match="field 'phone': .* is not a valid phone number"):
        models.validate_body(models.UpdateContact, {"phone": phone}, "update-contact")


def test_a_refused_key_is_explained_with_the_keys_accepted_at_its_place(stub_api) -> None:
    stub, hook = stub_api(_contacts_api([]))
    with pytest.raises(GHLValidationError) as err:
        hook.update_contact("c1", {"customFields": [{"id": "F", "fieldvalue": "x"}]})
    message = err.value.message
    assert message == ("field 'customFields.0.fieldvalue' is not accepted here; remove it (accepted fields at "
                       "'customFields.0': id, key, fieldValue, field_value, value)")
    assert "firstName" not in message
    with pytest.raises(GHLValidationError, match=r"field 'dndSettings.SMS.state' is not accepted here; remove it "
                                                 r"\(accepted fields at 'dndSettings.SMS': status, message, code\)"):
        hook.update_contact("c1", {"dndSettings": {"SMS": {"state": "active"}}})
    with pytest.raises(GHLValidationError, match=r"^update-contact: field 'nickname' is not accepted here; remove it "
                                                 r"\(accepted fields: firstName, lastName, name, email, phone, address1"):
        hook.update_contact("c1", {"nickname": "Ada"})
    with pytest.raises(GHLValidationError) as err:
        hook.search_contacts(filters=[{"group": "OR", "filters": [{"field": "tags", "operator": "eq", "value": "v", "vlaue": 1}]}])
    assert err.value.message == ("field 'filters.0.filters.0.vlaue' is not accepted here; remove it (accepted fields "
                                 "at 'filters.0.filters.0': field, operator, value)")
    assert stub.calls == []  # all refused before any request
