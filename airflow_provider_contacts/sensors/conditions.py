"""What a sensor checks - in a worker or, carried by its trigger, in the triggerer - independent of
how the data is fetched.

A :class:`GHLCondition` names one read (``fetch`` + ``fetch_args``) and decides on its answer
(``evaluate``). The read is served by a *source* with the same method names either way:

* synchronously by :class:`~airflow_provider_contacts.sensors.sources.GHLHookSource` (the hook,
  in a worker: poke and reschedule modes);
* asynchronously by :class:`~airflow_provider_contacts.sensors.sources.GHLAsyncHookSource` (the
  hook's async twins, in the triggerer: deferrable mode and event-driven scheduling).

Each condition is named after the sensor that checks it (``GHLTaskChangedSensor`` checks a
:class:`GHLTaskChangedCondition`); the names before the provider-wide ``GHL`` prefix stay importable
as aliases (``TasksChanged``, ``ContactsChanged``, ...).

So one condition gives the same answer in all three sensor modes. Conditions serialise to JSON
(:meth:`GHLCondition.to_kwargs`) so a trigger can carry them; every date is an ISO 8601 UTC string.

Source methods (all answers are API-shaped JSON dicts, dumped from the hook's models by both
sources so that every field has the same form in every mode):

* ``search_contacts(filters, sort, limit) -> list[dict]`` (every page, at most ``limit``)
* ``list_tasks(contact_id)``, ``get_task(contact_id, task_id)`` (a one-item list),
  ``list_notes(contact_id)``;
* ``tasks(contact_id | None, completed=None)``: a contact's tasks, or with ``None`` every task of
  the location (the location task search, locations.json ``task-search``; per-contact reads when
  the token lacks ``locations/tasks.readonly``); ``open_tasks(contact_id | None)`` = the open ones.

Notes have no location-wide endpoint (and a new or edited note leaves the contact's
``dateUpdated`` alone: ghl-live-notes.md), so note conditions watch one contact.

**Baselines.** HighLevel's tasks carry no creation or update time, so "a new task" and "a changed
task or note" are decided against a *baseline*: the state seen at the first check (the ids, or a
fingerprint of the compared fields of each record). The baseline is a dataclass field listed in
``baseline_fields`` and serialised with the rest, so it survives every hand-over: into the
trigger's kwargs (deferrable mode) and into the task's state store between two pokes (reschedule
mode; see :class:`airflow_provider_contacts.sensors.base.GHLBaseSensor`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

from airflow_provider_contacts.dates import format_datetime, parse_datetime
from airflow_provider_contacts.params import iso, to_utc
from airflow_provider_contacts.results import pick

#: Key fields of tasks and notes in sensor results (small XCom values).
_TASK_FIELDS = ("id", "contactId", "title", "dueDate", "completed", "assignedTo")
_NOTE_FIELDS = ("id", "contactId", "title", "userId", "dateAdded")


class GHLConditionSource(Protocol):
    """The reads a condition may ask for (sync flavour; :class:`~.sources.GHLAsyncHookSource`
    has the same methods, awaited)."""

    def search_contacts(self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]: ...

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]: ...

    def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]: ...

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]: ...

    def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]: ...

    def tasks(self, contact_id: str | None, completed: bool | None = None) -> list[dict[str, Any]]: ...


def _date(record: Mapping[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, datetime) else None


def _title_matches(record: Mapping[str, Any], title: str | None) -> bool:
    return not title or title.casefold() in str(record.get("title") or "").casefold()


@dataclass
class GHLCondition:
    """Base: one read, one decision. Subclasses are dataclasses of JSON-able fields."""

    kind: ClassVar[str]
    #: Name of the source method to call, with :meth:`fetch_args`.
    fetch: ClassVar[str]

    def fetch_args(self) -> dict[str, Any]:
        """Keyword arguments of the source call; by default the contact the condition watches
        (``contact_id``: ``None`` for the whole location where the read allows it). The contacts
        condition, which has no ``contact_id``, overrides it."""
        return {"contact_id": self.contact_id}  # type: ignore[attr-defined]

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The JSON-able result when the condition holds, else ``None``."""
        raise NotImplementedError

    # -- baselines (task created, task changed, note changed) -------------------------------
    #: Dataclass fields that hold the baseline (state seen at the first check), not parameters.
    baseline_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def needs_baseline(self) -> bool:
        """True when :meth:`set_baseline` must see the current state before the first check."""
        return False

    def set_baseline(self, records: list[dict[str, Any]]) -> None:
        """Remember the current state (what counts as 'not new' / 'not changed')."""

    def stateless_ok(self, records: list[dict[str, Any]]) -> bool:
        """True when a baseline taken anew at every check still gives the right answer (so a
        reschedule-mode sensor without a state store may go on)."""
        return not self.baseline_fields

    def parameters(self) -> dict[str, Any]:
        """:meth:`to_kwargs` without the baseline: what the sensor's parameters decide."""
        return {k: v for k, v in self.to_kwargs().items() if k not in self.baseline_fields}

    # -- running ---------------------------------------------------------------------------
    def read(self, source: GHLConditionSource) -> list[dict[str, Any]]:
        """Fetch the records this condition looks at, synchronously."""
        return getattr(source, self.fetch)(**self.fetch_args())

    async def aread(self, source: Any) -> list[dict[str, Any]]:
        """Fetch the records this condition looks at, asynchronously."""
        return await getattr(source, self.fetch)(**self.fetch_args())

    def check(self, source: GHLConditionSource) -> dict[str, Any] | None:
        """Fetch and evaluate (sync); takes the baseline first if it is missing."""
        records = self.read(source)
        if self.needs_baseline:
            self.set_baseline(records)
        return self.evaluate(records)

    async def acheck(self, source: Any) -> dict[str, Any] | None:
        """Fetch and evaluate (async); takes the baseline first if it is missing."""
        records = await self.aread(source)
        if self.needs_baseline:
            self.set_baseline(records)
        return self.evaluate(records)

    # -- serialisation ---------------------------------------------------------------------
    def to_kwargs(self) -> dict[str, Any]:
        """JSON-only description (``kind`` + fields), for trigger kwargs."""
        return {"kind": self.kind, **asdict(self)}

    @staticmethod
    def from_kwargs(data: Mapping[str, Any]) -> GHLCondition:
        """Rebuild a condition from :meth:`to_kwargs` output."""
        values = dict(data)
        kind = values.pop("kind", None)
        cls = CONDITIONS.get(str(kind))
        if cls is None:
            raise ValueError(f"unknown condition kind {kind!r}; known: {sorted(CONDITIONS)}")
        return cls(**values)


