"""A user works with contacts, tasks, notes, tags, followers, campaigns and workflows through the hook.

Every call goes over real HTTP to the sandbox; the sandbox's own dump and counters are the truth.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timezone

import pytest

from airflow_provider_contacts.errors import GHLConfigError, GHLNotFoundError, GHLValidationError
from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.models import Contact, Note, Task

#: Every operationId of HighLevel's contacts.json (32), plus the two locations.json ones the hook uses.
CONTACTS_OPERATIONS = {
    "search-contacts-advanced", "get-duplicate-contact", "get-all-tasks", "create-task", "get-task",
    "update-task", "delete-task", "update-task-completed", "get-appointments-for-contact", "add-tags",
    "remove-tags", "get-all-notes", "create-note", "get-note", "update-note", "delete-note",
    "create-association", "add-remove-contact-from-business", "get-contact", "update-contact",
    "delete-contact", "upsert-contact", "get-contacts-by-businessId", "add-followers-contact",
    "remove-followers-contact", "add-contact-to-campaign", "remove-contact-from-campaign",
    "remove-contact-from-every-campaign", "add-contact-to-workflow", "delete-contact-from-workflow",
    "create-contact", "get-contacts",
}
LOCATION_OPERATIONS = {"task-search", "get-custom-fields"}
OAUTH_OPERATIONS = {"get-installed-location"}  # oauth.json: an agency's installed locations
#: The reads with an async twin (name: the sync name with an ``a`` in front).
ASYNC_TWINS = {
    "asearch_contacts", "aget_contact", "aget_custom_fields", "alist_tasks", "aget_task",
    "asearch_location_tasks", "alist_notes", "aget_note", "ainstalled_locations",
}


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def test_every_contacts_operation_has_exactly_one_hook_method_and_reads_an_async_twin() -> None:
    assert len(CONTACTS_OPERATIONS) == 32
    marked = {name: getattr(ContactsHook, name) for name in dir(ContactsHook)
              if hasattr(getattr(ContactsHook, name), "operation_id")}
    sync = {name: m for name, m in marked.items() if not inspect.iscoroutinefunction(m)}
    twins = {name: m for name, m in marked.items() if inspect.iscoroutinefunction(m)}
    assert sorted(m.operation_id for m in sync.values()) == sorted(CONTACTS_OPERATIONS | LOCATION_OPERATIONS | OAUTH_OPERATIONS)
    assert ContactsHook.create_contact.required_scope == "contacts.write"
    assert ContactsHook.search_location_tasks.required_scope == "locations/tasks.readonly"
    assert sorted(twins) == sorted(ASYNC_TWINS)
    for name, twin in twins.items():
        twin_of = sync[name[1:]]  # aget_task -> get_task
        assert (twin.operation_id, twin.required_scope) == (twin_of.operation_id, twin_of.required_scope)
        assert list(inspect.signature(twin).parameters) == list(inspect.signature(twin_of).parameters), name
    for name in ("aiter_search_contacts", "aiter_location_tasks"):
        assert inspect.signature(getattr(ContactsHook, name)).parameters.keys() == \
            inspect.signature(getattr(ContactsHook, name[1:])).parameters.keys()


def test_the_hook_is_named_like_the_operators_and_keeps_its_former_name() -> None:
    from airflow_provider_contacts import hooks
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

    assert ContactsHook is GHLContactsHook is hooks.GHLContactsHook is hooks.ContactsHook
    assert GHLContactsHook.__name__ == "GHLContactsHook" and GHLContactsHook.conn_type == "ghl"


def test_one_session_per_hook_with_headers_and_timeouts(sandbox, monkeypatch) -> None:
    conn = {
        "conn_type": "ghl",
        "host": sandbox.base_url,
        "password": sandbox.token,
        # The connection form stores prefixed names; both spellings are read.
        "extra": {"extra__ghl__location_id": sandbox.location_id, "connect_timeout": "3", "extra__ghl__read_timeout": 7},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GHL_PREFIXED", json.dumps(conn))
    hook = ContactsHook("ghl_prefixed")
    assert hook._session is None, "no session may be created in __init__"
    assert hook.location_id == sandbox.location_id
    assert hook.timeout == (3.0, 7.0)

    session = hook.get_conn()
    assert hook.get_conn() is session
    assert session.headers["Version"] == "2021-07-28"
    assert session.headers["Accept"] == "application/json"
    assert session.headers["Authorization"] == f"Bearer {sandbox.token}"
    hook.get_contacts(limit=5)
    hook.search_contacts(page_limit=5)
    assert hook.get_conn() is session
    assert hook.stats.requests == 2


def test_api_version_from_the_connection_is_sent(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json(api_version="2099-01-01"))
    hook = ContactsHook()
    with pytest.raises(GHLValidationError) as err:
        hook.get_contacts(limit=1)
    assert err.value.status == 400
    assert "Version" in err.value.message
    assert err.value.operation == "get-contacts"


def test_location_id_from_argument_overrides_and_missing_one_is_named(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json(location_id=None))
    with pytest.raises(GHLConfigError, match="location_id"):
        ContactsHook().search_contacts()
    hook = ContactsHook(location_id=sandbox.location_id)
    assert hook.search_contacts(page_limit=1).total == 200


def test_contact_lifecycle(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    created = hook.create_contact({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "tags": ["vip"]})
    assert isinstance(created, Contact) and created.locationId == sandbox.location_id
    assert created.dateAdded is not None and created.dateAdded.tzinfo is not None

    fetched = hook.get_contact(created.id)
    assert (fetched.email, fetched.tags) == ("ada@example.com", ["vip"])

    updated = hook.update_contact(created.id, {"city": "London", "phone": "+442071234567"})
    assert updated.model_dump()["city"] == "London"

    upsert = hook.upsert_contact({"email": "ada@example.com", "companyName": "Analytical Engines"})
    assert upsert.new is False and upsert.contact.id == created.id
    fresh = hook.upsert_contact({"email": "grace@example.com", "firstName": "Grace"})
    assert fresh.new is True

    assert hook.get_duplicate_contact(email="ada@example.com").id == created.id
    assert hook.get_duplicate_contact(email="nobody@example.com") is None

    assert sorted(hook.add_tags(created.id, ["engineer", "poet"])) == ["engineer", "poet", "vip"]
    assert sorted(hook.remove_tags(created.id, ["poet"])) == ["engineer", "vip"]

    assert hook.delete_contact(created.id) is True
    with pytest.raises(GHLNotFoundError) as err:
        hook.get_contact(created.id)
    # The live API (and a live-like sandbox) answers a deleted contact with 400 "Contact not found";
    # the spec-strict sandbox with 404: both are "not found".
    assert err.value.status in (400, 404) and err.value.trace_id and err.value.operation == "get-contact"
    assert hook.delete_contact(created.id, missing_ok=True) is False
    assert not hook.contact_exists(created.id) and hook.contact_exists(fresh.contact.id)
    with pytest.raises(GHLNotFoundError):
        hook.delete_contact(created.id)
    dump_ids = {c["id"] for c in sandbox.admin.dump()["contacts"]}
    assert created.id not in dump_ids and fresh.contact.id in dump_ids


def test_a_not_found_is_not_retried(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    sandbox.admin.reset_counters()
    with pytest.raises(GHLNotFoundError):
        hook.get_contact("doesNotExist0000000")
    assert sandbox.admin.counters()["total"] == 1
    assert hook.stats.retries == 0


def test_tasks_and_notes_lifecycle(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    contact_id = sandbox.admin.create_contact(firstName="Task", email="task.owner@example.com")["id"]
    due = datetime(2030, 5, 1, 9, 30, tzinfo=timezone.utc)

    task = hook.create_task(contact_id, {"title": "Call back", "body": "about the quote", "dueDate": due})
    assert isinstance(task, Task) and task.contactId == contact_id and task.dueDate == due and not task.completed
    assert hook.update_task(contact_id, task.id, {"title": "Call back today"}).title == "Call back today"
    assert hook.complete_task(contact_id, task.id).completed is True
    assert hook.get_task(contact_id, task.id).completed is True
    assert [t.id for t in hook.list_tasks(contact_id)] == [task.id]

    note = hook.create_note(contact_id, {"body": "Met at the fair", "title": "Fair", "color": "#FFAA00"})
    assert isinstance(note, Note) and note.contactId == contact_id
    assert hook.update_note(contact_id, note.id, {"body": "Met at the spring fair"}).body == "Met at the spring fair"
    assert hook.get_note(contact_id, note.id).title == "Fair"
    assert [n.id for n in hook.list_notes(contact_id)] == [note.id]

    assert hook.delete_task(contact_id, task.id) is True
    assert hook.delete_note(contact_id, note.id) is True
    assert hook.list_tasks(contact_id) == [] and hook.list_notes(contact_id) == []
    # Gone (404, or the live API's 400 "... not found"): not found everywhere, idempotent deletes.
    for call in (lambda: hook.get_task(contact_id, task.id), lambda: hook.get_note(contact_id, note.id),
                 lambda: hook.update_task(contact_id, task.id, {"title": "x"}),
                 lambda: hook.update_note(contact_id, note.id, {"body": "x"}),
                 lambda: hook.delete_task(contact_id, task.id), lambda: hook.delete_note(contact_id, note.id)):
        with pytest.raises(GHLNotFoundError) as err:
            call()
        assert err.value.status in (400, 404)
    assert hook.delete_task(contact_id, task.id, missing_ok=True) is False
    assert hook.delete_note(contact_id, note.id, missing_ok=True) is False


def test_a_malformed_date_in_an_answer_does_not_fail_the_page(sandbox, ghl_conn, monkeypatch, caplog) -> None:
    # The sandbox validates dates, so the hook's answers are corrupted on their way in.
    hook = ContactsHook(ghl_conn)
    contact_id = sandbox.admin.create_contact(firstName="Bad", email="bad.date@example.com")["id"]
    sandbox.admin.create_task(contact_id, title="one")
    sandbox.admin.create_task(contact_id, title="two")
    real_call = hook._call

    def corrupt(method, path, **kwargs):
        data = real_call(method, path, **kwargs)
        if path == "/contacts/search" and data["contacts"]:
            data["contacts"][0]["dateUpdated"] = "last tuesday"
        if path.endswith("/tasks") and data["tasks"]:
            data["tasks"][0]["dueDate"] = "2024-13-45"
        return data

    monkeypatch.setattr(hook, "_call", corrupt)
    with caplog.at_level("WARNING", logger="airflow_provider_contacts"):
        contacts = list(hook.iter_search_contacts(page_limit=100))
        tasks = hook.list_tasks(contact_id)

    assert len(contacts) == len(sandbox.admin.dump()["contacts"])
    assert [c.dateUpdated for c in contacts].count("last tuesday") == -(-len(contacts) // 100)  # first of each page
    assert all(isinstance(c.dateUpdated, datetime) for c in contacts if c.dateUpdated != "last tuesday")
    assert [t.dueDate for t in tasks][0] == "2024-13-45" and isinstance(tasks[1].dueDate, datetime)
    assert f"record {tasks[0].id}: field 'dueDate': '2024-13-45'" in caplog.text


def test_followers_campaigns_workflows_and_appointments(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    contact_id = sandbox.admin.create_contact(firstName="Flo", email="flo@example.com")["id"]

    added = hook.add_followers(contact_id, ["user1", "user2"])
    assert sorted(added.followers) == ["user1", "user2"]
    removed = hook.remove_followers(contact_id, ["user1"])
    assert removed.followers == ["user2"] and removed.followersRemoved == ["user1"]

    assert hook.add_contact_to_campaign(contact_id, "campaignA") is True
    assert hook.remove_contact_from_campaign(contact_id, "campaignA") is True
    assert hook.remove_contact_from_all_campaigns(contact_id) is True

    start = datetime(2030, 1, 1, 8, 0, tzinfo=timezone.utc)
    assert hook.add_contact_to_workflow(contact_id, "workflowA", event_start_time=start) is True
    assert hook.remove_contact_from_workflow(contact_id, "workflowA") is True
    assert isinstance(hook.get_appointments(contact_id), list)


def test_bulk_tags_and_business(sandbox, ghl_conn) -> None:
    hook = ContactsHook(ghl_conn)
    ids = [c["id"] for c in sandbox.admin.dump()["contacts"][:120]]

    result = hook.bulk_update_tags("add", ids[:3], ["bulk-tag"])
    assert result.succeded and result.errorCount == 0
    assert all("bulk-tag" in hook.get_contact(i).tags for i in ids[:3])
    hook.bulk_update_tags("remove", ids[:3], [], remove_all_tags=True)
    assert hook.get_contact(ids[0]).tags == []

    business = hook.bulk_update_business(ids, "business-1")
    assert sorted(business.ids) == sorted(ids)
    # 120 contacts of the business come back over two pages of 100, each exactly once.
    members = [c.id for c in hook.iter_contacts_by_business("business-1")]
    assert sorted(members) == sorted(ids)
    assert len(hook.get_contacts_by_business("business-1", limit=100).contacts) == 100
    hook.bulk_update_business(ids[:1], None)
    assert len(list(hook.iter_contacts_by_business("business-1"))) == 119


def test_custom_fields_of_the_location(sandbox, ghl_conn) -> None:
    fields = ContactsHook(ghl_conn).get_custom_fields()
    expected = {f["id"] for f in sandbox.admin.dump()["customFields"]}
    assert {f.id for f in fields} == expected and all(f.name for f in fields)
