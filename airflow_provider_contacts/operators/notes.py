"""Operators for the notes of a contact: list, get, create, update, delete.

Each operator wraps one contacts.json operation (its ``operation_id``) and one hook call. Bodies
are validated with the hook's request models (``CreateNote``, ``UpdateNote``) before any request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.models import CreateNote, UpdateNote
from airflow_provider_contacts.operators.base import (
    GHLBodyMixin,
    GHLContactOperator,
    GHLContactRecordsOperator,
    GHLDeleteMixin,
)

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: Key fields of a note in XCom results and output tables.
NOTE_KEY_FIELDS: tuple[str, ...] = ("id", "contactId", "title", "userId", "pinned", "dateAdded")


class _OneNoteOperator(GHLContactOperator):
    """Base of operators on one existing note: adds ``note_id`` (templated)."""

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "note_id")
    id_params = ("contact_id", "note_id")
    result_fields = NOTE_KEY_FIELDS

    def __init__(self, *, note_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.note_id = note_id


class GHLListNotesOperator(GHLContactRecordsOperator):
    """List every note of a contact (``GET /contacts/{contactId}/notes``).

    Output: XCom (at most ``max_xcom_records``), ``output_table`` or ``output_path``.
    Reading only: idempotent.
    """

    operation_id = "get-all-notes"
    hook_method = "list_notes"
    key_fields = NOTE_KEY_FIELDS

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        return hook.list_notes(self._id("contact_id"))


class GHLGetNoteOperator(_OneNoteOperator):
    """Get one note of a contact (``GET /contacts/{contactId}/notes/{id}``).

    :param note_id: the note id. Templated.

    XCom: the note's key fields. Reading only: idempotent.
    """

    operation_id = "get-note"
    hook_method = "get_note"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.get_note(self._id("contact_id"), self._id("note_id"))


class GHLCreateNoteOperator(GHLBodyMixin, GHLContactOperator):
    """Add a note to a contact (``POST /contacts/{contactId}/notes``).

    :param body: ``{"body": ..., "title": ..., "userId": ..., "color": "#FFAA00", "pinned": false}``
        (``body`` required). Templated.

    XCom: the new note's key fields. **Not idempotent**: a retry or re-run adds another note.
    """

    operation_id = "create-note"
    hook_method = "create_note"
    body_model = CreateNote
    result_fields = NOTE_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.create_note(self._id("contact_id"), self.validated_body())


class GHLUpdateNoteOperator(GHLBodyMixin, _OneNoteOperator):
    """Update a note (``PUT /contacts/{contactId}/notes/{id}``).

    :param note_id: the note id. Templated.
    :param body: only the fields to change. Templated.

    XCom: the note's key fields. Idempotent.
    """

    operation_id = "update-note"
    hook_method = "update_note"
    body_model = UpdateNote
    template_fields: Sequence[str] = (*_OneNoteOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.update_note(self._id("contact_id"), self._id("note_id"), self.validated_body())


class GHLDeleteNoteOperator(GHLDeleteMixin, _OneNoteOperator):
    """Delete a note (``DELETE /contacts/{contactId}/notes/{id}``).

    :param note_id: the note id. Templated.
    :param missing_ok: treat a note (or contact) that does not exist - 404, or the live API's 400
        ``... not found`` - as deleted (default True: idempotent); with False the task fails at once.

    XCom: ``{"contact_id", "note_id", "deleted": bool, "missing": bool}`` (``missing``: it was
    already gone).
    """

    operation_id = "delete-note"
    hook_method = "delete_note"

    def call(self, hook: GHLContactsHook) -> bool:
        return hook.delete_note(self._id("contact_id"), self._id("note_id"))

    def shape(self, result: Any) -> dict[str, Any]:
        return {"contact_id": self._id("contact_id"), "note_id": self._id("note_id"), "deleted": bool(result)}


__all__ = [
    "NOTE_KEY_FIELDS",
    "GHLCreateNoteOperator",
    "GHLDeleteNoteOperator",
    "GHLGetNoteOperator",
    "GHLListNotesOperator",
    "GHLUpdateNoteOperator",
]