@dataclass
class GHLContactsChangedCondition(GHLCondition):
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

    def next_after(self, result: Mapping[str, Any]) -> GHLContactsChangedCondition:
        """The condition that continues exactly after ``result`` (same filters and limits)."""
        return replace(self, since=result["watermark"], seen_ids=list(result["watermark_ids"]))


@dataclass
class GHLTaskCreatedCondition(GHLCondition):
    """A task created for a contact (or anywhere in the location) after the baseline.

    HighLevel's task answers may carry no ``dateAdded``; "new" therefore means "not among
    ``known_ids``". Without ``known_ids`` the first check takes them: every task that exists then,
    except those whose ``dateAdded`` (when present) is after ``since``.

    :param contact_id: the contact; ``None``: every task of the location (location task search).
    :param since: ISO 8601 UTC; tasks whose ``dateAdded`` is after it are new even at the first check.
    :param known_ids: ids of tasks that are not new (``None``: taken at the first check; the
        baseline, about 23 bytes per task).
    :param title: only tasks whose title contains this text (case-insensitive).

    Result: ``{"contact_id", "task_ids": [...], "tasks": [<key fields>], "count": n}``
    (``contact_id`` is ``None`` location-wide).
    """

    kind: ClassVar[str] = "task_created"
    fetch: ClassVar[str] = "tasks"
    baseline_fields: ClassVar[tuple[str, ...]] = ("known_ids",)

    contact_id: str | None = None
    since: str | None = None
    known_ids: list[str] | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            self.since = iso(self.since)
        if self.known_ids is not None:
            self.known_ids = [str(i) for i in self.known_ids]

    @property
    def needs_baseline(self) -> bool:
        return self.known_ids is None

    def stateless_ok(self, records: list[dict[str, Any]]) -> bool:
        """With ``since`` and dated tasks, the dates alone tell new tasks from old ones."""
        return self.since is not None and not self.undated(records)

    def set_baseline(self, records: list[dict[str, Any]]) -> None:
        since = to_utc(self.since) if self.since else None
        self.known_ids = [
            r["id"] for r in records if not (since and (added := _date(r, "dateAdded")) and added > since)
        ]

    def undated(self, records: Iterable[Mapping[str, Any]]) -> bool:
        """True when some task carries no ``dateAdded`` (so ``since`` alone cannot tell new ones)."""
        return any(_date(r, "dateAdded") is None for r in records)

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        known = set(self.known_ids or ())
        new = [r for r in records if r["id"] not in known and _title_matches(r, self.title)]
        if not new:
            return None
        return {
            "contact_id": self.contact_id,
            "task_ids": [r["id"] for r in new],
            "tasks": [pick(r, _TASK_FIELDS) for r in new],
            "count": len(new),
        }


