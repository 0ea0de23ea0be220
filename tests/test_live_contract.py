"""Contract tests: the client, the shipped mapping and the sandbox agree with the live API.

Every test here runs against the live-like sandbox, and again against a real HighLevel location
when these are set (each skips with the reason otherwise)::

    GHL_LIVE_BASE_URL=https://services.leadconnectorhq.com
    GHL_LIVE_TOKEN=pit-...            # a Private Integration token (contacts + tasks read scopes)
    GHL_LIVE_LOCATION_ID=ve9EPM428h8vShlRW1KT

    .venv/bin/python -m pytest tests/test_live_contract.py -k live

The read-only tests send only reads (a few dozen requests). The tests marked ``writes`` create a
contact, a task and a note with a unique e-mail address, check them and delete them again; against
the live location they also need ``GHL_LIVE_ALLOW_WRITES=1``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_contacts.errors import GHLNotFoundError, GHLScopeError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.sync.extract import to_api_dict
from airflow_provider_contacts.sync.mapping import FieldMapping, MappedRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
LIVE_VARS = ("GHL_LIVE_BASE_URL", "GHL_LIVE_TOKEN", "GHL_LIVE_LOCATION_ID")
#: An id of HighLevel's shape that no location holds.
UNKNOWN_ID = "zZ0contractNoSuchId1"


def _live_conn() -> str:
    missing = [name for name in LIVE_VARS if not os.environ.get(name)]
    if missing:
        pytest.skip(f"live contract tests need {', '.join(missing)} (a real location; see the module docstring)")
    return json.dumps(
        {
            "conn_type": "ghl",
            "host": os.environ["GHL_LIVE_BASE_URL"],
            "password": os.environ["GHL_LIVE_TOKEN"],
            "extra": {"location_id": os.environ["GHL_LIVE_LOCATION_ID"]},
        }
    )


@pytest.fixture(params=["sandbox", "live"])
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContactsHook]:
    """A ContactsHook on the live-like sandbox, or on the live location named by GHL_LIVE_*."""
    if request.param == "live":
        conn = _live_conn()
    else:
        sandbox = request.getfixturevalue("sandbox")
        conn = sandbox.conn_json()
    monkeypatch.setenv("AIRFLOW_CONN_GHL_CONTRACT", conn)
    hook = ContactsHook("ghl_contract")
    hook.contract_target = request.param  # type: ignore[attr-defined]
    yield hook
    hook.close()


def _may_write(hook: ContactsHook) -> None:
    if hook.contract_target == "live" and os.environ.get("GHL_LIVE_ALLOW_WRITES") != "1":  # type: ignore[attr-defined]
        pytest.skip("writes to the live location need GHL_LIVE_ALLOW_WRITES=1 (records are created and deleted again)")


def _mapping(hook: ContactsHook) -> FieldMapping:
    mapping = FieldMapping.load(REPO_ROOT / "dags" / "ghl_contacts_mapping.yaml")
    mapping.resolve_custom_fields([to_api_dict(f) for f in hook.get_custom_fields()])
    return mapping


def _first_contacts(hook: ContactsHook, n: int) -> list:
    page = hook.search_contacts(page_limit=n)
    if not page.contacts:
        pytest.skip("the location has no contacts to check shapes on")
    return page.contacts


# -- reads ---------------------------------------------------------------------------------------


def test_search_page_parses_and_every_contact_maps(api: ContactsHook) -> None:
    """POST /contacts/search (no documented 200 schema): every contact of a page parses and maps
    with the shipped mapping; none is quarantined (no location-specific field, no strict phones)."""
    contacts = _first_contacts(api, 100)
    mapping = _mapping(api)
    for contact in contacts:
        assert contact.id
        result = mapping.map_record("contacts", to_api_dict(contact))
        assert isinstance(result, MappedRecord), f"contact {contact.id} quarantined: {result.reason}"


def test_search_and_get_land_in_the_same_columns(api: ContactsHook) -> None:
    """A contact read through search and through GET /contacts/{id} maps to the same columns
    (address vs address1, epoch vs string dateOfBirth; ghl-live-notes.md "Contact shapes")."""
    mapping = _mapping(api)
    compared = ("first_name", "last_name", "email", "phone", "address1", "city", "date_of_birth", "tags")
    for searched in _first_contacts(api, 10):
        fetched = api.get_contact(searched.id)
        a = mapping.map_record("contacts", to_api_dict(searched))
        b = mapping.map_record("contacts", to_api_dict(fetched))
        assert isinstance(a, MappedRecord) and isinstance(b, MappedRecord)
        for column in compared:
            if column in a.columns:
                assert a.columns[column] == b.columns[column], (searched.id, column)
        if getattr(fetched, "address1", None):
            assert searched.address1 == fetched.address1


def test_unknown_contact_is_not_found(api: ContactsHook) -> None:
    """GET /contacts/{unknown}: 400 "Contact not found" (or 404) is GHLNotFoundError."""
    with pytest.raises(GHLNotFoundError):
        api.get_contact(UNKNOWN_ID)


def test_custom_fields_have_ids_names_and_types(api: ContactsHook) -> None:
    """GET /locations/{id}/customFields: every field has an id, a name and a dataType."""
    for field in api.get_custom_fields():
        data = to_api_dict(field)
        assert data.get("id") and data.get("name"), data
        assert data.get("dataType"), data


def test_tasks_and_notes_read_with_or_without_the_task_search_scope(api: ContactsHook) -> None:
    """Tasks and notes of a few contacts: through the location task search, or - for a token
    without locations/tasks.readonly - through the per-contact lists (the hook falls back)."""
    ids = [c.id for c in _first_contacts(api, 5)]
    activities = list(api.fetch_tasks_and_notes(ids))
    assert sorted(a.contact_id for a in activities) == sorted(ids)
    for activity in activities:
        assert all(t.id for t in activity.tasks)
        assert all(n.id for n in activity.notes)


def test_location_task_search_answers_or_names_its_scope(api: ContactsHook) -> None:
    """POST /locations/{id}/tasks/search: tasks, or a GHLScopeError naming the scope."""
    try:
        page = api.search_location_tasks(limit=5)
    except GHLScopeError as exc:
        assert "locations/tasks.readonly" in str(exc)
    else:
        assert all(t.id for t in page.tasks)


# -- writes (sandbox always; live with GHL_LIVE_ALLOW_WRITES=1) -----------------------------------


@pytest.mark.writes
def test_write_round_trip_in_the_forms_the_live_api_accepts(api: ContactsHook) -> None:
    """create-contact with a US-form dateOfBirth and a phone HighLevel stores as given, a
    customFields value as ``fieldValue``; task and note; deletes that are idempotent."""
    _may_write(api)
    email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
    # An exchange starting with 0 (like +12010710892): no numbering plan has it, HighLevel stores it.
    phone = f"+1201071{uuid.uuid4().int % 10_000:04d}"
    contact = api.create_contact(
        {"firstName": "Contract", "lastName": "Test", "email": email, "phone": phone, "dateOfBirth": "09/25/1990"}
    )
    try:
        fetched = api.get_contact(contact.id)
        assert fetched.email == email
        assert fetched.phone == phone
        assert str(fetched.dateOfBirth)[:10] == "1990-09-25"
        text_fields = [f for f in api.get_custom_fields() if to_api_dict(f).get("dataType") == "TEXT"]
        if text_fields:
            api.update_contact(contact.id, {"customFields": [{"id": text_fields[0].id, "fieldValue": "contract"}]})
            values = {cf.get("id"): cf.get("value") for cf in to_api_dict(api.get_contact(contact.id)).get("customFields", [])}
            assert values.get(text_fields[0].id) == "contract"
        task = api.create_task(contact.id, {"title": "contract task", "dueDate": "2030-01-01T09:00:00Z", "completed": False})
        note = api.create_note(contact.id, {"body": "contract note"})
        assert api.delete_task(contact.id, task.id) is True
        assert api.delete_note(contact.id, note.id) is True
        assert api.delete_task(contact.id, task.id, missing_ok=True) is False
        assert api.delete_note(contact.id, note.id, missing_ok=True) is False
    finally:
        api.delete_contact(contact.id, missing_ok=True)
    assert api.delete_contact(contact.id, missing_ok=True) is False
    with pytest.raises(GHLNotFoundError):
        api.get_contact(contact.id)
