"""Concurrent fetch of the tasks and notes of many contacts, under the shared limiter.

Contacts are taken lazily in batches. For each batch, the tasks come from one paged location task
search (``contactId`` list) - or, when the token lacks ``locations/tasks.readonly``, from one
``GET /contacts/{id}/tasks`` per contact - and the notes from one ``GET /contacts/{id}/notes`` per
contact. All calls run on a thread pool and go through the hook's transport, so they share the
process-wide :class:`~airflow_provider_contacts.hooks.pacing.RateLimiter`. A contact's
:class:`~airflow_provider_contacts.models.ContactActivity` is yielded as soon as both of its parts
are in; at most two batches are in flight, so memory stays constant however many ids come in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from airflow_provider_contacts.hooks.operations import OperationsBase
from airflow_provider_contacts.hooks.pagination import batched
from airflow_provider_contacts.models import ContactActivity, Note, Task


class ActivitySource(Protocol):
    """What the fan-out needs from the hook."""

    def tasks_for_contacts(self, contact_ids: list[str]) -> dict[str, list[Task]] | None: ...

    def list_tasks(self, contact_id: str) -> list[Task]: ...

    def list_notes(self, contact_id: str) -> list[Note]: ...


@dataclass
class _Batch:
    ids: list[str]
    tasks: dict[str, list[Task] | None] = field(default_factory=dict)
    notes: dict[str, list[Note] | None] = field(default_factory=dict)


def fetch_activity(
    source: ActivitySource,
    contact_ids: Iterable[str],
    *,
    max_workers: int = 8,
    tasks: bool = True,
    notes: bool = True,
    batch_size: int = 100,
) -> Iterator[ContactActivity]:
    """Yield one :class:`ContactActivity` per contact id (order of completion, not of input).

    :param max_workers: threads issuing requests (the limiter decides the actual rate).
    :param tasks: fetch tasks (else ``tasks`` is an empty list).
    :param notes: fetch notes (else ``notes`` is an empty list).
    :param batch_size: contact ids per location task search.
    """
    if max_workers < 1:
        raise ValueError("max_workers must be >= 1")
    batches = batched(contact_ids, batch_size)
    pending: dict[Future[Any], tuple[str, _Batch, str | None]] = {}
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ghl-fanout")

    def submit(kind: str, batch: _Batch, contact_id: str | None, fn: Callable[..., Any], *args: Any) -> None:
        pending[pool.submit(fn, *args)] = (kind, batch, contact_id)

    def start(ids: list[str]) -> None:
        batch = _Batch(ids=ids)
        for cid in ids:
            batch.tasks[cid] = None if tasks else []
            batch.notes[cid] = None if notes else []
        if tasks:
            submit("task-batch", batch, None, source.tasks_for_contacts, ids)
        if notes:
            for cid in ids:
                submit("notes", batch, cid, source.list_notes, cid)
        if not tasks and not notes:
            submit("noop", batch, None, lambda: None)

    def ready(batch: _Batch, cids: Iterable[str]) -> Iterator[ContactActivity]:
        for cid in list(cids):
            task_list, note_list = batch.tasks.get(cid), batch.notes.get(cid)
            if task_list is not None and note_list is not None:
                del batch.tasks[cid], batch.notes[cid]
                yield ContactActivity(contact_id=cid, tasks=task_list, notes=note_list)

    exhausted = False
    try:
        while True:
            # Keep the pool fed: start a new batch while fewer than two workers' worth are queued.
            while not exhausted and len(pending) < 2 * max_workers:
                ids = next(batches, None)
                if ids is None:
                    exhausted = True
                else:
                    start(ids)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                kind, batch, cid = pending.pop(future)
                result = future.result()  # re-raises a worker's error here
                if kind == "task-batch":
                    if result is None:  # no task-search scope: one call per contact instead
                        for each in batch.ids:
                            submit("tasks", batch, each, source.list_tasks, each)
                        continue
                    for each in batch.ids:
                        batch.tasks[each] = result.get(each, [])
                    yield from ready(batch, batch.ids)
                elif kind == "tasks":
                    batch.tasks[cid] = result  # type: ignore[index]
                    yield from ready(batch, [cid])  # type: ignore[list-item]
                elif kind == "notes":
                    batch.notes[cid] = result  # type: ignore[index]
                    yield from ready(batch, [cid])  # type: ignore[list-item]
                else:
                    yield from ready(batch, batch.ids)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class FanoutOperations(OperationsBase):
    """The fan-out of ``GHLContactsHook`` over its task and note reads (:mod:`.task_ops`,
    :mod:`.note_ops`)."""

    task_batch_size: int

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
            cast(ActivitySource, self), contact_ids, max_workers=max_workers, tasks=tasks, notes=notes,
            batch_size=self.task_batch_size,
        )


__all__ = ["ActivitySource", "FanoutOperations", "fetch_activity"]