@dataclass
class GHLTaskCompletedCondition(GHLCondition):
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
        return {"contact_id": self.contact_id, "task_id": self.task_id, "task": pick(done[0], _TASK_FIELDS)}


@dataclass
class GHLTaskDueCondition(GHLCondition):
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
            "tasks": [pick(r, _TASK_FIELDS) for r in shown],
            "count": len(due),
            "window_end": format_datetime(end),
        }


@dataclass
class GHLNoteAddedCondition(GHLCondition):
    """A note added to a contact after ``since`` (by the note's ``dateAdded``).

    Result: ``{"contact_id", "note_ids": [...], "notes": [<key fields>], "count": n}``.
    """

    kind: ClassVar[str] = "note_added"
    fetch: ClassVar[str] = "list_notes"

    contact_id: str
    since: str

    def __post_init__(self) -> None:
        self.since = iso(self.since)

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        since = to_utc(self.since)
        new = [r for r in records if (added := _date(r, "dateAdded")) is not None and added > since]
        if not new:
            return None
        new.sort(key=lambda r: _date(r, "dateAdded"))  # type: ignore[arg-type,return-value]
        return {
            "contact_id": self.contact_id,
            "note_ids": [r["id"] for r in new],
            "notes": [pick(r, _NOTE_FIELDS) for r in new],
            "count": len(new),
        }


#: Fields of a task compared by :class:`GHLTaskChangedCondition` (tasks have no update time:
#: ghl-live-notes.md).
TASK_COMPARE_FIELDS: tuple[str, ...] = ("title", "body", "dueDate", "completed", "assignedTo")
#: Fields of a note compared by :class:`GHLNoteChangedCondition`.
NOTE_COMPARE_FIELDS: tuple[str, ...] = ("body", "title", "color", "pinned", "userId")
#: Kinds of change :class:`GHLTaskChangedCondition` / :class:`GHLNoteChangedCondition` report, in
#: result order.
CHANGE_KINDS: tuple[str, ...] = ("created", "updated", "deleted")
_DATE_FIELDS = frozenset({"dueDate", "dateAdded", "dateUpdated"})
#: Hex characters of one field's hash in a fingerprint (32 bits: a change goes unnoticed with
#: probability 2**-32).
_HASH_CHARS = 8


def _canonical(field_name: str, value: Any) -> str:
    """One field's value as canonical JSON (dates as HighLevel's ISO 8601 UTC form)."""
    if field_name in _DATE_FIELDS and value not in (None, ""):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, datetime):
            value = format_datetime(parsed)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def fingerprint(record: Mapping[str, Any], fields: Sequence[str]) -> str:
    """``_HASH_CHARS`` hex characters of SHA-1 per compared field, concatenated in ``fields`` order:
    equal fingerprints mean equal content; the differing slices name the fields that changed."""
    return "".join(
        hashlib.sha1(_canonical(f, record.get(f)).encode("utf-8"), usedforsecurity=False).hexdigest()[:_HASH_CHARS]
        for f in fields
    )


