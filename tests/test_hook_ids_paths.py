"""Ids are path segments, never paths (issue #14, item 2).

``GHLDeleteNoteOperator(contact_id=C, note_id="..")`` used to delete contact C: the hook put the id
into ``/contacts/C/notes/..`` unchecked, and that resolves to ``/contacts/C``. Every path parameter
of every hook operation (contacts.json, plus the location task search and custom fields of
locations.json) is now checked by one path builder before any request. Each test counts the
requests at an in-test stub server (:class:`~test_client_live_statuses.StubAPI`) and at the
transport (``hook.stats.requests``): a refused id sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.errors import GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook
from airflow_provider_contacts.hooks.paths import api_path, check_id, is_highlevel_id
from test_client_live_statuses import _fresh_process_state, stub_api  # noqa: F401 - fixtures

SPEC = Path("/work/shared/reference/ghl-openapi")

#: What a path parameter may never be: empty, dot segments, separators, encodings, whitespace,
#: control and non-ASCII characters, too long, not a string.
BAD_IDS: list[Any] = [
    "", ".", "..", "a/b", "a?b", "a#b", "%2e%2e", " x", "x ", "a b", "a\nb", "a\x00b", "a\\b",
    "../c2", "c1/notes", "é", "a" * 65, None, 7,
]

#: contacts.json / locations.json path parameter -> the hook's parameter name.
SPEC_TO_HOOK = {
    "contactId": "contact_id", "taskId": "task_id", "id": "note_id", "businessId": "business_id",
    "campaignId": "campaign_id", "workflowId": "workflow_id", "locationId": "location_id", "type": "type",
}

VALID = {"contact_id": "c1", "task_id": "t1", "note_id": "n1", "business_id": "b1", "campaign_id": "k1",
         "workflow_id": "w1", "type": "add"}

#: operationId -> (call with the path ids as keyword arguments, the hook parameters in its path).
OPERATIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "get-all-tasks": (lambda h, contact_id: h.list_tasks(contact_id), ("contact_id",)),
    "create-task": (lambda h, contact_id: h.create_task(contact_id, {"title": "T", "dueDate": "2030-01-01T00:00:00Z"}),
                    ("contact_id",)),
    "get-task": (lambda h, contact_id, task_id: h.get_task(contact_id, task_id), ("contact_id", "task_id")),
    "update-task": (lambda h, contact_id, task_id: h.update_task(contact_id, task_id, {"title": "T2"}),
                    ("contact_id", "task_id")),
    "delete-task": (lambda h, contact_id, task_id: h.delete_task(contact_id, task_id, missing_ok=True),
                    ("contact_id", "task_id")),
    "update-task-completed": (lambda h, contact_id, task_id: h.complete_task(contact_id, task_id),
                              ("contact_id", "task_id")),
    "get-appointments-for-contact": (lambda h, contact_id: h.get_appointments(contact_id), ("contact_id",)),
    "add-tags": (lambda h, contact_id: h.add_tags(contact_id, ["vip"]), ("contact_id",)),
    "remove-tags": (lambda h, contact_id: h.remove_tags(contact_id, ["vip"]), ("contact_id",)),
    "get-all-notes": (lambda h, contact_id: h.list_notes(contact_id), ("contact_id",)),
    "create-note": (lambda h, contact_id: h.create_note(contact_id, {"body": "hello"}), ("contact_id",)),
    "get-note": (lambda h, contact_id, note_id: h.get_note(contact_id, note_id), ("contact_id", "note_id")),
    "update-note": (lambda h, contact_id, note_id: h.update_note(contact_id, note_id, {"body": "b"}),
                    ("contact_id", "note_id")),
    "delete-note": (lambda h, contact_id, note_id: h.delete_note(contact_id, note_id, missing_ok=True),
                    ("contact_id", "note_id")),
    "create-association": (lambda h, type: h.bulk_update_tags(type, ["c1"], ["vip"]), ("type",)),
    "get-contact": (lambda h, contact_id: h.get_contact(contact_id), ("contact_id",)),
    "update-contact": (lambda h, contact_id: h.update_contact(contact_id, {"city": "Paris"}), ("contact_id",)),
    "delete-contact": (lambda h, contact_id: h.delete_contact(contact_id, missing_ok=True), ("contact_id",)),
    "get-contacts-by-businessId": (lambda h, business_id: h.get_contacts_by_business(business_id), ("business_id",)),
    "add-followers-contact": (lambda h, contact_id: h.add_followers(contact_id, ["u1"]), ("contact_id",)),
    "remove-followers-contact": (lambda h, contact_id: h.remove_followers(contact_id, ["u1"]), ("contact_id",)),
    "add-contact-to-campaign": (lambda h, contact_id, campaign_id: h.add_contact_to_campaign(contact_id, campaign_id),
                                ("contact_id", "campaign_id")),
    "remove-contact-from-campaign": (
        lambda h, contact_id, campaign_id: h.remove_contact_from_campaign(contact_id, campaign_id),
        ("contact_id", "campaign_id"),
    ),
    "remove-contact-from-every-campaign": (lambda h, contact_id: h.remove_contact_from_all_campaigns(contact_id),
                                           ("contact_id",)),
    "add-contact-to-workflow": (lambda h, contact_id, workflow_id: h.add_contact_to_workflow(contact_id, workflow_id),
                                ("contact_id", "workflow_id")),
    "delete-contact-from-workflow": (
        lambda h, contact_id, workflow_id: h.remove_contact_from_workflow(contact_id, workflow_id),
        ("contact_id", "workflow_id"),
    ),
}

#: Operations whose only path id is the hook's location (constructor / connection, not an argument).
LOCATION_OPERATIONS: dict[str, Callable[[ContactsHook], Any]] = {
    "task-search": lambda h: h.search_location_tasks(),
    "get-custom-fields": lambda h: h.get_custom_fields(),
}


def _ok(method: str, path: str, query: Any, body: Any, headers: Any) -> tuple[int, Any]:
    """Whatever is asked, a plausible success (so that a request that slips through is seen)."""
    return 200, {
        "contact": {"id": "c1"}, "task": {"id": "t1", "title": "T"}, "note": {"id": "n1", "body": "b"},
        "tasks": [], "notes": [], "events": [], "tags": [], "contacts": [], "customFields": [],
        "succeded": True, "count": 0,
    }


def _spec_path_params() -> dict[str, list[str]]:
    """operationId -> the placeholders of its path, for every operation with one (the templates'
    ``{...}``: contacts.json does not declare ``type`` of the bulk tags path as a parameter)."""
    found: dict[str, list[str]] = {}
    for name, keep in (("contacts.json", None), ("locations.json", {"task-search", "get-custom-fields"})):
        spec = json.loads((SPEC / name).read_text())
        for path, ops in spec["paths"].items():
            for op in ops.values():
                if not isinstance(op, dict) or (keep is not None and op.get("operationId") not in keep):
                    continue
                params = re.findall(r"\{(\w+)\}", path)
                if params:
                    found[op["operationId"]] = [SPEC_TO_HOOK[p] for p in params]
    return found


def test_every_path_parameter_of_every_operation_is_covered() -> None:
    spec = _spec_path_params()
    covered = {op: list(params) for op, (_, params) in OPERATIONS.items()}
    covered.update({op: ["location_id"] for op in LOCATION_OPERATIONS})
    assert {op: sorted(p) for op, p in spec.items()} == {op: sorted(p) for op, p in covered.items()}
    for op, (call, _) in OPERATIONS.items():  # the table calls the method that wraps op
        assert op in {getattr(ContactsHook, n).operation_id for n in dir(ContactsHook)
                      if hasattr(getattr(ContactsHook, n), "operation_id")}


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_a_bad_id_in_any_path_parameter_sends_nothing(stub_api, operation_id) -> None:
    stub, hook = stub_api(_ok)
    call, params = OPERATIONS[operation_id]
    for param in params:
        for bad in BAD_IDS:
            with pytest.raises(GHLValidationError) as err:
                call(hook, **{**{p: VALID[p] for p in params}, param: bad})
            assert f"parameter '{param}'" in err.value.message, (param, bad, err.value.message)
            assert err.value.operation == operation_id and err.value.status is None
    assert stub.calls == [] and hook.stats.requests == 0
    call(hook, **{p: VALID[p] for p in params})  # the same call with good ids does reach the API
    assert stub.calls and hook.stats.requests >= 1


@pytest.mark.parametrize("operation_id", sorted(LOCATION_OPERATIONS))
def test_a_bad_location_id_sends_nothing(stub_api, operation_id) -> None:
    stub, hook = stub_api(_ok)
    for bad in [b for b in BAD_IDS if b not in ("", None)]:  # "" / None mean "not set": the connection's
        with pytest.raises(GHLValidationError, match="parameter 'location_id'") as err:
            LOCATION_OPERATIONS[operation_id](ContactsHook("ghl_stub", location_id=bad))  # refused where it enters
        assert err.value.status is None and "pass the location's id" in err.value.message
        hook = ContactsHook("ghl_stub")
        hook._location_override = bad  # past the constructor: the path builder refuses it all the same
        with pytest.raises(GHLValidationError, match="parameter 'location_id'") as err:
            LOCATION_OPERATIONS[operation_id](hook)
        assert err.value.operation == operation_id
        assert "pass the location's id" in err.value.message
    assert stub.calls == []


def test_the_issue_example_a_dot_dot_note_id_no_longer_deletes_the_contact(stub_api) -> None:
    stub, hook = stub_api(_ok)
    with pytest.raises(GHLValidationError) as err:
        hook.delete_note("c1", "..")
    assert err.value.message == (
        "parameter 'note_id': '..' is not a HighLevel id (letters, digits, _ and -, 1 to 64 characters); "
        "pass the note's id"
    )
    assert err.value.operation == "delete-note"
    assert stub.calls == [] and hook.stats.requests == 0


#: The async twins of the reads, with the path ids as keyword arguments.
ASYNC_OPERATIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "get-all-tasks": (lambda h, contact_id: h.alist_tasks(contact_id), ("contact_id",)),
    "get-task": (lambda h, contact_id, task_id: h.aget_task(contact_id, task_id), ("contact_id", "task_id")),
    "get-all-notes": (lambda h, contact_id: h.alist_notes(contact_id), ("contact_id",)),
    "get-note": (lambda h, contact_id, note_id: h.aget_note(contact_id, note_id), ("contact_id", "note_id")),
    "get-contact": (lambda h, contact_id: h.aget_contact(contact_id), ("contact_id",)),
}

#: The async reads whose only path id is the hook's location.
ASYNC_LOCATION_OPERATIONS: dict[str, Callable[[ContactsHook], Any]] = {
    "task-search": lambda h: h.asearch_location_tasks(),
    "get-custom-fields": lambda h: h.aget_custom_fields(),
}


async def _drain(found: Any) -> list[Any]:
    return [item async for item in found]


def test_async_paths_are_checked_by_the_same_builder(stub_api) -> None:
    stub, hook = stub_api(_ok)

    async def run() -> None:
        for operation_id, (call, params) in ASYNC_OPERATIONS.items():
            for param in params:
                for bad in BAD_IDS:
                    with pytest.raises(GHLValidationError, match=f"parameter '{param}'") as err:
                        await call(hook, **{**{p: VALID[p] for p in params}, param: bad})
                    assert err.value.operation == operation_id
        for bad in [b for b in BAD_IDS if b not in ("", None)]:
            with pytest.raises(GHLValidationError, match="parameter 'location_id'"):
                ContactsHook("ghl_stub", location_id=bad)  # refused where it enters
            elsewhere = ContactsHook("ghl_stub")
            elsewhere._location_override = bad  # past the constructor: the path builder refuses it too
            for operation_id, call in ASYNC_LOCATION_OPERATIONS.items():
                with pytest.raises(GHLValidationError, match="parameter 'location_id'") as err:
                    await call(elsewhere)
                assert err.value.operation == operation_id
            with pytest.raises(GHLValidationError, match="parameter 'location_id'") as err:
                await _drain(elsewhere.aiter_location_tasks())
            assert err.value.operation == "task-search"

    asyncio.run(run())
    assert stub.calls == [] and hook.stats.requests == 0


@pytest.mark.parametrize(
    "path",
    ["/contacts/c1/notes/..", "/contacts/c1/notes/.", "/contacts/c1/notes/%2e%2e", "/contacts/c1/notes/%2F",
     "/contacts/c1?x=1", "/contacts/c1#x", "/contacts//c1", "/contacts/c 1", "contacts/c1", "/contacts/c1/\n",
     "//evil.example.com/contacts"],
)
def test_the_transports_refuse_a_path_built_without_the_builder(stub_api, path) -> None:
    stub, hook = stub_api(_ok)
    with pytest.raises(GHLValidationError, match="refusing to send DELETE") as err:
        hook.transport.request("DELETE", path, operation="delete-note")
    assert err.value.operation == "delete-note"

    async def run() -> None:
        async with hook.async_transport() as api:
            with pytest.raises(GHLValidationError, match="refusing to send DELETE"):
                await api.request("DELETE", path, operation="delete-note")

    asyncio.run(run())
    assert stub.calls == [] and hook.stats.requests == 0


def test_real_ids_pass_and_reach_the_api_as_sent(stub_api) -> None:
    stub, hook = stub_api(_ok)
    long_id = "A1_-" * 16
    for note_id in ("ocQHyuzHvysMo5N5VsXc", "65f1c0ffee0123456789abcd", "n_1-x", long_id):
        hook.get_note("sx6wyHhbFdRXh302LLNR", note_id)
    assert stub.paths("GET") == [
        f"/contacts/sx6wyHhbFdRXh302LLNR/notes/{n}"
        for n in ("ocQHyuzHvysMo5N5VsXc", "65f1c0ffee0123456789abcd", "n_1-x", long_id)
    ]


def test_the_builder_names_the_first_bad_id_and_refuses_template_mismatches() -> None:
    with pytest.raises(GHLValidationError, match="parameter 'contact_id'"):
        api_path("/contacts/{contact_id}/notes/{note_id}", contact_id="a/b", note_id="..")
    with pytest.raises(ValueError, match="do not match the placeholders"):
        api_path("/contacts/{contact_id}", contact_id="c1", note_id="n1")
    built = api_path("/contacts/{contact_id}/notes/{note_id}", contact_id="c1", note_id="n-1")
    assert built == "/contacts/c1/notes/n-1"
    with pytest.raises(GHLValidationError, match=r"parameter 'task_id': ' x' .*pass the task's id"):
        api_path("/contacts/{contact_id}/tasks/{task_id}", "get-task", contact_id="c1", task_id=" x")
    assert check_id("w1", "workflow_id") == "w1"
    assert not any(is_highlevel_id(b) for b in BAD_IDS)
