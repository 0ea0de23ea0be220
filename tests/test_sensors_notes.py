"""A DAG waits for the sales rep's call note on a contact, in poke, reschedule and deferrable modes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from test_sensors_contacts import SAFETY_TIMEOUT_S, after_check, defer, poke_until_done, reschedule_once, resume

from airflow.sdk.exceptions import AirflowRescheduleException
from airflow_provider_contacts.sensors.notes import GHLNoteAddedSensor, GHLNoteChangedSensor


def test_note_added_in_all_three_modes(sandbox, ghl_conn) -> None:
    notes = sandbox.admin.dump()["notes"]
    cid = notes[0]["contactId"]  # a contact that already has (old) notes: they must not count

    poke = GHLNoteAddedSensor(task_id="p", contact_id=cid, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    with after_check(sandbox, "get-all-notes", lambda: sandbox.admin.create_note(cid, body="Call went well")) as box:
        result = poke_until_done(poke)
    assert result["note_ids"] == [box["result"]["id"]] and result["contact_id"] == cid

    started = datetime.now(timezone.utc)

    def make() -> GHLNoteAddedSensor:
        return GHLNoteAddedSensor(task_id="r", contact_id="{{ params.cid }}", mode="reschedule", poke_interval=1)

    with pytest.raises(AirflowRescheduleException):
        reschedule_once(make, started, params={"cid": cid})
    second = sandbox.admin.create_note(cid, body="Sent the contract")
    assert reschedule_once(make, started, params={"cid": cid})["note_ids"] == [second["id"]]

    deferrable = GHLNoteAddedSensor(task_id="d", contact_id=cid, deferrable=True, poke_interval=0.1, timeout=SAFETY_TIMEOUT_S)
    deferred = defer(deferrable)
    checks = sandbox.admin.counters()["by_operation"]["get-all-notes"] + 1
    with after_check(sandbox, "get-all-notes", lambda: sandbox.admin.create_note(cid, body="Signed"), checks=checks) as box:
        result = resume(deferrable, deferred)
    assert result["note_ids"] == [box["result"]["id"]] and result["notes"][0]["contactId"] == cid


def test_note_changed_reports_an_edit_by_content_and_names_the_fields(sandbox, ghl_conn) -> None:
    note = sandbox.admin.dump()["notes"][0]
    cid = note["contactId"]
    sensor = GHLNoteChangedSensor(
        task_id="edited", contact_id=cid, changes=["updated"], poke_interval=0.1, timeout=SAFETY_TIMEOUT_S
    )

    def crm_user() -> None:
        sandbox.admin.create_note(cid, body="A new note is not an edit")
        sandbox.admin.update_note(cid, note["id"], pinned=not note.get("pinned"))

    with after_check(sandbox, "get-all-notes", crm_user):
        result = poke_until_done(sensor)
    assert result["changes"] == [{"id": note["id"], "change": "updated", "fields": ["pinned"]}]
    assert result["note_ids"] == [note["id"]] and result["contact_id"] == cid


def test_note_changed_is_per_contact_and_checks_its_parameters_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"'compare': \['dueDate'\] cannot be compared"):
        GHLNoteChangedSensor(task_id="n", contact_id="c1", compare=["dueDate"])
    with pytest.raises(TypeError, match="contact_id"):
        GHLNoteChangedSensor(task_id="n")  # no location-wide note endpoint: a contact is required