@dataclass
class _RecordChangedCondition(GHLCondition):
    """Base of :class:`GHLTaskChangedCondition` and :class:`GHLNoteChangedCondition`: records
    created, updated (a compared field differs) or deleted since the baseline, by content (no
    update times needed).

    :param contact_id: the contact (``None``: the whole location, where the source can read it).
    :param compare: the fields whose change counts (default: the class's ``default_fields``).
    :param changes: which kinds of change count: any of ``created``, ``updated``, ``deleted``.
    :param max_items: at most this many changes in the result (``count`` is the total).
    :param baseline: ``{record id: fingerprint}`` taken at the first check (``None``: not yet);
        about 30 bytes per record plus 8 per compared field.

    Result: ``{"contact_id", "changes": [{"id", "change", "fields"}], "<noun>_ids": [...],
    "<noun>s": [<key fields of the created/updated ones>], "count": n, "truncated": bool}``;
    ``fields`` lists the compared fields that differ (updates only); changes are ordered created,
    updated, deleted, then by id.
    """

    allowed_fields: ClassVar[tuple[str, ...]] = ()
    default_fields: ClassVar[tuple[str, ...]] = ()
    key_fields: ClassVar[tuple[str, ...]] = ()
    noun: ClassVar[str] = "record"
    baseline_fields: ClassVar[tuple[str, ...]] = ("baseline",)

    contact_id: str | None = None
    compare: list[str] | None = None
    changes: list[str] = field(default_factory=lambda: list(CHANGE_KINDS))
    max_items: int = 100
    baseline: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.compare = list(self.compare) if self.compare else list(self.default_fields)
        unknown = [f for f in self.compare if f not in self.allowed_fields]
        if unknown:
            raise ValueError(f"'compare': {unknown} cannot be compared; use some of {list(self.allowed_fields)}")
        self.changes = [str(c) for c in self.changes]
        if not self.changes or any(c not in CHANGE_KINDS for c in self.changes):
            raise ValueError(f"'changes' must be a non-empty list of {list(CHANGE_KINDS)}, got {self.changes!r}")
        self.changes = [c for c in CHANGE_KINDS if c in self.changes]
        if not (isinstance(self.max_items, int) and self.max_items >= 1):
            raise ValueError(f"'max_items' must be a positive integer, got {self.max_items!r}")

    @property
    def needs_baseline(self) -> bool:
        return self.baseline is None

    def set_baseline(self, records: list[dict[str, Any]]) -> None:
        self.baseline = {str(r["id"]): fingerprint(r, self.compare or ()) for r in records if r.get("id")}

    def _changed_fields(self, now: str, before: str) -> list[str]:
        return [
            f for i, f in enumerate(self.compare or ())
            if now[i * _HASH_CHARS:(i + 1) * _HASH_CHARS] != before[i * _HASH_CHARS:(i + 1) * _HASH_CHARS]
        ]

    def evaluate(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        base = self.baseline or {}
        current = {str(r["id"]): r for r in records if r.get("id")}
        found: list[tuple[str, str, list[str]]] = []
        if "created" in self.changes:
            found += [("created", rid, []) for rid in sorted(set(current) - set(base))]
        if "updated" in self.changes:
            for rid in sorted(set(current) & set(base)):
                now = fingerprint(current[rid], self.compare or ())
                if now != base[rid]:
                    found.append(("updated", rid, self._changed_fields(now, base[rid])))
        if "deleted" in self.changes:
            found += [("deleted", rid, []) for rid in sorted(set(base) - set(current))]
        if not found:
            return None
        shown = found[: self.max_items]
        return {
            "contact_id": self.contact_id,
            "changes": [
                {"id": rid, "change": kind, **({"fields": fields} if kind == "updated" else {})}
                for kind, rid, fields in shown
            ],
            f"{self.noun}_ids": [rid for _, rid, _ in shown],
            f"{self.noun}s": [pick(current[rid], self.key_fields) for kind, rid, _ in shown if kind != "deleted"],
            "count": len(found),
            "truncated": len(found) > self.max_items,
        }


@dataclass
class GHLTaskChangedCondition(_RecordChangedCondition):
    """Tasks of a contact - or of the whole location (``contact_id=None``: the location task
    search) - created, updated or deleted since the baseline. Tasks carry no update time
    (ghl-live-notes.md), so "updated" means a compared field (default: title, body, dueDate,
    completed, assignedTo) differs from the baseline's fingerprint; "completed" is one of them.

    Result: see :class:`_RecordChangedCondition` (``task_ids``, ``tasks``).
    """

    kind: ClassVar[str] = "tasks_changed"
    fetch: ClassVar[str] = "tasks"
    allowed_fields: ClassVar[tuple[str, ...]] = TASK_COMPARE_FIELDS
    default_fields: ClassVar[tuple[str, ...]] = TASK_COMPARE_FIELDS
    key_fields: ClassVar[tuple[str, ...]] = _TASK_FIELDS
    noun: ClassVar[str] = "task"


@dataclass
class GHLNoteChangedCondition(_RecordChangedCondition):
    """Notes of one contact created, edited (a compared field - default body, title, color,
    pinned, userId - differs from the baseline) or deleted since the baseline.

    Per contact only: HighLevel has no location-wide note endpoint, and a new or edited note does
    not touch the contact's ``dateUpdated`` (ghl-live-notes.md), so "recently updated contacts"
    cannot find them; reading every contact's notes at each check would cost one request per contact.

    Result: see :class:`_RecordChangedCondition` (``note_ids``, ``notes``).
    """

    kind: ClassVar[str] = "notes_changed"
    fetch: ClassVar[str] = "list_notes"
    allowed_fields: ClassVar[tuple[str, ...]] = NOTE_COMPARE_FIELDS
    default_fields: ClassVar[tuple[str, ...]] = NOTE_COMPARE_FIELDS
    key_fields: ClassVar[tuple[str, ...]] = _NOTE_FIELDS
    noun: ClassVar[str] = "note"

    def __post_init__(self) -> None:
        if not self.contact_id:
            raise ValueError(
                "'contact_id' is required: notes can only be watched per contact (HighLevel has no "
                "location-wide note endpoint)"
            )
        super().__post_init__()


CONDITIONS: dict[str, type[GHLCondition]] = {
    cls.kind: cls
    for cls in (
        GHLContactsChangedCondition,
        GHLTaskCreatedCondition,
        GHLTaskCompletedCondition,
        GHLTaskDueCondition,
        GHLNoteAddedCondition,
        GHLTaskChangedCondition,
        GHLNoteChangedCondition,
    )
}

#: The names before the ``GHL`` prefix (aliases; the trigger kwargs never held class names).
Condition = GHLCondition
ConditionSource = GHLConditionSource
ContactsChanged = GHLContactsChangedCondition
TaskCreated = GHLTaskCreatedCondition
TaskCompleted = GHLTaskCompletedCondition
TaskDue = GHLTaskDueCondition
NoteAdded = GHLNoteAddedCondition
TasksChanged = GHLTaskChangedCondition
NotesChanged = GHLNoteChangedCondition

__all__ = [
    "CHANGE_KINDS",
    "CONDITIONS",
    "NOTE_COMPARE_FIELDS",
    "TASK_COMPARE_FIELDS",
    "GHLCondition",
    "GHLConditionSource",
    "GHLContactsChangedCondition",
    "GHLNoteAddedCondition",
    "GHLNoteChangedCondition",
    "GHLTaskCompletedCondition",
    "GHLTaskCreatedCondition",
    "GHLTaskDueCondition",
    "GHLTaskChangedCondition",
    "fingerprint",
]
