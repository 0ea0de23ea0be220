"""What the sensors and triggers wait for, independent of how the data is fetched.

A :class:`Condition` names one read (``fetch`` + ``fetch_args``) and decides on its answer
(``evaluate``). The read is served by a *source* with the same method names either way:

* synchronously by :class:`airflow_provider_contacts.sensors.base.HookSource` (the hook, in a
  worker: poke and reschedule modes);
* asynchronously by :class:`airflow_provider_contacts.triggers.client.AsyncContactsClient`
  (httpx, in the triggerer: deferrable mode and event-driven scheduling).

So one condition gives the same answer in all three sensor modes. Conditions serialise to JSON
(:meth:`Condition.to_kwargs`) so a trigger can carry them; every date is an ISO 8601 UTC string.

Source methods (all answers are API-shaped JSON dicts):

* ``search_contacts(filters, sort, limit) -> list[dict]`` (every page, at most ``limit``)
* ``list_tasks(contact_id)``, ``get_task(contact_id, task_id)`` (a one-item list),
  ``list_notes(contact_id)``, ``open_tasks(contact_id | None)`` (location-wide when ``None``)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

from airflow_provider_contacts.models import format_datetime, parse_datetime

#: Key fields of tasks and notes in sensor results (small XCom values).
_TASK_FIELDS = ("id", "contactId", "title", "dueDate", "completed", "assignedTo")
_NOTE_FIELDS = ("id", "contactId", "title", "userId", "dateAdded")


class ConditionSource(Protocol):
    """The reads a condition may ask for (sync flavour; the async client mirrors it)."""

    def search_contacts(self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]: ...

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]: ...

    def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]: ...

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]: ...

    def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]: ...


def to_utc(value: Any, name: str = "since") -> datetime:
    """An aware UTC datetime from a datetime, an ISO 8601 string or epoch milliseconds.

    :raises ValueError: naming ``name`` when the value is missing or not a date-time.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        raise ValueError(
            f"'{name}' is empty; pass a date-time (e.g. '2024-05-01T00:00:00Z' or "
            "'{{ data_interval_start }}'; manual runs have no data interval, use '{{ dag_run.start_date }}')"
        )
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:
        raise ValueError(f"'{name}': {exc}") from None
    if not isinstance(parsed, datetime):
        raise ValueError(f"'{name}': {value!r} is not a date-time")
    return parsed.astimezone(timezone.utc)


def iso(value: Any, name: str = "since") -> str:
    """``value`` as HighLevel's ISO 8601 UTC string (``2024-05-01T00:00:00.000Z``)."""
    return format_datetime(to_utc(value, name))


