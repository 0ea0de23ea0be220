"""Exactly-once creates: telling the record a failed create made from records that were there before.

HighLevel has no idempotency key. A create (contact, task, note) is therefore sent with
``replay_safe=False``: when it fails in a way that may have left it applied - the connection
dropped after the request went out, a read timeout, a 5xx, or the 422-after-create quirk - the
transport raises :class:`~airflow_provider_contacts.hooks.transport.AmbiguousWrite` instead of
resending, and the hook looks for the record before it sends the create again
(:meth:`~airflow_provider_contacts.hooks.operations.OperationsBase._create_once`).

The look-up must find the record *that* attempt made and nothing else: a caller may create two
identical notes on purpose, back to back, and the second must never come back with the first's id.
A record counts as made by the attempt (:meth:`CreateWindow.is_new`) only if

1. it matches what was sent (same body/title, same email/names ...: decided by the caller);
2. its id is not **claimed**: every id a create of this process returned (or adopted after a
   look-up) is claimed in :data:`CLAIMS`, per (base URL, kind, contact or location), and a look-up
   claims the record it adopts atomically, so two creates - sequential or on two threads - never
   return the same id. Creates under the same key run one at a time in a process
   (:meth:`ClaimRegistry.serialised`), so a record another thread's create just made is claimed
   before this create is sent;
3. its id is not in the **pre-send snapshot**, when one was taken. A snapshot (one listing of the
   contact's tasks or notes before the create) is taken only for records that carry no usable
   ``dateAdded``: tasks, per contacts.json's ``TaskSchema``, until the API has been seen sending
   one (:data:`DATED`, learned from every task/note the hook parses). Records with ``dateAdded``
   need no extra request:
4. its ``dateAdded`` is not before the attempt was sent, **on the server's clock**: the send time
   (this machine's clock) plus the server's offset from it, learnt from the ``Date`` header of the
   API's answers (:class:`ServerClock`; the look-up's own answer gives one if nothing else did),
   minus :data:`~airflow_provider_contacts.hooks.operations.CLOCK_ALLOWANCE` (2 s: the ``Date``
   header's one-second resolution and clocks of different HighLevel hosts). So our clock may be
   minutes off HighLevel's without the look-up missing its own record or adopting an older one.
   An API that sends no ``Date`` header falls back to this machine's clock minus
   :data:`~airflow_provider_contacts.hooks.operations.CREATE_MATCH_SKEW` (2 minutes).

What remains ambiguous cannot be told apart without an idempotency key: another process creating
an identical record on the same contact within about two seconds of ours, while ours failed
ambiguously. A record the look-up does not see (e.g. search index lag for contacts without email or
phone) means the create is sent again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")

#: How long an id stays claimed (seconds). Longer than any create's retries and look-ups; older
#: records fall out of every look-up window by their ``dateAdded`` anyway.
CLAIM_RETENTION_S = 1800.0

#: Whether each kind of record carries ``dateAdded`` before the API says otherwise (contacts.json:
#: ``GetNoteSchema`` has it, ``TaskSchema`` has not; contacts always have it).
SPEC_DATED = {"contact": True, "note": True, "task": False}


class ServerClock:
    """The API server's clock as seen from here, from the ``Date`` header of its answers.

    Each answer gives a lower bound of the offset ``server time - local time``: the server stamped
    ``Date`` (truncated to the second) at a moment before we received the answer, so
    ``offset >= Date - received_at``. The largest of the recent bounds is kept. Thread-safe.
    """

    def __init__(self, samples: int = 16) -> None:
        self._bounds: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def observe(self, date_header: str | None, received_at: float | None = None) -> None:
        """Take the ``Date`` header of an answer received at ``received_at`` (epoch seconds, now
        if omitted). A missing or unparsable header is ignored."""
        if not date_header:
            return
        try:
            stamped = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if stamped is None or stamped.tzinfo is None:
            return
        bound = stamped.timestamp() - (time.time() if received_at is None else received_at)
        with self._lock:
            self._bounds.append(bound)

    @property
    def offset_s(self) -> float | None:
        """Lower bound of ``server time - local time`` in seconds; ``None`` before any ``Date``."""
        with self._lock:
            return max(self._bounds) if self._bounds else None

    def server_time(self, local_epoch_s: float) -> datetime | None:
        """The earliest the server's clock can have shown at local time ``local_epoch_s``; ``None``
        when no answer carried a ``Date`` header yet."""
        offset = self.offset_s
        if offset is None:
            return None
        return datetime.fromtimestamp(local_epoch_s + offset, tz=timezone.utc)


class ClaimRegistry:
    """Ids that creates of this process returned to their callers, per (base URL, kind, parent).

    ``parent`` is the contact id for tasks and notes, the location id for contacts. Entries expire
    after :data:`CLAIM_RETENTION_S`. Thread-safe; one process-wide instance, :data:`CLAIMS`.
    """

    def __init__(self, retention_s: float = CLAIM_RETENTION_S, stripes: int = 256) -> None:
        self.retention_s = retention_s
        self._ids: dict[Hashable, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._stripes = [threading.RLock() for _ in range(stripes)]

    def serialised(self, key: Hashable) -> threading.RLock:
        """A lock for the creates under ``key`` (striped: creates under other keys rarely wait)."""
        return self._stripes[hash(key) % len(self._stripes)]

    def _prune(self, now: float) -> None:
        for key in [k for k, ids in self._ids.items() if all(now - t > self.retention_s for t in ids.values())]:
            del self._ids[key]
        for ids in self._ids.values():
            for rid in [r for r, t in ids.items() if now - t > self.retention_s]:
                del ids[rid]

    def claim(self, key: Hashable, record_id: str) -> bool:
        """Claim ``record_id``; ``False`` when it was claimed already (and still is)."""
        now = time.monotonic()
        with self._lock:
            if sum(len(v) for v in self._ids.values()) > 50_000:
                self._prune(now)
            ids = self._ids.setdefault(key, {})
            fresh = record_id not in ids or now - ids[record_id] > self.retention_s
            ids[record_id] = now
            return fresh

    def claim_first(self, key: Hashable, candidates: Sequence[T], record_id: Callable[[T], str]) -> T | None:
        """Atomically claim and return the first candidate whose id is not claimed (or ``None``)."""
        now = time.monotonic()
        with self._lock:
            ids = self._ids.setdefault(key, {})
            for candidate in candidates:
                rid = record_id(candidate)
                if rid not in ids or now - ids[rid] > self.retention_s:
                    ids[rid] = now
                    return candidate
        return None

    def is_claimed(self, key: Hashable, record_id: str) -> bool:
        """Whether ``record_id`` is claimed under ``key``."""
        with self._lock:
            claimed_at = self._ids.get(key, {}).get(record_id)
            return claimed_at is not None and time.monotonic() - claimed_at <= self.retention_s

    def clear(self) -> None:
        """Forget every claim (tests; ``forget_process_state``)."""
        with self._lock:
            self._ids.clear()


#: The process-wide claims of every hook (see :class:`ClaimRegistry`).
CLAIMS = ClaimRegistry()


class DatedKinds:
    """Whether the API's records of a kind carry ``dateAdded``, per (base URL, kind).

    Starts from :data:`SPEC_DATED`; every record the hook parses updates it: one without a
    ``dateAdded`` date makes the kind undated for good (creates then take a pre-send snapshot), one
    with it makes an unknown kind dated. Thread-safe; one process-wide instance, :data:`DATED`.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    def observe(self, base_url: str, kind: str, records: Iterable[Any]) -> None:
        """Learn from parsed records (anything with a ``dateAdded`` attribute)."""
        flags = [isinstance(getattr(r, "dateAdded", None), datetime) for r in records]
        if not flags:
            return
        with self._lock:
            key = (base_url, kind)
            if not all(flags):
                self._seen[key] = False
            elif key not in self._seen:
                self._seen[key] = True

    def dated(self, base_url: str, kind: str) -> bool:
        """Whether records of ``kind`` can be told apart by ``dateAdded`` (no snapshot needed)."""
        with self._lock:
            return self._seen.get((base_url, kind), SPEC_DATED.get(kind, False))

    def clear(self) -> None:
        """Forget what was learnt (tests; ``forget_process_state``)."""
        with self._lock:
            self._seen.clear()


