"""Task and note operations of ``ContactsHook``, the location task search (with its fallback to
per-contact calls) and the concurrent task/note fan-out.

Creates of tasks and notes are sent exactly once: after an ambiguous failure the contact's
tasks/notes are checked for one with the same content that the failed attempt made - never one
that was there before, even an identical one (see :mod:`.creates`) - before the create is sent again.

An unknown or deleted contact, task or note raises
:class:`~airflow_provider_contacts.errors.GHLNotFoundError` whether HighLevel answers 404 or - as
the live API does (ghl-live-notes.md) - 400 ``... not found``. When the token may not use the
location task search (401 scope error, or 401/403), tasks are read per contact instead (see
:mod:`.task_access`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

from airflow_provider_contacts.errors import GHLAuthError, GHLNotFoundError
from airflow_provider_contacts.hooks.creates import DATED, CreateWindow
from airflow_provider_contacts.hooks.fanout import fetch_activity
from airflow_provider_contacts.hooks.operations import (
    READ,
    TASKS_READ,
    WRITE,
    OperationsBase,
    api_path,
    flatten,
    operation,
)
from airflow_provider_contacts.hooks.pagination import MAX_TASK_SEARCH_LIMIT, batched, pages_by_skip
from airflow_provider_contacts.hooks.task_access import TaskSearchAccess
from airflow_provider_contacts.models import (
    ContactActivity,
    CreateNote,
    CreateTask,
    Note,
    Task,
    TaskCompleted,
    TaskSearchBody,
    TaskSearchPage,
    UpdateNote,
    UpdateTask,
    validate_body,
)

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

#: Request paths of contacts.json's task and note operations (placeholders: the hook's parameters).
TASKS_PATH = "/contacts/{contact_id}/tasks"
TASK_PATH = "/contacts/{contact_id}/tasks/{task_id}"
TASK_COMPLETED_PATH = "/contacts/{contact_id}/tasks/{task_id}/completed"
NOTES_PATH = "/contacts/{contact_id}/notes"
NOTE_PATH = "/contacts/{contact_id}/notes/{note_id}"
LOCATION_TASK_SEARCH_PATH = "/locations/{location_id}/tasks/search"


class ActivityOperations(OperationsBase):
    """Tasks and notes of contacts, and the location task search (locations.json ``task-search``)."""

    task_batch_size: int
    task_page_limit: int
    task_search_access: TaskSearchAccess

    @property
    def _task_search_allowed(self) -> bool:
        """Whether this hook still uses the location task search (see :mod:`.task_access`)."""
        return self.task_search_access.allowed

    @_task_search_allowed.setter
    def _task_search_allowed(self, value: bool) -> None:
        self.task_search_access.allowed = value

    def _create_activity(
        self, contact_id: str, kind: Literal["task", "note"], payload: dict[str, Any], same: Callable[[Any], bool]
    ) -> Any:
        """``POST`` a task or note exactly once (see :meth:`OperationsBase._create_once`).

        After an ambiguous failure, the contact's tasks/notes are looked through for one that is
        ``same`` as the one sent and that the failed attempt made: added since it was sent (on the
        server's clock), not claimed by another create of this process, and - for records without
        ``dateAdded`` (tasks, per contacts.json, until the API shows otherwise) - not in a listing
        taken just before the create (one extra ``GET`` per create of such records).
        """
        model, listing, path = (
            (Task, self.list_tasks, api_path(TASKS_PATH, contact_id=contact_id))
            if kind == "task"
            else (Note, self.list_notes, api_path(NOTES_PATH, contact_id=contact_id))
        )

        def snapshot() -> list[str]:
            try:
                return [item.id for item in listing(contact_id)]
            except GHLNotFoundError:
                return []  # the create will say so, under its own operation

        def lookup(window: CreateWindow) -> Any:
            return window.adopt([item for item in listing(contact_id) if same(item)])

        return self._create_once(
            lambda: self._call("POST", path, json_body=payload, scope=WRITE, replay_safe=False),
            parse=lambda data: self._with_contact([data[kind]], contact_id, model)[0],
            lookup=lookup,
            key=self._claim_key(kind, contact_id),
            snapshot=None if DATED.dated(self.base_url, kind) else snapshot,
        )

    # ------------------------------------------------------------------------------------------
    # Tasks
    # ------------------------------------------------------------------------------------------

    @operation("get-all-tasks", READ)
    def list_tasks(self, contact_id: str) -> list[Task]:
        """All tasks of a contact (each carries ``contactId``)."""
        data = self._call("GET", api_path(TASKS_PATH, contact_id=contact_id))
        return self._with_contact(data.get("tasks") or [], contact_id, Task)

    @operation("get-task", READ)
    def get_task(self, contact_id: str, task_id: str) -> Task:
        """One task of a contact (``GET /contacts/{contactId}/tasks/{taskId}``).

        :raises GHLNotFoundError: the contact or task does not exist (404, or the live API's 400
            ``... not found``).
        """
        data = self._call("GET", api_path(TASK_PATH, contact_id=contact_id, task_id=task_id))
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("create-task", WRITE)
    def create_task(self, contact_id: str, body: CreateTask | dict[str, Any]) -> Task:
        """``POST /contacts/{contactId}/tasks``; after an ambiguous failure the contact's tasks are
        checked for one with the same title, body and due date before any retry."""
        model = validate_body(CreateTask, body, "create-task")
        return self._create_activity(
            contact_id,
            "task",
            model.payload(),
            lambda task: task.title == model.title
            and (model.body is None or task.body == model.body)
            and task.dueDate == model.dueDate,
        )

    @operation("update-task", WRITE)
    def update_task(self, contact_id: str, task_id: str, body: UpdateTask | dict[str, Any]) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}`` with the fields to change.

        :raises GHLNotFoundError: the contact or task does not exist (404 or 400 ``... not found``).
        """
        payload = validate_body(UpdateTask, body, "update-task").payload()
        path = api_path(TASK_PATH, contact_id=contact_id, task_id=task_id)
        data = self._call("PUT", path, json_body=payload, scope=WRITE)
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("update-task-completed", WRITE)
    def complete_task(self, contact_id: str, task_id: str, completed: bool = True) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}/completed``."""
        payload = validate_body(TaskCompleted, {"completed": completed}, "update-task-completed").payload()
        path = api_path(TASK_COMPLETED_PATH, contact_id=contact_id, task_id=task_id)
        data = self._call("PUT", path, json_body=payload, scope=WRITE)
        return self._with_contact([data["task"]], contact_id, Task)[0]

    @operation("delete-task", WRITE)
    def delete_task(self, contact_id: str, task_id: str, *, missing_ok: bool = False) -> bool:
        """``DELETE /contacts/{contactId}/tasks/{taskId}``; ``True`` if confirmed.

        :param missing_ok: a task (or contact) that does not exist - 404, or the live API's 400
            ``Task not found`` - returns ``False`` instead of raising (an idempotent delete).
        :raises GHLNotFoundError: it does not exist and ``missing_ok`` is false.
        """
        return self._delete(api_path(TASK_PATH, contact_id=contact_id, task_id=task_id), missing_ok)

    # ------------------------------------------------------------------------------------------
    # Notes
    # ------------------------------------------------------------------------------------------

    @operation("get-all-notes", READ)
    def list_notes(self, contact_id: str) -> list[Note]:
        """All notes of a contact (each carries ``contactId``)."""
        data = self._call("GET", api_path(NOTES_PATH, contact_id=contact_id))
        return self._with_contact(data.get("notes") or [], contact_id, Note)

    @operation("get-note", READ)
    def get_note(self, contact_id: str, note_id: str) -> Note:
        """One note of a contact (``GET /contacts/{contactId}/notes/{id}``).

        :raises GHLNotFoundError: the contact or note does not exist (404 or 400 ``... not found``).
        """
        data = self._call("GET", api_path(NOTE_PATH, contact_id=contact_id, note_id=note_id))
        return self._with_contact([data["note"]], contact_id, Note)[0]

    @operation("create-note", WRITE)
    def create_note(self, contact_id: str, body: CreateNote | dict[str, Any]) -> Note:
        """``POST /contacts/{contactId}/notes``; after an ambiguous failure the contact's notes are
        checked for one with the same body and title (added since the first attempt) before any retry."""
        model = validate_body(CreateNote, body, "create-note")
        return self._create_activity(
            contact_id,
            "note",
            model.payload(),
            lambda note: note.body == model.body and (model.title is None or note.title == model.title),
        )

    @operation("update-note", WRITE)
    def update_note(self, contact_id: str, note_id: str, body: UpdateNote | dict[str, Any]) -> Note:
        """``PUT /contacts/{contactId}/notes/{id}`` with the fields to change.

        :raises GHLNotFoundError: the contact or note does not exist (404 or 400 ``... not found``).
        """
        payload = validate_body(UpdateNote, body, "update-note").payload()
        path = api_path(NOTE_PATH, contact_id=contact_id, note_id=note_id)
        data = self._call("PUT", path, json_body=payload, scope=WRITE)
        return self._with_contact([data["note"]], contact_id, Note)[0]

    @operation("delete-note", WRITE)
    def delete_note(self, contact_id: str, note_id: str, *, missing_ok: bool = False) -> bool:
        """``DELETE /contacts/{contactId}/notes/{id}``; ``True`` if confirmed.

        :param missing_ok: a note (or contact) that does not exist - 404, or the live API's 400
            ``Note not found`` - returns ``False`` instead of raising (an idempotent delete).
        :raises GHLNotFoundError: it does not exist and ``missing_ok`` is false.
        """
        return self._delete(api_path(NOTE_PATH, contact_id=contact_id, note_id=note_id), missing_ok)

    # ------------------------------------------------------------------------------------------
    # Location: task search, custom fields
    # ------------------------------------------------------------------------------------------

    @operation("task-search", TASKS_READ)
    def search_location_tasks(
        self,
        contact_ids: Sequence[str] | None = None,
        completed: bool | None = None,
        assigned_to: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 100,
        skip: int = 0,
        business_id: str | None = None,
    ) -> TaskSearchPage:
        """One page of ``POST /locations/{locationId}/tasks/search`` (locations.json ``task-search``).

        :raises GHLScopeError: the token lacks ``locations/tasks.readonly`` (401 ``The token is not
            authorized for this scope.``, ghl-live-notes.md; no token refresh is spent on it). The
            iterating methods (:meth:`iter_location_tasks`, :meth:`tasks_for_contacts`,
            :meth:`fetch_tasks_and_notes`) fall back to per-contact task lists instead.
        """
        body: dict[str, Any] = {"limit": limit, "skip": skip}
        for key, value in (
            ("contactId", list(contact_ids) if contact_ids is not None else None),
            ("completed", completed),
            ("assignedTo", list(assigned_to) if assigned_to is not None else None),
            ("query", query),
            ("businessId", business_id),
        ):
            if value is not None:
                body[key] = value
        payload = validate_body(TaskSearchBody, body, "task-search").payload()
        path = api_path(LOCATION_TASK_SEARCH_PATH, location_id=self.require_location_id())
        data = self._call("POST", path, json_body=payload, scope=TASKS_READ)
        return TaskSearchPage.model_validate({**data, "tasks": list(flatten(data.get("tasks")))})

    def _page_location_tasks(self, contact_ids: list[str] | None, completed: bool | None, limit: int) -> Iterator[Task]:
        """Every task of the search, in pages of ``limit`` (at most the task search's largest page).

        The answer carries no total, so a first page shorter than ``limit`` whose length could be a
        silent cap of the server (a multiple of 25) costs one more request to tell the cap from the
        end (see :func:`pages_by_skip`).
        """
        page_size = min(limit, MAX_TASK_SEARCH_LIMIT)

        def fetch(skip: int) -> tuple[list[Task], int | None]:
            page = self.search_location_tasks(contact_ids=contact_ids, completed=completed, limit=page_size, skip=skip)
            return page.tasks, page.total

        return pages_by_skip(fetch, page_size, "task-search")

    def _task_search_denied(self, exc: GHLAuthError) -> bool:
        """After the task search was refused (401 scope error, or 401/403): switch this hook to
        per-contact task calls for good (one warning per hook). ``False``: re-raise ``exc``."""
        return self.task_search_access.refuse(exc)

    def _tasks_unless_gone(self, contact_id: str) -> list[Task]:
        """:meth:`list_tasks`, or ``[]`` for a contact that no longer exists (404 or 400 not
        found), as the task search answers for an unknown contact id."""
        try:
            return self.list_tasks(contact_id)
        except GHLNotFoundError:
            return []

    def iter_location_tasks(
        self,
        contact_ids: Iterable[str] | None = None,
        completed: bool | None = None,
        batch_size: int | None = None,
        page_limit: int | None = None,
    ) -> Iterator[Task]:
        """Tasks of the location (or of ``contact_ids``, sent in batches), page by page
        (locations.json ``task-search``).

        Falls back to per-contact ``GET /contacts/{id}/tasks`` when the token may not use the task
        search (401 ``not authorized for this scope`` - :class:`GHLScopeError`, no token refresh
        spent - or another 401/403): one warning per hook naming ``locations/tasks.readonly``, and
        the hook never tries the search again. Without ``contact_ids`` the contacts then come from
        the contact search; a contact that vanished meanwhile (404 or 400 not found) has no tasks.
        The async twin is :func:`~airflow_provider_contacts.hooks.async_search.aiter_location_tasks`.
        """
        size = batch_size or self.task_batch_size
        page_limit = page_limit or self.task_page_limit
        seen: set[str] = set()  # tasks of a location-wide search refused part way are not repeated
        if contact_ids is None:
            if self._task_search_allowed:
                try:
                    for task in self._page_location_tasks(None, completed, page_limit):
                        seen.add(task.id)
                        yield task
                    return
                except GHLAuthError as exc:
                    if not self._task_search_denied(exc):
                        raise
            contact_ids = (c.id for c in self.iter_search_contacts())
        for batch in batched(contact_ids, size):
            grouped = self.tasks_for_contacts(batch, completed=completed, page_limit=page_limit)
            if grouped is None:
                grouped = {cid: self._tasks_unless_gone(cid) for cid in batch}
            for cid in batch:
                for task in grouped.get(cid, []):
                    if (completed is None or task.completed == completed) and task.id not in seen:
                        yield task

    def tasks_for_contacts(
        self, contact_ids: list[str], completed: bool | None = None, page_limit: int | None = None
    ) -> dict[str, list[Task]] | None:
        """Tasks of a batch of contacts from the location task search, grouped by ``contactId``.

        Returns ``None`` when the token may not use the search (it lacks
        ``locations/tasks.readonly``: a :class:`GHLScopeError`, or 401/403; logged once per hook),
        and at once once that happened in this hook: callers then use :meth:`list_tasks` per contact.
        """
        if not self._task_search_allowed:
            return None
        page_limit = page_limit or self.task_page_limit
        grouped: dict[str, list[Task]] = {cid: [] for cid in contact_ids}
        seen: set[str] = set()
        try:
            for task in self._page_location_tasks(contact_ids, completed, page_limit):
                if task.id in seen:
                    continue
                seen.add(task.id)
                if task.contactId in grouped:
                    grouped[task.contactId].append(task)
        except GHLAuthError as exc:
            if self._task_search_denied(exc):
                return None
            raise
        return grouped

    # ------------------------------------------------------------------------------------------
    # Fan-out
    # ------------------------------------------------------------------------------------------

    def fetch_tasks_and_notes(
        self,
        contact_ids: Iterable[str],
        max_workers: int = 8,
        tasks: bool = True,
        notes: bool = True,
    ) -> Iterator[ContactActivity]:
        """Tasks and notes of many contacts, fetched concurrently under the shared limiter.

        Yields one :class:`ContactActivity` per id as soon as it is complete (completion order).
        Tasks come from the location task search in batches of ``task_batch_size`` ids (or per
        contact without the scope); notes need one call per contact. Memory stays bounded.
        """
        return fetch_activity(
            self, contact_ids, max_workers=max_workers, tasks=tasks, notes=notes, batch_size=self.task_batch_size
        )
