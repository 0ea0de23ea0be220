"""An account manager's DAG records call summaries as notes and keeps them tidy."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.operators.notes import (
    GHLCreateNoteOperator,
    GHLDeleteNoteOperator,
    GHLGetNoteOperator,
    GHLListNotesOperator,
    GHLUpdateNoteOperator,
)
from airflow_provider_contacts.params import GHLInputError


def _notes_of(sandbox, contact_id: str) -> dict[str, dict]:
    return {n["id"]: n for n in sandbox.admin.dump()["notes"] if n["contactId"] == contact_id}


def test_a_call_summary_note_is_added_listed_edited_and_removed(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    before = set(_notes_of(sandbox, contact["id"]))
    ids = {"contact_id": contact["id"]}
    note = run_operator(
        GHLCreateNoteOperator(task_id="add", **ids, body={"body": "Budget approved ✅", "title": "Call", "color": "#FFAA00"})
    )
    assert _notes_of(sandbox, contact["id"])[note["id"]]["body"] == "Budget approved ✅"

    listed = run_operator(GHLListNotesOperator(task_id="list", **ids))
    assert {r["id"] for r in listed["records"]} == before | {note["id"]}

    got = run_operator(GHLGetNoteOperator(task_id="get", **ids, note_id=note["id"]))
    assert got["id"] == note["id"] and got["title"] == "Call"

    edited = run_operator(GHLUpdateNoteOperator(task_id="edit", **ids, note_id=note["id"], body={"pinned": True}))
    assert edited["pinned"] is True and _notes_of(sandbox, contact["id"])[note["id"]]["pinned"] is True

    assert run_operator(GHLDeleteNoteOperator(task_id="rm", **ids, note_id=note["id"]))["deleted"] is True
    assert note["id"] not in _notes_of(sandbox, contact["id"])
    assert run_operator(GHLDeleteNoteOperator(task_id="rm", **ids, note_id=note["id"])) == {
        **ids, "note_id": note["id"], "deleted": False, "missing": True,
    }
    with pytest.raises(GHLNotFoundError):
        run_operator(GHLDeleteNoteOperator(task_id="rm", **ids, note_id=note["id"], missing_ok=False))
    for op_id in ("create-note", "get-all-notes", "get-note", "update-note", "delete-note"):
        assert calls(sandbox, op_id) >= 1, op_id


def test_note_bodies_are_validated_naming_the_field(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    with pytest.raises(GHLInputError, match=r"field 'body' is required"):
        run_operator(GHLCreateNoteOperator(task_id="add", contact_id=contact["id"], body={"title": "no body"}))
    with pytest.raises(GHLInputError, match=r"field 'color'.*hex colour"):
        run_operator(GHLUpdateNoteOperator(task_id="e", contact_id=contact["id"], note_id="n1", body={"color": "orange"}))
    assert sandbox.admin.counters()["total"] == 0
