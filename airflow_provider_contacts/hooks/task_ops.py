"""Task operations of ``GHLContactsHook``: a contact's tasks, and the location task search with its
fallback to per-contact calls.

The reads have async twins (``alist_tasks``, ``aget_task``, ``asearch_location_tasks``,
``aiter_location_tasks``) that send the same requests through the hook's async transport and give
the same models: each request is built once from its :class:`~.operations.Endpoint`, and the paged
reads are plans (:mod:`.specs`) run by either transport.

Creates are sent exactly once: after an ambiguous failure the contact's tasks are checked for one
with the same content that the failed attempt made - never one that was there before, even an
identical one (see :mod:`.creates`) - before the create is sent again.

An unknown or deleted contact or task raises
:class:`~airflow_provider_contacts.errors.GHLNotFoundError` whether HighLevel answers 404 or - as
the live API does (ghl-live-notes.md) - 400 ``... not found``. When the token may not use the
location task search (401 scope error, or 401/403), tasks are read per contact instead, sync and
async alike (see :mod:`.task_access`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

from airflow_provider_contacts.errors import GHLAuthError, GHLNotFoundError
from airflow_provider_contacts.hooks.operations import (
    READ,
    TASKS_READ,
    WRITE,
    Endpoint,
    OperationsBase,
    flatten,
    operation,
)
from airflow_provider_contacts.hooks.pagination import MAX_SEARCH_PAGE_LIMIT, MAX_TASK_SEARCH_LIMIT, SkipPaging, batched
from airflow_provider_contacts.hooks.specs import Plan, RequestSpec, outcome
from airflow_provider_contacts.hooks.task_access import TaskSearchAccess
from airflow_provider_contacts.models import (
    Contact,
    CreateTask,
    Task,
    TaskCompleted,
    TaskSearchBody,
    TaskSearchPage,
    UpdateTask,
    validate_body,
)

#: Request paths of contacts.json's task operations (placeholders: the hook's parameters).
TASKS_PATH = "/contacts/{contact_id}/tasks"
TASK_PATH = "/contacts/{contact_id}/tasks/{task_id}"

LIST_TASKS = Endpoint("GET", TASKS_PATH, "get-all-tasks", READ)
GET_TASK = Endpoint("GET", TASK_PATH, "get-task", READ)
CREATE_TASK = Endpoint("POST", TASKS_PATH, "create-task", WRITE)
UPDATE_TASK = Endpoint("PUT", TASK_PATH, "update-task", WRITE)
COMPLETE_TASK = Endpoint("PUT", f"{TASK_PATH}/completed", "update-task-completed", WRITE)
DELETE_TASK = Endpoint("DELETE", TASK_PATH, "delete-task", WRITE)
#: locations.json ``task-search``.
TASK_SEARCH = Endpoint("POST", "/locations/{location_id}/tasks/search", "task-search", TASKS_READ)


def _task_search_page(data: Any) -> TaskSearchPage:
    """A task search answer (contacts.json documents its tasks as an array of arrays)."""
    return TaskSearchPage.model_validate({**data, "tasks": list(flatten(data.get("tasks")))})


class TaskOperations(OperationsBase):
    """Tasks of contacts, and the location task search (locations.json ``task-search``)."""

    task_batch_size: int
    task_page_limit: int
    task_search_access: TaskSearchAccess
    #: Every contact of the location, page by page (``ContactOperations._contact_search``).
    _contact_search: Callable[..., Plan[None]]

    # ------------------------------------------------------------------------------------------
    # A contact's tasks
    # ------------------------------------------------------------------------------------------

    def _list_tasks(self, contact_id: str) -> RequestSpec[list[Task]]:
        return LIST_TASKS.spec(self._children("tasks", contact_id, Task), contact_id=contact_id)

    @operation(LIST_TASKS)
    def list_tasks(self, contact_id: str) -> list[Task]:
        """All tasks of a contact (each carries ``contactId``)."""
        return self._run(self._list_tasks, contact_id)

    @operation(LIST_TASKS)
    async def alist_tasks(self, contact_id: str) -> list[Task]:
        """Async :meth:`list_tasks`: the same request, the same :class:`Task` list."""
        return await self._arun(self._list_tasks, contact_id)

    def _get_task(self, contact_id: str, task_id: str) -> RequestSpec[Task]:
        return GET_TASK.spec(self._child("task", contact_id, Task), contact_id=contact_id, task_id=task_id)

    @operation(GET_TASK)
    def get_task(self, contact_id: str, task_id: str) -> Task:
        """One task of a contact (``GET /contacts/{contactId}/tasks/{taskId}``).

        :raises GHLNotFoundError: the contact or task does not exist (404, or the live API's 400
            ``... not found``).
        """
        return self._run(self._get_task, contact_id, task_id)

    @operation(GET_TASK)
    async def aget_task(self, contact_id: str, task_id: str) -> Task:
        """Async :meth:`get_task`: the same request, the same :class:`Task` and errors."""
        return await self._arun(self._get_task, contact_id, task_id)

    @operation(CREATE_TASK)
    def create_task(
        self, contact_id: str, body: CreateTask | dict[str, Any], *, known_task_ids: Iterable[str] | None = None
    ) -> Task:
        """``POST /contacts/{contactId}/tasks``; after an ambiguous failure the contact's tasks are
        checked for one with the same title, body and due date before any retry.

        :param known_task_ids: the ids of every task the contact had just before this call, when
            the caller knows them (it listed them, or made the contact itself: ``[]``). Tasks
            carry no ``dateAdded`` (contacts.json ``TaskSchema``), so without it the hook lists the
            contact's tasks before sending (one more request) to tell a task the failed attempt
            made from one that was there before; with it, that listing is skipped.
        """
        model = validate_body(CreateTask, body, CREATE_TASK.operation_id)

        def same(task: Task) -> bool:
            return (
                task.title == model.title
                and (model.body is None or task.body == model.body)
                and task.dueDate == model.dueDate
            )

        if known_task_ids is None:
            return self._create_child(CREATE_TASK, "task", Task, self.list_tasks, contact_id, model.payload(), same)
        known = [str(task_id) for task_id in known_task_ids]
        return self._create_once(
            CREATE_TASK.spec(
                self._child("task", contact_id, Task), body=model.payload(), replay_safe=False, contact_id=contact_id
            ),
            lookup=lambda window: window.adopt([task for task in self.list_tasks(contact_id) if same(task)]),
            key=self._claim_key("task", contact_id),
            snapshot=lambda: known,
        )

    @operation(UPDATE_TASK)
    def update_task(self, contact_id: str, task_id: str, body: UpdateTask | dict[str, Any]) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}`` with the fields to change.

        :raises GHLNotFoundError: the contact or task does not exist (404 or 400 ``... not found``).
        """
        payload = validate_body(UpdateTask, body, UPDATE_TASK.operation_id).payload()
        parse = self._child("task", contact_id, Task)
        return self._send(UPDATE_TASK.spec(parse, body=payload, contact_id=contact_id, task_id=task_id))

    @operation(COMPLETE_TASK)
    def complete_task(self, contact_id: str, task_id: str, completed: bool = True) -> Task:
        """``PUT /contacts/{contactId}/tasks/{taskId}/completed``."""
        payload = validate_body(TaskCompleted, {"completed": completed}, COMPLETE_TASK.operation_id).payload()
        parse = self._child("task", contact_id, Task)
        return self._send(COMPLETE_TASK.spec(parse, body=payload, contact_id=contact_id, task_id=task_id))

    @operation(DELETE_TASK)
    def delete_task(self, contact_id: str, task_id: str, *, missing_ok: bool = False) -> bool:
        """``DELETE /contacts/{contactId}/tasks/{taskId}``; ``True`` if confirmed.

        :param missing_ok: a task (or contact) that does not exist - 404, or the live API's 400
            ``Task not found`` - returns ``False`` instead of raising (an idempotent delete).
        :raises GHLNotFoundError: it does not exist and ``missing_ok`` is false. Not raised when an
            earlier attempt of this call may have deleted it (its answer lost, the ``DELETE``
            resent): that gives ``True`` (see ``OperationsBase._delete``).
        """
        return self._delete(DELETE_TASK, missing_ok, contact_id=contact_id, task_id=task_id)

    # ------------------------------------------------------------------------------------------
    # The location task search, and its fallback to per-contact task lists
    # ------------------------------------------------------------------------------------------

    def _search_tasks(
        self,
        contact_ids: Sequence[str] | None,
        completed: bool | None,
        assigned_to: Sequence[str] | None,
        query: str | None,
        limit: int,
        skip: int,
        business_id: str | None,
    ) -> RequestSpec[TaskSearchPage]:
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
        payload = validate_body(TaskSearchBody, body, TASK_SEARCH.operation_id).payload()
        return TASK_SEARCH.spec(_task_search_page, body=payload, location_id=self.require_location_id())

    @operation(TASK_SEARCH)
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
            ``fetch_tasks_and_notes``) fall back to per-contact task lists instead.
        """
        return self._run(self._search_tasks, contact_ids, completed, assigned_to, query, limit, skip, business_id)

    @operation(TASK_SEARCH)
    async def asearch_location_tasks(
        self,
        contact_ids: Sequence[str] | None = None,
        completed: bool | None = None,
        assigned_to: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 100,
        skip: int = 0,
        business_id: str | None = None,
    ) -> TaskSearchPage:
        """Async :meth:`search_location_tasks`: the same request, the same :class:`TaskSearchPage`
        and errors (a token without the scope raises, as in the sync one)."""
        return await self._arun(self._search_tasks, contact_ids, completed, assigned_to, query, limit, skip, business_id)

    def _searched_tasks(
        self,
        contact_ids: list[str] | None,
        completed: bool | None,
        page_limit: int,
        keep: Callable[[list[Task]], Iterable[Task]],
    ) -> Plan[None]:
        """The records ``keep`` makes of each page of the task search (every task of the location,
        or of ``contact_ids``), in pages of ``page_limit`` (at most the search's largest page).

        The answer carries no total, so a first page shorter than the page size whose length could
        be a silent cap of the server (a multiple of 25) costs one more request to tell the cap
        from the end (:class:`~.pagination.SkipPaging`).
        """
        page_size = min(page_limit, MAX_TASK_SEARCH_LIMIT)
        paging = SkipPaging(page_size, TASK_SEARCH.operation_id)
        while True:
            page = yield self._search_tasks(contact_ids, completed, None, None, page_size, paging.skip, None)
            yield from keep(page.tasks)
            if not paging.advance(page.tasks, page.total):
                return

    def _tasks_by_contact(
        self, contact_ids: list[str], completed: bool | None, page_limit: int
    ) -> Plan[dict[str, list[Task]] | None]:
        """Tasks of a batch of contacts from the task search, grouped by ``contactId``; ``None``
        when the token may not use the search (now, or before through this hook)."""
        access = self.task_search_access
        if not access.allowed:
            return None
        grouped: dict[str, list[Task]] = {cid: [] for cid in contact_ids}
        seen: set[str] = set()

        def collect(tasks: list[Task]) -> Iterable[Task]:
            for task in tasks:
                if task.id not in seen and task.contactId in grouped:
                    seen.add(task.id)
                    grouped[task.contactId].append(task)  # type: ignore[index]
            return ()

        try:
            yield from self._searched_tasks(contact_ids, completed, page_limit, collect)
        except GHLAuthError as exc:
            if access.refuse(exc):
                return None
            raise
        return grouped

    def _tasks_per_contact(self, contact_ids: Iterable[str], keep: Callable[[list[Task]], Iterable[Task]]) -> Plan[None]:
        """The records ``keep`` makes of each contact's task list (``GET /contacts/{id}/tasks``); a
        contact that no longer exists (404 or 400 not found) has no tasks, as the task search
        answers for an unknown contact id."""
        for contact_id in contact_ids:
            try:
                tasks = yield self._list_tasks(contact_id)
            except GHLNotFoundError:
                tasks = []
            yield from keep(tasks)

    def _location_tasks(
        self, contact_ids: Iterable[str] | None, completed: bool | None, batch_size: int | None, page_limit: int | None
    ) -> Plan[None]:
        """The plan of :meth:`iter_location_tasks` (and of its async twin)."""
        size = batch_size or self.task_batch_size
        page_limit = page_limit or self.task_page_limit
        access = self.task_search_access
        given: set[str] = set()  # a task is yielded once, even after a search refused part way

        def new(tasks: list[Task]) -> Iterator[Task]:
            for task in tasks:
                if task.id not in given and (completed is None or task.completed == completed):
                    given.add(task.id)
                    yield task

        if contact_ids is None:
            if access.allowed:
                try:
                    yield from self._searched_tasks(None, completed, page_limit, new)
                    return
                except GHLAuthError as exc:
                    if not access.refuse(exc):
                        raise

            def page_of_contacts(contacts: list[Contact]) -> Plan[None]:
                return self._tasks_per_contact((c.id for c in contacts), new)

            yield from self._contact_search(None, None, None, MAX_SEARCH_PAGE_LIMIT, page_of_contacts)
            return
        for batch in batched(contact_ids, size):
            grouped = yield from self._tasks_by_contact(batch, completed, page_limit)
            if grouped is None:
                yield from self._tasks_per_contact(batch, new)
            else:
                for contact_id in batch:
                    yield from new(grouped[contact_id])

    def iter_location_tasks(
        self,
        contact_ids: Iterable[str] | None = None,
        completed: bool | None = None,
        batch_size: int | None = None,
        page_limit: int | None = None,
    ) -> Iterator[Task]:
        """Tasks of the location (or of ``contact_ids``, sent in batches), page by page
        (locations.json ``task-search``). Tasks of given contacts come in the order of the ids.

        Falls back to per-contact ``GET /contacts/{id}/tasks`` when the token may not use the task
        search (401 ``not authorized for this scope`` - :class:`GHLScopeError`, no token refresh
        spent - or another 401/403): one warning per hook naming ``locations/tasks.readonly``, and
        the hook never tries the search again (sync or async). Without ``contact_ids`` the contacts
        then come from the contact search; a contact that vanished meanwhile (404 or 400 not found)
        has no tasks. A task is yielded once.

        :param completed: only completed (``True``) or open (``False``) tasks; ``None``: all.
        :param batch_size: contact ids per search request (default: the hook's ``task_batch_size``).
        :param page_limit: tasks per search page, 1..1000 (default: the hook's ``task_page_limit``).
        :raises GHLLocationAccessError: the token belongs to another location (no fallback).
        """
        return self._iterate(self._location_tasks, contact_ids, completed, batch_size, page_limit)

    def aiter_location_tasks(
        self,
        contact_ids: Iterable[str] | None = None,
        completed: bool | None = None,
        batch_size: int | None = None,
        page_limit: int | None = None,
    ) -> AsyncIterator[Task]:
        """Async :meth:`iter_location_tasks`: the same requests, fallback and tasks, sharing the
        hook's memory of whether the token may use the task search."""
        return self._aiterate(self._location_tasks, contact_ids, completed, batch_size, page_limit)

    def tasks_for_contacts(
        self, contact_ids: list[str], completed: bool | None = None, page_limit: int | None = None
    ) -> dict[str, list[Task]] | None:
        """Tasks of a batch of contacts from the location task search, grouped by ``contactId``.

        Returns ``None`` when the token may not use the search (it lacks
        ``locations/tasks.readonly``: a :class:`GHLScopeError`, or 401/403; logged once per hook),
        and at once once that happened in this hook: callers then use :meth:`list_tasks` per contact.
        """
        return outcome(self._tasks_by_contact(contact_ids, completed, page_limit or self.task_page_limit), self._call)


__all__ = ["TaskOperations"]