def _date(record: Mapping[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, datetime) else None


def _pick(record: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: record[k] for k in keys if record.get(k) is not None}


def _title_matches(record: Mapping[str, Any], title: str | None) -> bool:
    return not title or title.casefold() in str(record.get("title") or "").casefold()


@dataclass
class Condition:
    """Base: one read, one decision. Subclasses are dataclasses of JSON-able fields."""

    kind: ClassVar[str]
    #: Name of the source method to call, with :meth:`fetch_args`.
    fetch: ClassVar[str]

    def fetch_args(self) -> dict[str, Any]:
        """Keyword arguments of the source call."""
        raise NotImplementedError

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The JSON-able result when the condition holds, else ``None``."""
        raise NotImplementedError

    # -- baselines (only TaskCreated needs one) --------------------------------------------
    @property
    def needs_baseline(self) -> bool:
        """True when :meth:`set_baseline` must see the current state before the first check."""
        return False

    def set_baseline(self, records: list[dict[str, Any]]) -> None:
        """Remember the current state (what counts as 'not new')."""

    # -- running ---------------------------------------------------------------------------
    def read(self, source: ConditionSource) -> list[dict[str, Any]]:
        """Fetch the records this condition looks at, synchronously."""
        return getattr(source, self.fetch)(**self.fetch_args())

    async def aread(self, client: Any) -> list[dict[str, Any]]:
        """Fetch the records this condition looks at, asynchronously."""
        return await getattr(client, self.fetch)(**self.fetch_args())

    def check(self, source: ConditionSource) -> dict[str, Any] | None:
        """Fetch and evaluate (sync); takes the baseline first if it is missing."""
        records = self.read(source)
        if self.needs_baseline:
            self.set_baseline(records)
        return self.evaluate(records)

    async def acheck(self, client: Any) -> dict[str, Any] | None:
        """Fetch and evaluate (async); takes the baseline first if it is missing."""
        records = await self.aread(client)
        if self.needs_baseline:
            self.set_baseline(records)
        return self.evaluate(records)

    # -- serialisation ---------------------------------------------------------------------
    def to_kwargs(self) -> dict[str, Any]:
        """JSON-only description (``kind`` + fields), for trigger kwargs."""
        return {"kind": self.kind, **asdict(self)}

    @staticmethod
    def from_kwargs(data: Mapping[str, Any]) -> Condition:
        """Rebuild a condition from :meth:`to_kwargs` output."""
        values = dict(data)
        kind = values.pop("kind", None)
        cls = CONDITIONS.get(str(kind))
        if cls is None:
            raise ValueError(f"unknown condition kind {kind!r}; known: {sorted(CONDITIONS)}")
        return cls(**values)


@dataclass
class ContactsChanged(Condition):
    """Contacts created (``date_field="dateAdded"``) or updated (``"dateUpdated"``) after ``since``.

    :param since: ISO 8601 UTC watermark (millisecond precision, as HighLevel's dates).
    :param date_field: ``dateUpdated`` (created or updated) or ``dateAdded`` (created only).
    :param filters: more search filters (tag, custom field, ...), all of which must hold.
    :param min_count: how many matches make the condition true.
    :param max_ids: at most this many ids in the result (the oldest changes first).
    :param seen_ids: ``None`` (default): contacts changed strictly after ``since`` match. A list
        (the ``watermark_ids`` of the previous result): contacts changed at or after ``since``
        match, except those listed, which were already reported at exactly ``since``. So a batch
        cut off at ``max_ids`` in the middle of contacts sharing one timestamp continues exactly
        where it stopped: no change is reported twice, none is skipped.

    Result: ``{"contact_ids": [...], "count": n, "truncated": bool, "since": ..., "watermark": ...,
    "watermark_ids": [...]}`` where ``watermark`` is the latest change reported and
    ``watermark_ids`` the ids reported so far whose change is at exactly ``watermark``; the next
    check is :meth:`next_after` (``since=watermark, seen_ids=watermark_ids``).
    """

    kind: ClassVar[str] = "contacts_changed"
    fetch: ClassVar[str] = "search_contacts"

    since: str
    date_field: str = "dateUpdated"
    filters: list[dict[str, Any]] = field(default_factory=list)
    min_count: int = 1
    max_ids: int = 1000
    seen_ids: list[str] | None = None

    def __post_init__(self) -> None:
        self.since = iso(self.since)
        if self.date_field not in ("dateUpdated", "dateAdded"):
            raise ValueError(f"'date_field' must be 'dateUpdated' or 'dateAdded', got {self.date_field!r}")
        if self.min_count < 1 or self.max_ids < self.min_count:
            raise ValueError("'min_count' must be >= 1 and 'max_ids' >= min_count")
        if self.seen_ids is not None:
            self.seen_ids = sorted({str(i) for i in self.seen_ids})

    @property
    def fetch_limit(self) -> int:
        """Contacts to read: ``max_ids`` plus room for the already reported ones at ``since``."""
        return self.max_ids + len(self.seen_ids or ())

    def fetch_args(self) -> dict[str, Any]:
        bound = "gt" if self.seen_ids is None else "gte"
        window = {"field": self.date_field, "operator": "range", "value": {bound: self.since}}
        return {
            "filters": [window, *self.filters],
            "sort": [{"field": self.date_field, "direction": "asc"}],
            "limit": self.fetch_limit,
        }

    def _is_new(self, record: Mapping[str, Any], since: datetime, seen: frozenset[str] | None) -> bool:
        when = _date(record, self.date_field)
        if when is None or when < since:
            return False
        return when > since or (seen is not None and record["id"] not in seen)

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        since = to_utc(self.since)
        seen = frozenset(self.seen_ids) if self.seen_ids is not None else None
        changed = sorted((r for r in records if self._is_new(r, since, seen)), key=lambda r: _date(r, self.date_field))  # type: ignore[arg-type,return-value]
        if len(changed) < self.min_count:
            return None
        reported = changed[: self.max_ids]
        latest = _date(reported[-1], self.date_field)
        at_latest = [r["id"] for r in reported if _date(r, self.date_field) == latest]
        if latest == since:  # still at the old watermark: the earlier ones stay reported
            at_latest = [*(self.seen_ids or ()), *at_latest]
        return {
            "contact_ids": [r["id"] for r in reported],
            "count": len(reported),
            "truncated": len(changed) > self.max_ids or len(records) >= self.fetch_limit,
            "since": self.since,
            "watermark": format_datetime(latest),  # type: ignore[arg-type]
            "watermark_ids": sorted(set(at_latest)),
        }

    def next_after(self, result: Mapping[str, Any]) -> ContactsChanged:
        """The condition that continues exactly after ``result`` (same filters and limits)."""
        return replace(self, since=result["watermark"], seen_ids=list(result["watermark_ids"]))


@dataclass
class TaskCreated(Condition):
    """A task created for a contact after the baseline.

    HighLevel's task answers may carry no ``dateAdded``; "new" therefore means "not among
    ``known_ids``". Without ``known_ids`` the first check takes them: every task that exists then,
    except those whose ``dateAdded`` (when present) is after ``since``.

    :param contact_id: the contact.
    :param since: ISO 8601 UTC; tasks whose ``dateAdded`` is after it are new even at the first check.
    :param known_ids: ids of tasks that are not new (``None``: taken at the first check).
    :param title: only tasks whose title contains this text (case-insensitive).

    Result: ``{"contact_id", "task_ids": [...], "tasks": [<key fields>], "count": n}``.
    """

    kind: ClassVar[str] = "task_created"
    fetch: ClassVar[str] = "list_tasks"

    contact_id: str
    since: str | None = None
    known_ids: list[str] | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            self.since = iso(self.since)

    @property
    def needs_baseline(self) -> bool:
        return self.known_ids is None

    def set_baseline(self, records: list[dict[str, Any]]) -> None:
        since = to_utc(self.since) if self.since else None
        self.known_ids = [
            r["id"] for r in records if not (since and (added := _date(r, "dateAdded")) and added > since)
        ]

    def undated(self, records: Iterable[Mapping[str, Any]]) -> bool:
        """True when some task carries no ``dateAdded`` (so ``since`` alone cannot tell new ones)."""
        return any(_date(r, "dateAdded") is None for r in records)

    def fetch_args(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id}

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        known = set(self.known_ids or ())
        new = [r for r in records if r["id"] not in known and _title_matches(r, self.title)]
        if not new:
            return None
        return {
            "contact_id": self.contact_id,
            "task_ids": [r["id"] for r in new],
            "tasks": [_pick(r, _TASK_FIELDS) for r in new],
            "count": len(new),
        }


@dataclass
class TaskCompleted(Condition):
    """One task of a contact is completed.

    Result: ``{"contact_id", "task_id", "task": <key fields>}``.
    """

    kind: ClassVar[str] = "task_completed"
    fetch: ClassVar[str] = "get_task"

    contact_id: str
    task_id: str

    def fetch_args(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "task_id": self.task_id}

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        done = [r for r in records if r.get("completed") is True]
        if not done:
            return None
        return {"contact_id": self.contact_id, "task_id": self.task_id, "task": _pick(done[0], _TASK_FIELDS)}


@dataclass
class TaskDue(Condition):
    """Open (not completed) tasks due within ``within_s`` seconds from now.

    :param contact_id: the contact, or ``None`` for every task of the location.
    :param within_s: the window length in seconds (from the moment of each check).
    :param include_overdue: also match open tasks whose due date has passed.
    :param title: only tasks whose title contains this text (case-insensitive).
    :param max_items: at most this many tasks (the soonest due) in the result; ``count`` is the total.

    Result: ``{"task_ids": [...], "tasks": [<key fields>], "count": n, "window_end": ...}``.
    """

    kind: ClassVar[str] = "task_due"
    fetch: ClassVar[str] = "open_tasks"

    contact_id: str | None = None
    within_s: float = 86_400.0
    include_overdue: bool = False
    title: str | None = None
    max_items: int = 100

    def __post_init__(self) -> None:
        if not self.within_s > 0:
            raise ValueError(f"'within' must be a positive duration, got {self.within_s!r} s")

    def fetch_args(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id}

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        now = datetime.now(timezone.utc)
        end = now + timedelta(seconds=self.within_s)
        due = []
        for r in records:
            when = _date(r, "dueDate")
            if r.get("completed") or when is None or not _title_matches(r, self.title):
                continue
            if when <= end and (self.include_overdue or when >= now):
                due.append(r)
        if not due:
            return None
        due.sort(key=lambda r: _date(r, "dueDate"))  # type: ignore[arg-type,return-value]
        shown = due[: self.max_items]
        return {
            "task_ids": [r["id"] for r in shown],
            "tasks": [_pick(r, _TASK_FIELDS) for r in shown],
            "count": len(due),
            "window_end": format_datetime(end),
        }


@dataclass
class NoteAdded(Condition):
    """A note added to a contact after ``since`` (by the note's ``dateAdded``).

    Result: ``{"contact_id", "note_ids": [...], "notes": [<key fields>], "count": n}``.
    """

    kind: ClassVar[str] = "note_added"
    fetch: ClassVar[str] = "list_notes"

    contact_id: str
    since: str

    def __post_init__(self) -> None:
        self.since = iso(self.since)

    def fetch_args(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id}

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        since = to_utc(self.since)
        new = [r for r in records if (added := _date(r, "dateAdded")) is not None and added > since]
        if not new:
            return None
        new.sort(key=lambda r: _date(r, "dateAdded"))  # type: ignore[arg-type,return-value]
        return {
            "contact_id": self.contact_id,
            "note_ids": [r["id"] for r in new],
            "notes": [_pick(r, _NOTE_FIELDS) for r in new],
            "count": len(new),
        }


CONDITIONS: dict[str, type[Condition]] = {
    cls.kind: cls for cls in (ContactsChanged, TaskCreated, TaskCompleted, TaskDue, NoteAdded)
}

__all__ = [
    "CONDITIONS",
    "Condition",
    "ConditionSource",
    "ContactsChanged",
    "NoteAdded",
    "TaskCompleted",
    "TaskCreated",
    "TaskDue",
    "iso",
    "to_utc",
]