#: The process-wide knowledge of which kinds carry ``dateAdded`` (see :class:`DatedKinds`).
DATED = DatedKinds()


@dataclass
class CreateWindow:
    """What a look-up after an ambiguous create may adopt (see the module docstring).

    :param key: the claim key, ``(base URL, kind, contact id or location id)``.
    :param sent_at: local epoch seconds just before the first attempt was sent.
    :param clock: the transport's :class:`ServerClock`.
    :param known: ids seen in the pre-send snapshot (empty when none was taken).
    :param allowance: subtracted from the send time on the server's clock.
    :param fallback: subtracted from the local send time when the server's clock is unknown.
    """

    key: Hashable
    sent_at: float
    clock: ServerClock
    known: frozenset[str]
    allowance: timedelta
    fallback: timedelta

    def since(self) -> datetime:
        """The earliest ``dateAdded`` (UTC) a record made by the attempt can carry, computed now
        from the latest ``Date`` headers (so call it after the look-up's request)."""
        server = self.clock.server_time(self.sent_at)
        if server is not None:
            return server - self.allowance
        return datetime.fromtimestamp(self.sent_at, tz=timezone.utc) - self.fallback

    def is_new(self, record: Any, record_id: Callable[[Any], str] = lambda r: r.id) -> bool:
        """Not known before the send, not claimed, and added since :meth:`since` (a record without
        a ``dateAdded`` date passes that last test: the snapshot and claims decide for it)."""
        rid = record_id(record)
        if rid in self.known or CLAIMS.is_claimed(self.key, rid):
            return False
        added = getattr(record, "dateAdded", None)
        return not isinstance(added, datetime) or added >= self.since()

    def adopt(
        self, candidates: Iterable[T], record_id: Callable[[T], str] = lambda r: r.id  # type: ignore[attr-defined]
    ) -> T | None:
        """Claim and return the newest candidate that :meth:`is_new` (``None`` if there is none).

        Newest first: records someone else made before our send are older than ours.
        """
        fresh = [c for c in candidates if self.is_new(c, record_id)]

        def newest_first(item: tuple[int, T]) -> tuple[int, float, int]:
            index, record = item
            added = getattr(record, "dateAdded", None)
            return (0, -added.timestamp(), -index) if isinstance(added, datetime) else (1, 0.0, -index)

        ordered = [record for _, record in sorted(enumerate(fresh), key=newest_first)]
        return CLAIMS.claim_first(self.key, ordered, record_id)


__all__ = [
    "CLAIMS",
    "CLAIM_RETENTION_S",
    "DATED",
    "SPEC_DATED",
    "ClaimRegistry",
    "CreateWindow",
    "DatedKinds",
    "ServerClock",
]
