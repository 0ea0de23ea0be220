"""Note operations of ``GHLContactsHook``: a contact's notes.

The reads have async twins (``alist_notes``, ``aget_note``) that send the same requests, built once
from their :class:`~.operations.Endpoint`, through the hook's async transport and give the same
models. Creates are sent exactly once: after an ambiguous failure the contact's notes are checked
for one with the same content that the failed attempt made (see :mod:`.creates`) before the create
is sent again. An unknown or deleted contact or note raises
:class:`~airflow_provider_contacts.errors.GHLNotFoundError` whether HighLevel answers 404 or - as
the live API does (ghl-live-notes.md) - 400 ``... not found``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_contacts.hooks.operations import READ, WRITE, Endpoint, OperationsBase, operation
from airflow_provider_contacts.hooks.specs import RequestSpec
from airflow_provider_contacts.models import CreateNote, Note, UpdateNote, validate_body

#: Request paths of contacts.json's note operations (placeholders: the hook's parameters).
NOTES_PATH = "/contacts/{contact_id}/notes"
NOTE_PATH = "/contacts/{contact_id}/notes/{note_id}"

LIST_NOTES = Endpoint("GET", NOTES_PATH, "get-all-notes", READ)
GET_NOTE = Endpoint("GET", NOTE_PATH, "get-note", READ)
CREATE_NOTE = Endpoint("POST", NOTES_PATH, "create-note", WRITE)
UPDATE_NOTE = Endpoint("PUT", NOTE_PATH, "update-note", WRITE)
DELETE_NOTE = Endpoint("DELETE", NOTE_PATH, "delete-note", WRITE)


class NoteOperations(OperationsBase):
    """Notes of contacts: ``get-all-notes`` ... ``delete-note`` of contacts.json."""

    def _list_notes(self, contact_id: str) -> RequestSpec[list[Note]]:
        return LIST_NOTES.spec(self._children("notes", contact_id, Note), contact_id=contact_id)

    @operation(LIST_NOTES)
    def list_notes(self, contact_id: str) -> list[Note]:
        """All notes of a contact (each carries ``contactId``)."""
        return self._run(self._list_notes, contact_id)

    @operation(LIST_NOTES)
    async def alist_notes(self, contact_id: str) -> list[Note]:
        """Async :meth:`list_notes`: the same request, the same :class:`Note` list."""
        return await self._arun(self._list_notes, contact_id)

    def _get_note(self, contact_id: str, note_id: str) -> RequestSpec[Note]:
        return GET_NOTE.spec(self._child("note", contact_id, Note), contact_id=contact_id, note_id=note_id)

    @operation(GET_NOTE)
    def get_note(self, contact_id: str, note_id: str) -> Note:
        """One note of a contact (``GET /contacts/{contactId}/notes/{id}``).

        :raises GHLNotFoundError: the contact or note does not exist (404 or 400 ``... not found``).
        """
        return self._run(self._get_note, contact_id, note_id)

    @operation(GET_NOTE)
    async def aget_note(self, contact_id: str, note_id: str) -> Note:
        """Async :meth:`get_note`: the same request, the same :class:`Note` and errors."""
        return await self._arun(self._get_note, contact_id, note_id)

    @operation(CREATE_NOTE)
    def create_note(self, contact_id: str, body: CreateNote | dict[str, Any]) -> Note:
        """``POST /contacts/{contactId}/notes``; after an ambiguous failure the contact's notes are
        checked for one with the same body and title (added since the first attempt) before any retry."""
        model = validate_body(CreateNote, body, CREATE_NOTE.operation_id)
        return self._create_child(
            CREATE_NOTE,
            "note",
            Note,
            self.list_notes,
            contact_id,
            model.payload(),
            lambda note: note.body == model.body and (model.title is None or note.title == model.title),
        )

    @operation(UPDATE_NOTE)
    def update_note(self, contact_id: str, note_id: str, body: UpdateNote | dict[str, Any]) -> Note:
        """``PUT /contacts/{contactId}/notes/{id}`` with the fields to change.

        :raises GHLNotFoundError: the contact or note does not exist (404 or 400 ``... not found``).
        """
        payload = validate_body(UpdateNote, body, UPDATE_NOTE.operation_id).payload()
        parse = self._child("note", contact_id, Note)
        return self._send(UPDATE_NOTE.spec(parse, body=payload, contact_id=contact_id, note_id=note_id))

    @operation(DELETE_NOTE)
    def delete_note(self, contact_id: str, note_id: str, *, missing_ok: bool = False) -> bool:
        """``DELETE /contacts/{contactId}/notes/{id}``; ``True`` if confirmed.

        :param missing_ok: a note (or contact) that does not exist - 404, or the live API's 400
            ``Note not found`` - returns ``False`` instead of raising (an idempotent delete).
        :raises GHLNotFoundError: it does not exist and ``missing_ok`` is false. Not raised when an
            earlier attempt of this call may have deleted it (its answer lost, the ``DELETE``
            resent): that gives ``True`` (see ``OperationsBase._delete``).
        """
        return self._delete(DELETE_NOTE, missing_ok, contact_id=contact_id, note_id=note_id)


__all__ = ["NoteOperations"]
