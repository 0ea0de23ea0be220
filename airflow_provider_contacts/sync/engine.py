"""One location's reconciliation run: HighLevel contacts, tasks and notes -> SQL target.

The run, in order (each numbered step commits on its own; see docs/reconcile.md):

0. **Custom fields**: the location's custom field definitions are read once; every field gets
   its ``cf_...`` column (``custom_fields: auto``), assigned once and kept in the sync state
   (:mod:`.custom_fields`); explicit ``custom_field`` references are resolved by name.
1. **Contacts**: the first run (or ``full_sweep``) reads every contact, later runs those with
   ``dateUpdated >= watermark - overlap``; both stream oldest update first in batches of
   ``batch_size``. Per batch, the tasks and notes of every contact whose content hash changed
   (all contacts in a full run) are re-read; contacts, tasks, notes, the tombstones of tasks and
   notes that disappeared, and the new watermark commit in one transaction.
2. **Deleted contacts**: the contact id scan (500 ids per request; a full run reuses its own read)
   is compared with the target; missing contacts (confirmed with ``GET /contacts/{id}`` when few)
   and their tasks and notes are marked deleted. Children follow their contact whatever state its
   row is in (live, quarantined without a row, already marked deleted).
3. **Sweep**: tasks and notes carry no update time and do not touch the contact, so a rolling
   sweep re-reads them for the next slice of contacts (by id, wrapping around) sized to cover the
   location once per ``sweep_period`` and capped by ``max_requests_per_run``. The cursor commits
   with each slice batch.

A run killed at any point loses nothing and duplicates nothing: upserts are keyed by id, and the
watermark and cursor only ever describe committed rows.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.errors import GHLAuthError
from airflow_provider_contacts.hooks.pagination import batched
from airflow_provider_contacts.hooks.task_access import TASK_SEARCH_SCOPE
from airflow_provider_contacts.sync.custom_fields import STATE_NAME as CUSTOM_FIELDS_STATE
from airflow_provider_contacts.sync.custom_fields import plan_custom_columns
from airflow_provider_contacts.sync.extract import Children, Extractor, iso_utc, parse_updated
from airflow_provider_contacts.sync.mapping import TABLES, FieldMapping, MappedRecord, Quarantined
from airflow_provider_contacts.sync.progress import ProgressReporter, limiter_rate
from airflow_provider_contacts.sync.progress import hook_stat as _stat
from airflow_provider_contacts.sync.report import CustomFieldsReport, RunReport
from airflow_provider_contacts.sync.sinks import SinkTransaction, SqlSink, utcnow
from airflow_provider_contacts.sync.state import SyncState

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync.events import EventSync

__all__ = ["ReconcileEngine", "SyncConfig", "reconcile_location"]

log = logging.getLogger(__name__)
#: Name of the per-location value in ``ghl_sync_state`` holding the mapping's column specs.
COLUMN_SPECS_STATE = "column_specs"
CHILDREN = ("tasks", "notes")


@dataclass
class SyncConfig:
    """Knobs of a run. Durations are ``timedelta``; counts are numbers of records or requests.

    :param full_sweep: re-read every contact and every contact's tasks and notes (first load,
        repair, check). The first run against a target is always full.
    :param overlap: how far before the watermark the incremental search starts, to catch
        updates committed late with an older ``dateUpdated``.
    :param batch_size: contacts per committed batch (memory and transaction size).
    :param page_limit: contacts per search request (<= 500).
    :param sweep_period: every contact's tasks and notes are re-read at least once per period ...
    :param schedule_interval: ... given that the DAG runs this often.
    :param max_requests_per_run: request budget; it caps the sweep (changed contacts are always
        processed in full).
    :param deletion_scan: compare contact ids with the target every run.
    :param verify_deletes: confirm up to this many missing contacts with ``GET /contacts/{id}``
        before marking them deleted (0: trust the scan).
    :param max_delete_fraction: refuse to delete more than this fraction of a location's contacts
        in one run (guards against a truncated scan); the run reports a warning instead.
    :param hard_delete: delete rows instead of setting ``deleted_at``.
    :param max_workers: parallel per-contact requests.
    :param progress_interval_s: a progress line (phase, records, requests, rate, time left) at
        most this often, plus one at each phase start (:mod:`.progress`).
    """

    full_sweep: bool = False
    overlap: timedelta = timedelta(minutes=10)
    batch_size: int = 200
    page_limit: int = 500
    sweep_period: timedelta = timedelta(days=7)
    schedule_interval: timedelta = timedelta(hours=1)
    max_requests_per_run: int = 50_000
    deletion_scan: bool = True
    verify_deletes: int = 25
    max_delete_fraction: float = 0.5
    hard_delete: bool = False
    max_workers: int = 8
    progress_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or not 1 <= self.page_limit <= 500:
            raise ValueError("batch_size must be >= 1 and page_limit between 1 and 500")
        if self.sweep_period <= timedelta(0) or self.schedule_interval <= timedelta(0):
            raise ValueError("sweep_period and schedule_interval must be positive durations")
        if self.max_requests_per_run < 1:
            raise ValueError("max_requests_per_run must be >= 1")

    @property
    def runs_per_sweep(self) -> int:
        """How many runs share one sweep period (at least 1)."""
        return max(1, math.floor(self.sweep_period / self.schedule_interval))


class ReconcileEngine:
    """Runs the reconciliation of one location into one sink (see the module docstring).

    :param hook: a ``ContactsHook`` for the location (its limiter paces every request).
    :param sink: the target (tables are created when missing).
    :param mapping: field mapping (custom field names are resolved on each run, once).
    :param config: run settings.
    :param location_id: defaults to ``hook.location_id``.
    :param clock: returns "now" (aware UTC); tests may fix it.
    :param events: apply the location's pending webhook events first and run the deletion scan
        and sweep at the budget the event stream allows (:mod:`.events`); ``None``: polling only.
    """

    def __init__(
        self,
        hook: ContactsHook,
        sink: SqlSink,
        mapping: FieldMapping,
        config: SyncConfig | None = None,
        *,
        location_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        events: EventSync | None = None,
    ) -> None:
        self.hook = hook
        self.events = events  # webhook events applied first (sync/events.py); None: polling only
        self.sink = sink
        self.mapping = mapping
        self.config = config or SyncConfig()
        self.location_id = str(location_id or hook.location_id or "")
        if not self.location_id:
            raise ValueError("no location id: set extra 'location_id' on the connection or pass location_id")
        self.clock = clock
        self.sink.hard_delete = self.config.hard_delete
        self.extract = Extractor(
            hook,
            page_limit=self.config.page_limit,
            max_workers=self.config.max_workers,
        )

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunReport:
        """Reconcile once; returns the report (also logged)."""
        started = time.monotonic()
        base = {name: _stat(self.hook, name) for name in ("requests", "throttled", "retries")}
        self.sink.ensure_tables()
        with self.sink.transaction() as tx:
            state = SyncState.load(tx, self.location_id)
        full = self.config.full_sweep or state.watermark is None
        report = RunReport(
            location_id=self.location_id,
            target=self.sink.dialect_name,
            mode="full" if full else "incremental",
            watermark_before=state.watermark,
        )
        self._request_base = base["requests"]
        self._unseen: set[str] = set()
        self._reread: set[str] = set()  # contacts whose tasks and notes this run already read
        self._read = dict.fromkeys(TABLES, 0)  # records mapped this run, per entity
        self._filled: dict[str, set[str]] = {entity: set() for entity in TABLES}  # columns with a value
        self._done = dict.fromkeys(TABLES, 0)  # records written (or quarantined) this run, per entity
        self.progress = ProgressReporter(
            log,
            requests=lambda: _stat(self.hook, "requests") - base["requests"],
            rate_limit=lambda: limiter_rate(self.hook),
            interval_s=self.config.progress_interval_s,
            label=f"location={self.location_id}",
        )
        self.progress.start()  # a line at least every progress_interval_s, even mid-batch
        try:
            self._bind_custom_fields(report)
            self._remap_changed_columns(report)

            # -- webhook events (sync/events.py): applied first; they decide the backstop's budget
            events = self.events.begin(self, state, report, full) if self.events is not None else None
            if events is not None:
                events.apply()
            # --
            seen_ids = self._load_contacts(state, report, full)
            if events is not None:
                events.after_contacts()
            if (self.config.deletion_scan or full) and (events is None or events.deletion_scan_due()):
                self._delete_missing_contacts(report, seen_ids)
            if not full and (events is None or events.sweep_due()):
                self._sweep(state, report)
            if events is not None:
                events.finish()
        finally:
            self.progress.stop()
        self._warn_task_search_fallback(report)
        self._warn_null_columns(report)
        now = self.clock()
        report.requests = _stat(self.hook, "requests") - base["requests"]
        report.throttled = _stat(self.hook, "throttled") - base["throttled"]
        report.retries = _stat(self.hook, "retries") - base["retries"]
        report.duration_s = round(time.monotonic() - started, 3)
        with self.sink.transaction() as tx:
            if full:
                state.last_full_at = iso_utc(now)
                state.sweep_cursor = None
                state.sweep_cycle_started_at = iso_utc(now)
            report.watermark_after = state.watermark
            state.save(tx, now, last_run=report.to_dict())
        log.info("reconcile report\n%s", report.format_table())
        return report

    # -- 0. custom fields -----------------------------------------------------------------
    def _bind_custom_fields(self, report: RunReport) -> None:
        """Assign the location's custom field columns (stored; see :mod:`.custom_fields`), bind
        them to the mapping, and add the new ones to ``ghl_contacts``.

        Definitions that cannot be read (the token lacks ``locations/customFields.readonly``) are a
        warning: the stored assignments are used as they are. An explicitly mapped custom field the
        location does not have is a warning and NULLs; for a ``required`` column it fails the run
        (:class:`~.mapping.MappingError`).
        """
        mapping = self.mapping
        auto = mapping.custom_fields == "auto"
        references = mapping.custom_field_names
        fields: list[dict[str, Any]] | None = None
        available: list[str] | None = None
        if auto or references:
            try:
                fields = self.extract.custom_fields()
                available = sorted({str(f["name"]) for f in fields if f.get("name")})
            except GHLAuthError as exc:
                report.warnings.append(
                    f"the custom field definitions could not be read ({type(exc).__name__}: {exc.message}; the "
                    "token needs locations/customFields.readonly): the stored custom field columns are used as they are"
                )
        with self.sink.transaction(exclusive=True) as tx:
            states = tx.all_states(CUSTOM_FIELDS_STATE)
            stored = states.pop(self.location_id, None)
            plan = plan_custom_columns(stored, states.values(), fields, auto=auto, references=references)
            if plan.state() != stored:
                tx.set_state(self.location_id, {CUSTOM_FIELDS_STATE: plan.state()}, self.clock())
        columns_of = {c.custom_field: c.name for c in mapping.tables["contacts"] if c.custom_field}
        report.custom_fields = CustomFieldsReport(
            columns=len(plan.fill),
            added=list(plan.added),
            renamed=list(plan.renamed),
            removed=list(plan.removed),
            missing=[f"{ref} (column {columns_of.get(ref)})" for ref in plan.missing],
        )
        for ref in plan.missing:
            report.warnings.append(
                f"mapped custom field {ref!r} (column {columns_of.get(ref)}) does not exist in location "
                f"{self.location_id}: the column stays NULL"
                + (f"; the location has: {available}" if available is not None else "")
            )
        for line in plan.added + plan.renamed + plan.removed:
            log.info("custom field column %s", line)
        mapping.bind_custom_fields(plan, available)
        self.sink.ensure_tables()  # adds the columns of fields new in this run

    # -- 0b. mapping changes ----------------------------------------------------------------
    def _remap_changed_columns(self, report: RunReport) -> None:
        """Fill mapped columns that are new in the mapping, or whose source or transform changed,
        for every live row of the location from its stored ``raw_json`` (no request to
        HighLevel: unchanged records are never rewritten by the load, their content hash is the
        same). The mapping's column specs (a hash per column) are kept in the sync state
        (``column_specs``); rows are re-mapped in keyset pages of ``batch_size``, each committed,
        and counted in ``report.backfilled``. A run that dies half-way re-maps again next time
        (the specs are stored once a table is done)."""
        with self.sink.transaction() as tx:
            stored = tx.get_state(self.location_id, COLUMN_SPECS_STATE) or {}
        for entity, table in TABLES.items():
            current = self.mapping.column_specs(entity)
            before = stored.get(entity) or {}
            if before == current:
                continue
            changed = [column for column, digest in current.items() if before.get(column) != digest]
            if changed:
                rows = self._remap_columns(entity, changed, report)
                if rows:
                    report.backfilled[table] = dict.fromkeys(changed, rows)
                    log.info("%s: re-mapped %s from raw_json for %d row(s)", table, ", ".join(changed), rows)
            stored[entity] = current
            with self.sink.transaction() as tx:
                tx.set_state(self.location_id, {COLUMN_SPECS_STATE: stored}, self.clock())

    def _remap_columns(self, entity: str, columns: list[str], report: RunReport) -> int:
        types = self.mapping.columns(entity)
        after: str | None = None
        total = 0
        while True:
            with self.sink.transaction() as tx:
                page = tx.live_raw_after(entity, self.location_id, after, self.config.batch_size)
                if not page:
                    return total
                updates: list[tuple[str, list[Any]]] = []
                for rid, raw in page:
                    record = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
                    values, errors = self.mapping.map_columns(entity, record or {}, columns)
                    updates.append((rid, [self.sink.adapt(values.get(c), types[c]) for c in columns]))
                    for column, why in errors.items():
                        report.column_error(entity, column, f"{rid}: {why}")
                total += tx.update_columns(entity, columns, updates)
            after = page[-1][0]

    # -- 1. contacts -----------------------------------------------------------------------
    def _load_contacts(self, state: SyncState, report: RunReport, full: bool) -> set[str] | None:
        """Stream changed (or, when ``full``, all) contacts to the target in batches.

        Returns the ids seen when ``full`` (a complete id list, used for deletions), else ``None``.
        """
        since = None
        if not full and state.watermark:
            since = parse_datetime(state.watermark) - self.config.overlap
        seen: set[str] | None = set() if full else None
        # The total comes with the search's first page (set_total). Minimal requests per contact:
        # its share of a search page, plus (full run) one notes request and its share of a
        # batched task search.
        per_contact = 1.0 / self.config.page_limit + ((1.0 + 1.0 / self.config.batch_size) if full else 0.0)
        self.progress.phase("contacts", per_record=per_contact, records=self._done)
        loaded = 0
        contacts = self.extract.contacts_updated_since(since, on_total=self.progress.set_total)
        for batch in batched(contacts, self.config.batch_size):
            mapped, bad = self._map("contacts", batch)
            ids = [c["id"] for c in batch if c.get("id")]
            if seen is not None:
                seen.update(ids)
            if full:
                reread = ids
            else:
                with self.sink.transaction() as tx:
                    known = tx.stored_hashes("contacts", ids)
                reread = [r.id for r in mapped if known.get(r.id) != r.content_hash] + [
                    q.id for q in bad if q.id
                ]
            children = self.extract.children(reread)
            if not full:  # a full run has no sweep; keep the set small
                self._reread.update(children.contact_ids)
            newest = max((t for t in map(parse_updated, batch) if t is not None), default=None)
            now = self.clock()
            with self.sink.transaction() as tx:
                self._write(tx, "contacts", mapped, bad, report, now)
                self._write_children(tx, children, report, now)
                if newest is not None:
                    candidate = iso_utc(newest)
                    if state.watermark is None or candidate > state.watermark:
                        state.watermark = candidate
                    state.save(tx, now, "watermark")
            loaded += len(batch)
            self.progress.tick(loaded, self._done)
        return seen

    # -- 2. deletions ----------------------------------------------------------------------
    def _delete_missing_contacts(self, report: RunReport, seen: set[str] | None) -> None:
        """Mark contacts that HighLevel no longer has deleted, and their tasks and notes with them.

        Children follow their contact whatever state the contact's own row is in: a live row
        (tombstoned with its children), no row at all because the contact was quarantined, or a
        row already marked deleted while tasks or notes of it are still live. Every contact id that
        live tasks or notes point at is therefore compared with the id scan too.
        """
        if seen is None:
            self.progress.phase("deletion scan", per_record=1.0 / self.config.page_limit, records=self._done)
            seen = set()
            for cid in self.extract.contact_ids(on_total=self.progress.set_total):
                seen.add(cid)
                if len(seen) % self.config.page_limit == 0:  # once per page of ids
                    self.progress.tick(len(seen))
            self.progress.tick(len(seen))
        else:  # a full run compares with the ids it just read: no request
            self.progress.phase("deletion scan", total=len(seen), records=self._done)
        report.contacts_scanned = len(seen)
        with self.sink.transaction() as tx:
            live = list(tx.live_ids("contacts", self.location_id))
            stale_quarantine = [q for q in tx.quarantined_ids("contacts", self.location_id) if q not in seen]
            parents = tx.child_parent_ids(self.location_id)
        live_set = set(live)
        missing = [cid for cid in live if cid not in seen]
        # Contacts without a live row (quarantined, or already marked deleted) whose tasks or
        # notes are still live: gone from HighLevel too, their children must follow.
        orphaned = sorted(cid for cid in parents if cid not in seen and cid not in live_set)
        self._unseen = set(missing)
        candidates = missing + orphaned
        known = len(live_set | parents)  # contacts with a live row or live tasks/notes
        if candidates and len(candidates) > self.config.max_delete_fraction * known and known >= 10:
            report.warnings.append(
                f"{len(candidates)} of {known} contacts are missing from the id scan, more than "
                f"max_delete_fraction={self.config.max_delete_fraction}; nothing deleted. If this is "
                "real, run again with a higher max_delete_fraction."
            )
            return
        if 0 < len(candidates) <= self.config.verify_deletes:
            gone = {cid for cid in candidates if not self.extract.contact_exists(cid)}
        else:
            gone = set(candidates)
        missing = [cid for cid in missing if cid in gone]
        orphaned = [cid for cid in orphaned if cid in gone]
        if orphaned:
            log.info("tasks and notes of %d contact(s) without a live row follow their deleted contact", len(orphaned))
        # Quarantine entries of contacts the scan no longer finds go (those with live children only
        # once the contact is confirmed gone).
        stale = [cid for cid in stale_quarantine if cid in gone or cid not in parents]
        now = self.clock()
        with self.sink.transaction() as tx:
            self._tombstone_contacts(tx, missing, now, report, orphaned=orphaned, stale=stale)

    # -- 3. sweep --------------------------------------------------------------------------
    def _sweep(self, state: SyncState, report: RunReport) -> None:
        """Re-read tasks and notes of the next slice of contacts (see :class:`SyncConfig`)."""
        with self.sink.transaction() as tx:
            total = tx.count_live("contacts", self.location_id)
        target = math.ceil(total / self.config.runs_per_sweep) if total else 0
        used = _stat(self.hook, "requests") - self._request_base
        remaining = self.config.max_requests_per_run - used
        per_contact = 1.0 + 1.0 / self.config.batch_size  # one notes request, tasks batched
        affordable = max(0, int(remaining / per_contact) - 1)
        size = min(target, affordable)
        sweep = report.sweep
        sweep.target = target
        sweep.budget_limited = size < target
        if size <= 0:
            self.progress.phase("sweep", total=0, records=self._done)
            sweep.cursor = state.sweep_cursor
            return
        ids, sweep.wrapped, sliced = self._sweep_ids(state, size)
        sweep.skipped = len(sliced) - len(ids)
        self.progress.phase("sweep", total=len(ids), per_record=per_contact, records=self._done)
        for batch in batched(ids, self.config.batch_size):
            children = self.extract.children(batch)
            now = self.clock()
            with self.sink.transaction() as tx:
                self._write_children(tx, children, report, now)
                state.sweep_cursor = batch[-1]
                state.save(tx, now, "sweep_cursor", "sweep_cycle_started_at")
            sweep.contacts += len(batch)
            self.progress.tick(sweep.contacts, self._done)
        if sliced and state.sweep_cursor != sliced[-1]:  # the slice ended on skipped contacts
            with self.sink.transaction() as tx:
                state.sweep_cursor = sliced[-1]
                state.save(tx, self.clock(), "sweep_cursor", "sweep_cycle_started_at")
        sweep.cursor = state.sweep_cursor

    def _sweep_ids(self, state: SyncState, size: int) -> tuple[list[str], bool, list[str]]:
        """The next ``size`` contact ids after the cursor (wrapping to the first once) less the
        ones to skip, whether it wrapped, and the whole slice."""
        with self.sink.transaction() as tx:
            ids = tx.contact_ids_after(self.location_id, state.sweep_cursor, size)
            wrapped = len(ids) < size and state.sweep_cursor is not None
            if wrapped:
                state.sweep_cycle_started_at = iso_utc(self.clock())
                taken = set(ids)
                more = tx.contact_ids_after(self.location_id, None, size - len(ids))
                ids += [cid for cid in more if cid not in taken]
        # Skipped: contacts the id scan no longer found (deletion held back by the safety limit),
        # and contacts whose tasks and notes were already re-read this run because they changed.
        return [cid for cid in ids if cid not in self._unseen and cid not in self._reread], wrapped, ids

    # -- run report warnings -----------------------------------------------------------------
    def _warn_task_search_fallback(self, report: RunReport) -> None:
        """One warning when the hook read tasks per contact because the token may not use the
        location task search (it lacks ``locations/tasks.readonly``; the hook logs it once too)."""
        access = getattr(self.hook, "task_search_access", None)
        if access is not None and getattr(access, "allowed", True) is False:
            report.warnings.append(
                f"the token lacks the '{TASK_SEARCH_SCOPE}' scope, so the location task search was refused: "
                "tasks were read with one GET /contacts/{id}/tasks per contact (same result, more requests). "
                f"Add '{TASK_SEARCH_SCOPE}' to the app / Private Integration and re-authorise to use the search"
            )

    def _warn_null_columns(self, report: RunReport) -> None:
        """One warning per table naming the mapped columns that stayed NULL (or empty) for every
        record this run read, with the count of records (``report.null_columns`` per column): a
        misspelt source (``unchecked``, a dotted path's tail, ``extra_fields``) shows here, as
        does a field the location leaves empty. Automatic ``cf_`` columns are left out (sparse by
        nature), and so are custom fields the location lacks (warned about already)."""
        missing = set(self.mapping.custom_field_names) - set(self.mapping.custom_field_ids)
        for entity, table in TABLES.items():
            count = self._read[entity]
            if not count:
                continue
            empty: list[str] = []
            for column in self.mapping.tables[entity]:
                if column.name in self._filled[entity] or column.custom_field in missing:
                    continue
                report.null_columns.setdefault(table, {})[column.name] = count
                errors = report.column_errors.get(table, {}).get(column.name, 0)
                empty.append(
                    f"{column.name} ({column.label}"
                    + (f"; {errors} value(s) did not convert, see column_errors" if errors else "")
                    + ")"
                )
            if empty:
                report.warnings.append(
                    f"{table}: {len(empty)} mapped column(s) stayed NULL for all {count} record(s) read this run: "
                    f"{', '.join(empty)}. A misspelt source, or a field this location leaves empty"
                )

    # -- writing ---------------------------------------------------------------------------
    def _map(self, entity: str, records: Sequence[Mapping[str, Any]]) -> tuple[list[MappedRecord], list[Quarantined]]:
        mapped: list[MappedRecord] = []
        bad: list[Quarantined] = []
        for record in records:
            result = self.mapping.map_record(entity, record)
            (mapped if isinstance(result, MappedRecord) else bad).append(result)  # type: ignore[arg-type]
        return mapped, bad

    def _write(
        self,
        tx: SinkTransaction,
        entity: str,
        mapped: list[MappedRecord],
        bad: list[Quarantined],
        report: RunReport,
        now: datetime,
    ) -> None:
        counts = tx.upsert_records(entity, self.location_id, mapped, now)
        tx.quarantine(entity, self.location_id, [*bad, *counts.rejected], now)
        report.counts(entity).add(
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            quarantined=len(bad),
            rejected=len(counts.rejected),
        )
        self._read[entity] += len(mapped)
        self._done[entity] += len(mapped) + len(bad)
        filled = self._filled[entity]
        for record in mapped:
            filled.update(c for c, v in record.columns.items() if v is not None and v != [])
            for column, why in record.column_errors.items():
                report.column_error(entity, column, f"{record.id}: {why}")
            for column in record.cleaned:
                report.clean(entity, column)
        for item in bad:
            log.warning("quarantined %s %s: %s", TABLES[entity], item.id or "(no id)", item.reason)
        for item in counts.rejected:
            log.warning("the target refused %s %s (quarantined): %s", TABLES[entity], item.id, item.reason)

    def _tombstone_contacts(
        self,
        tx: SinkTransaction,
        ids: Sequence[str],
        now: datetime,
        report: RunReport,
        *,
        orphaned: Sequence[str] = (),
        stale: Sequence[str] = (),
    ) -> dict[str, int]:
        """Mark contacts ``ids`` deleted, with the tasks and notes of ``ids`` and ``orphaned``, and drop
        the contact quarantine entries of ``ids`` and ``stale``. Returns the deleted counts per entity
        (``contacts`` first), already added to ``report``."""
        counts = {"contacts": tx.mark_deleted("contacts", ids, now)}
        report.counts("contacts").add(deleted=counts["contacts"])
        for entity, count in tx.delete_children_of([*ids, *orphaned], now).items():
            report.counts(entity).add(deleted=count)
            counts[entity] = count
        tx.clear_quarantine("contacts", sorted(set(stale) | set(ids)))
        return counts

    def _write_children(self, tx: SinkTransaction, children: Children, report: RunReport, now: datetime) -> None:
        """Upsert the tasks and notes read for ``children.contact_ids``; tombstone the ones gone."""
        if not children.contact_ids:
            return
        for entity in CHILDREN:
            records = children.of(entity)
            mapped, bad = self._map(entity, records)
            self._write(tx, entity, mapped, bad, report, now)
            present = {str(r.get("id")) for r in records if r.get("id")}
            gone = [cid for cid in tx.live_child_ids(entity, children.contact_ids) if cid not in present]
            report.counts(entity).add(deleted=tx.mark_deleted(entity, gone, now))


def reconcile_location(
    hook: ContactsHook,
    sink: SqlSink,
    mapping: FieldMapping,
    config: SyncConfig | None = None,
    *,
    location_id: str | None = None,
) -> RunReport:
    """Run :class:`ReconcileEngine` once (convenience for scripts and tasks)."""
    return ReconcileEngine(hook, sink, mapping, config, location_id=location_id).run()
