"""Tasks and notes, the location-wide task search, custom fields, and the real API's quirks around
them that a sync has to survive (each quirk can be switched off)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ghl_sandbox.testing import SandboxServer


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def _contact_with_tasks(sandbox: SandboxServer) -> tuple[str, list[dict[str, Any]]]:
    tasks = sandbox.admin.dump()["tasks"]
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        by_contact.setdefault(t["contactId"], []).append(t)
    cid = max(by_contact, key=lambda c: len(by_contact[c]))
    return cid, by_contact[cid]


def test_seed_has_a_long_tail_of_tasks_and_notes(sandbox: SandboxServer) -> None:
    dump = sandbox.admin.dump()
    counts: dict[str, int] = {}
    for t in dump["tasks"]:
        counts[t["contactId"]] = counts.get(t["contactId"], 0) + 1
    note_counts: dict[str, int] = {}
    for n in dump["notes"]:
        note_counts[n["contactId"]] = note_counts.get(n["contactId"], 0) + 1
    assert max(counts.values()) >= 50 and max(note_counts.values()) >= 50
    assert sum(1 for c in dump["contacts"] if c["id"] not in counts) > 20  # many contacts have none


def test_tasks_carry_no_updated_timestamp_by_default(sandbox: SandboxServer, api: httpx.Client) -> None:
    cid, _ = _contact_with_tasks(sandbox)
    task = api.get(f"/contacts/{cid}/tasks").json()["tasks"][0]
    assert "dateUpdated" not in task and "updatedAt" not in task


def test_tasks_show_timestamps_when_the_quirk_is_off(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.admin.configure(tasks_without_updated_at=False)
    cid, _ = _contact_with_tasks(sandbox)
    task = api.get(f"/contacts/{cid}/tasks").json()["tasks"][0]
    assert task["dateUpdated"].endswith("Z") and task["dateAdded"] <= task["dateUpdated"]


def test_task_and_note_changes_leave_contact_date_updated_alone(sandbox: SandboxServer, api: httpx.Client) -> None:
    cid, tasks = _contact_with_tasks(sandbox)
    before = api.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"]
    api.put(f"/contacts/{cid}/tasks/{tasks[0]['id']}/completed", json={"completed": True})
    api.post(f"/contacts/{cid}/notes", json={"body": "hello"})
    api.delete(f"/contacts/{cid}/tasks/{tasks[1]['id']}")
    sandbox.admin.create_task(cid, title="by a CRM user")
    assert api.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"] == before


def test_task_changes_touch_the_contact_when_the_quirk_is_off(sandbox: SandboxServer, api: httpx.Client) -> None:
    sandbox.admin.configure(activity_touches_contact=True)
    cid, tasks = _contact_with_tasks(sandbox)
    before = api.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"]
    api.put(f"/contacts/{cid}/tasks/{tasks[0]['id']}", json={"title": "changed"})
    assert api.get(f"/contacts/{cid}").json()["contact"]["dateUpdated"] > before


def test_location_task_search_filters_and_pages(sandbox: SandboxServer, api: httpx.Client) -> None:
    loc = sandbox.location_id
    everything = sandbox.admin.dump()["tasks"]
    seen: list[dict[str, Any]] = []
    skip = 0
    while True:
        page = api.post(f"/locations/{loc}/tasks/search", json={"limit": 100, "skip": skip}).json()["tasks"]
        seen.extend(page)
        if len(page) < 100:
            break
        skip += 100
    assert sorted(t["id"] for t in seen) == sorted(t["id"] for t in everything)
    cid, tasks = _contact_with_tasks(sandbox)
    open_ones = api.post(f"/locations/{loc}/tasks/search",
                         json={"contactId": [cid], "completed": False, "limit": 1000}).json()["tasks"]
    assert {t["id"] for t in open_ones} == {t["id"] for t in tasks if not t["completed"]}
    assert all(t["contactId"] == cid for t in open_ones)
    assert api.post(f"/locations/{loc}/tasks/search", json={"limit": 0}).status_code == 422


def test_custom_fields_list_and_filter_by_model(sandbox: SandboxServer, api: httpx.Client) -> None:
    loc = sandbox.location_id
    fields = api.get(f"/locations/{loc}/customFields").json()["customFields"]
    assert 6 <= len(fields) <= 10 and all(f["fieldKey"].startswith("contact.") and f["dataType"] for f in fields)
    assert all(f["model"] == "contact" and f["locationId"] == loc for f in fields)
    assert api.get(f"/locations/{loc}/customFields", params={"model": "opportunity"}).json() == {"customFields": []}
    assert api.get(f"/locations/{loc}/customFields", params={"model": "bogus"}).status_code == 422


def test_custom_field_values_can_be_written_by_key_or_id(sandbox: SandboxServer, api: httpx.Client) -> None:
    loc = sandbox.location_id
    defs = api.get(f"/locations/{loc}/customFields").json()["customFields"]
    text = next(f for f in defs if f["dataType"] in ("TEXT", "LARGE_TEXT"))
    number = next(f for f in defs if f["dataType"] in ("NUMERICAL", "MONETORY"))
    r = api.post("/contacts/", json={"locationId": loc, "firstName": "Cf", "customFields": [
        {"key": text["fieldKey"], "field_value": "80331"}, {"id": number["id"], "field_value": 7}]})
    assert r.status_code == 201
    assert {(v["id"], v["value"]) for v in r.json()["contact"]["customFields"]} == {
        (text["id"], "80331"), (number["id"], "7")}
    bad = api.post("/contacts/", json={"locationId": loc, "customFields": [{"key": "contact.nope", "field_value": 1}]})
    assert bad.status_code == 422 and "contact.nope" in bad.json()["message"][0]
