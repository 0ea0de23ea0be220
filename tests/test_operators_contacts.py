"""A sales-ops engineer manages contacts from DAGs: find, dedupe, create, update, upsert, delete."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.operators.contacts import (
    GHLCreateContactOperator,
    GHLDeleteContactOperator,
    GHLGetContactOperator,
    GHLGetContactsOperator,
    GHLGetDuplicateContactOperator,
    GHLSearchContactsOperator,
    GHLUpdateContactOperator,
    GHLUpsertContactOperator,
)
from airflow_provider_contacts.params import GHLInputError


def test_search_finds_the_tagged_contacts_sorted_and_returns_them_in_xcom(sandbox, ghl_conn) -> None:
    expected = {c["id"] for c in sandbox.admin.dump()["contacts"] if "trial" in c["tags"]}
    op = GHLSearchContactsOperator(
        task_id="trials",
        filters='[{"field": "tags", "operator": "eq", "value": "{{ params.tag }}"}]',
        sort=[{"field": "dateAdded", "direction": "desc"}],
        page_limit=5,
    )
    result = run_operator(op, params={"tag": "trial"})
    ids = [r["id"] for r in result["records"]]
    assert result["count"] == len(expected) > 5 and set(ids) == expected
    added = [r["dateAdded"] for r in result["records"]]
    assert added == sorted(added, reverse=True)
    assert calls(sandbox, "search-contacts-advanced") == len(expected) // 5 + 1


def test_search_rejects_an_unknown_filter_operator_before_any_request(sandbox, ghl_conn) -> None:
    op = GHLSearchContactsOperator(task_id="bad", filters=[{"field": "tags", "operator": "equals", "value": "vip"}])
    with pytest.raises(GHLInputError) as err:
        run_operator(op)
    assert "parameter 'filters[0]': field 'operator': 'equals' is invalid" in str(err.value)
    assert calls(sandbox, "search-contacts-advanced") == 0


def test_duplicate_lookup_finds_the_contact_by_email_or_reports_none(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox, email=lambda e: bool(e))
    found = run_operator(GHLGetDuplicateContactOperator(task_id="dup", email=contact["email"].upper()))
    assert found["found"] is True and found["id"] == contact["id"]
    missing = run_operator(GHLGetDuplicateContactOperator(task_id="dup", email="nobody.here@example.net"))
    assert missing == {"found": False}
    with pytest.raises(GHLInputError, match="set email or number"):
        run_operator(GHLGetDuplicateContactOperator(task_id="dup"))
    assert calls(sandbox, "get-duplicate-contact") == 2


def test_get_contact_returns_the_record_and_a_missing_one_fails(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    got = run_operator(GHLGetContactOperator(task_id="get", contact_id=contact["id"]))
    assert got["id"] == contact["id"] and got["lastName"] == contact["lastName"]
    with pytest.raises(GHLNotFoundError):
        run_operator(GHLGetContactOperator(task_id="get", contact_id="doesNotExist0000"))


def test_create_then_update_a_contact(sandbox, ghl_conn) -> None:
    created = run_operator(
        GHLCreateContactOperator(
            task_id="create",
            body={"firstName": "Łukasz", "email": "lukasz.new@example.com", "tags": ["webinar-lead"], "country": "pl"},
        )
    )
    stored = {c["id"]: c for c in sandbox.admin.dump()["contacts"]}[created["id"]]
    assert stored["email"] == "lukasz.new@example.com" and stored["country"] == "PL"
    assert created["tags"] == ["webinar-lead"] and set(created) <= {
        "id", "locationId", "email", "phone", "firstName", "lastName", "companyName", "tags", "businessId",
        "dateAdded", "dateUpdated",
    }
    updated = run_operator(
        GHLUpdateContactOperator(task_id="update", contact_id=created["id"], body={"lastName": "Kowalski"})
    )
    assert updated["lastName"] == "Kowalski"
    assert {c["id"]: c for c in sandbox.admin.dump()["contacts"]}[created["id"]]["lastName"] == "Kowalski"


def test_create_rejects_a_bad_email_naming_the_field(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match=r"field 'email'.*not a valid email"):
        run_operator(GHLCreateContactOperator(task_id="create", body={"email": "not-an-email"}))
    assert calls(sandbox, "create-contact") == 0


def test_upsert_creates_once_then_updates_the_same_contact(sandbox, ghl_conn) -> None:
    body = {"email": "repeat.buyer@example.com", "firstName": "Ana", "source": "import"}
    first = run_operator(GHLUpsertContactOperator(task_id="upsert", body=body))
    second = run_operator(GHLUpsertContactOperator(task_id="upsert", body={**body, "lastName": "Silva"}))
    assert first["new"] is True and second["new"] is False and first["id"] == second["id"]
    assert second["lastName"] == "Silva"
    matches = [c for c in sandbox.admin.dump()["contacts"] if c.get("email") == "repeat.buyer@example.com"]
    assert len(matches) == 1


def test_delete_is_idempotent_unless_missing_ok_is_false(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    op = GHLDeleteContactOperator(task_id="delete", contact_id=contact["id"])
    assert run_operator(op) == {"contact_id": contact["id"], "deleted": True, "missing": False}
    assert contact["id"] not in {c["id"] for c in sandbox.admin.dump()["contacts"]}
    # The live API answers a deleted contact with 400 "Contact not found" (the sandbox too): still done.
    assert run_operator(op) == {"contact_id": contact["id"], "deleted": False, "missing": True}
    with pytest.raises(GHLNotFoundError) as err:
        run_operator(GHLDeleteContactOperator(task_id="delete", contact_id=contact["id"], missing_ok=False))
    assert isinstance(err.value, AirflowFailException)  # no retries: a missing contact stays missing


def test_legacy_list_pages_through_contacts_and_stops_at_max_records(sandbox, ghl_conn) -> None:
    result = run_operator(GHLGetContactsOperator(task_id="legacy", limit=30, max_records=75))
    ids = [r["id"] for r in result["records"]]
    assert result["count"] == 75 and len(set(ids)) == 75
    assert calls(sandbox, "get-contacts") == 3
    with pytest.raises(GHLInputError, match="parameter 'limit'"):
        run_operator(GHLGetContactsOperator(task_id="legacy", limit=500))
