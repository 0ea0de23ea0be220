"""Leads into HighLevel: a table of leads in a SQL system -> one contact each, follow-up tasks and a
note for new leads, changed fields only for changed leads (docs/leads.md).

One run, for one location (:class:`LeadsEngine`):

1. The lead table's columns are checked against the mapping, the link table is created when
   missing, custom field references (if the mapping has any) are resolved with one request.
2. Leads are read in key order, a page at a time. Each is mapped (:class:`~.mapping.LeadMapping`):
   a lead that cannot be written (a phone that is not a number, an email that is not one, neither
   email nor phone, the same email/phone as another new lead of the run) is reported with the
   column, the value, the problem and the fix, and the other leads go on.
3. **Linked** leads (a row in ``ghl_lead_links``): the mapped values are compared with the values
   last written (kept in the link row); only the fields that differ are sent
   (``PUT /contacts/{id}``), managed tags (the lifecycle stage's) by ``add-tags`` /
   ``remove-tags`` so tags set in HighLevel stay. A lead whose values equal the last written ones
   costs no request.
4. **New** leads: one duplicate look-up (``GET /contacts/search/duplicate`` with the email and the
   E.164 phone: HighLevel matches email first, then phone; emails are compared lower-cased). A
   match is adopted (the fields that differ are updated); otherwise the contact is created
   (``POST /contacts/``, sent exactly once by the hook: after a lost answer it looks the contact
   up before resending). The link row commits right after, before the follow-up work.
5. **Follow-up** of new leads: the template's tasks (due in N business days) and a note from the
   lead's notes column; then ``onboarded_at`` commits. A contact that was adopted (matched, or the
   link was made by a run that stopped before its follow-up) first lists its tasks and notes and
   only creates the ones missing (by title / note body), so reruns, retries and faults never make
   a second task or note.
6. Leads gone from the table: their link is marked (``lead_deleted_at``); with
   ``propagate_deletions`` the contact is deleted too (at most ``max_delete_fraction`` of the
   linked leads per run).

Exactly once, end to end: a contact is only created after a look-up found none, the hook never
resends a create blindly, the link commits before anything else is done for the lead, and a rerun
finds an unlinked contact through the duplicate look-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLDailyLimitError,
    GHLNotFoundError,
    GHLRateLimitError,
    GHLValidationError,
)
from airflow_provider_contacts.sync.custom_fields import resolve_reference
from airflow_provider_contacts.sync.leads.mapping import UPDATABLE_FIELDS, LeadError, LeadMapping, MappedLead
from airflow_provider_contacts.sync.leads.source import LeadLink, LeadSource, iso, utcnow
from airflow_provider_contacts.sync.leads.templates import FollowUpTemplates
from airflow_provider_contacts.sync.progress import hook_stat as _stat
from airflow_provider_contacts.sync.transforms import TransformError

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import ContactsHook

__all__ = ["LeadsConfig", "LeadsEngine", "LeadsReport", "LeadsRunError", "diff_values"]

log = logging.getLogger(__name__)
_MAX_LISTED = 100


class LeadsRunError(RuntimeError):
    """Some leads could not be written because of API failures (after the hook's retries); the
    others were written. Rerunning is safe (nothing is created twice)."""


@dataclass
class LeadsConfig:
    """Knobs of a lead run.

    :param page_size: leads read and committed per page.
    :param max_workers: leads of a page handled in parallel (under the hook's shared rate limiter).
    :param follow_up: create the template's tasks and the note for new leads.
    :param propagate_deletions: delete the contact of a lead that left the table.
    :param max_delete_fraction: refuse to delete more than this fraction of the linked leads.
    :param adopt_tasks_check: list an adopted contact's tasks and notes before the follow-up.
    """

    page_size: int = 200
    max_workers: int = 4
    follow_up: bool = True
    propagate_deletions: bool = False
    max_delete_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.max_workers < 1:
            raise ValueError("page_size and max_workers must be >= 1")
        if not 0 <= self.max_delete_fraction <= 1:
            raise ValueError("max_delete_fraction must be between 0 and 1")


@dataclass
class LeadsReport:
    """What a lead run (or a two-way run) did, and what it cost. Small: goes to XCom.

    Counts: ``leads`` read, ``created`` contacts, ``matched`` (a new lead adopted an existing
    contact through the duplicate look-up), ``updated`` (changed fields sent), ``unchanged``,
    ``bad`` (not written: see ``errors``), ``failed`` (API failures after retries: see
    ``failures``), ``contact_deleted`` (the contact is gone from HighLevel; not re-created),
    ``leads_gone`` (linked leads no longer in the table), ``contacts_deleted`` (deleted in
    HighLevel because their lead left, with ``propagate_deletions``), ``tasks_created``,
    ``notes_created``, ``tags_added``, ``tags_removed``, ``fields_written`` (per HighLevel field),
    ``not_updatable`` (changed fields that ``PUT /contacts/{id}`` cannot change, per field).
    Two-way: ``pulled`` (values written back to the lead table, per column), ``conflicts`` (each
    with both values, both change times, the rule and the winner), ``leads_deleted``.
    """

    location_id: str = ""
    mode: str = "leads"
    source: str = ""
    leads: int = 0
    created: int = 0
    matched: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    failed: int = 0
    contact_deleted: int = 0
    leads_gone: int = 0
    contacts_deleted: int = 0
    leads_deleted: int = 0
    tasks_created: int = 0
    notes_created: int = 0
    tags_added: int = 0
    tags_removed: int = 0
    fields_written: dict[str, int] = field(default_factory=dict)
    not_updatable: dict[str, int] = field(default_factory=dict)
    pulled: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    duration_s: float = 0.0
    reconcile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (XCom, logs)."""
        return asdict(self)

    def add_error(self, error: LeadError) -> None:
        """Count a bad lead and keep its description (the first 100)."""
        self.bad += 1
        if len(self.errors) < _MAX_LISTED:
            self.errors.append(error.to_dict())
        log.warning("lead not written: %s", error)

    def add_failure(self, lead_id: str, exc: BaseException) -> None:
        """Count a lead that failed on an API error."""
        self.failed += 1
        message = getattr(exc, "message", None) or str(exc)
        if len(self.failures) < _MAX_LISTED:
            self.failures.append({"lead_id": lead_id, "error": f"{type(exc).__name__}: {str(message)[:300]}"})
        log.warning("lead %s failed: %s: %s", lead_id, type(exc).__name__, message)

    def count(self, name: str, key: str, n: int = 1) -> None:
        """Add ``n`` to the per-key counter ``name`` (``fields_written``, ``pulled`` ...)."""
        bucket = getattr(self, name)
        bucket[key] = bucket.get(key, 0) + n

    def format_table(self) -> str:
        """The report as log lines."""
        lines = [
            f"location {self.location_id} <- {self.source} ({self.mode} run, {self.duration_s:.1f} s)",
            f"leads read {self.leads}: created {self.created}, matched to existing contacts {self.matched}, "
            f"updated {self.updated}, unchanged {self.unchanged}, not written (bad) {self.bad}, failed {self.failed}",
            f"follow-up: tasks {self.tasks_created}, notes {self.notes_created}; tags added {self.tags_added}, "
            f"removed {self.tags_removed}",
            f"fields written: {self.fields_written or '-'}",
        ]
        if self.pulled or self.mode == "two_way":
            lines.append(f"values read back into the lead table: {self.pulled or '-'}")
        if self.conflicts:
            lines.append(f"conflicts ({len(self.conflicts)}):")
            for c in self.conflicts[:20]:
                lines.append(
                    f"  lead {c['lead_id']} {c['column']}: source {c['source_value']!r} ({c['source_changed_at']}) vs "
                    f"HighLevel {c['highlevel_value']!r} ({c['highlevel_changed_at']}) -> rule {c['rule']}: {c['winner']} wins"
                )
        if self.contact_deleted or self.leads_gone or self.contacts_deleted or self.leads_deleted:
            lines.append(
                f"deletions: contacts gone from HighLevel {self.contact_deleted}, leads gone from the table {self.leads_gone}, "
                f"contacts deleted {self.contacts_deleted}, leads deleted {self.leads_deleted}"
            )
        if self.not_updatable:
            lines.append(f"changed but not updatable through update-contact: {self.not_updatable}")
        for e in self.errors[:20]:
            lines.append(f"  bad lead {e['lead_id']}: column {e['column']} ({e['value']!r}): {e['problem']}; fix: {e['fix']}")
        for f in self.failures[:20]:
            lines.append(f"  failed lead {f['lead_id']}: {f['error']}")
        lines.append(f"requests: {self.requests} (429s: {self.throttled}, retries: {self.retries})")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def diff_values(desired: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``desired`` whose value differs from ``base`` (a ``None`` in ``desired`` is
    no value: it never clears a field)."""
    out: dict[str, Any] = {}
    for key, value in desired.items():
        if value is None:
            continue
        old = base.get(key)
        if key == "tags":
            if sorted(value or []) != sorted(old or []):
                out[key] = value
        elif old != value:
            out[key] = value
    return out


@dataclass
class _Outcome:
    lead: MappedLead
    link: LeadLink | None = None
    kind: str = "unchanged"  # created | matched | updated | unchanged | bad | failed | contact_deleted | skipped
    check: bool = False  # list tasks/notes before the follow-up
    error: LeadError | None = None
    failure: BaseException | None = None
    written: dict[str, int] = field(default_factory=dict)
    not_updatable: list[str] = field(default_factory=list)
    tags_added: int = 0
    tags_removed: int = 0


class LeadsEngine:
    """One location's lead run (see the module docstring).

    :param hook: a ``ContactsHook`` of the location.
    :param source: the lead source (lead table and link table).
    :param mapping: the leads mapping.
    :param templates: the follow-up task templates.
    :param config: run settings.
    :param clock: "now" (aware UTC); tests may fix it.
    """

    def __init__(
        self,
        hook: ContactsHook,
        source: LeadSource,
        mapping: LeadMapping,
        templates: FollowUpTemplates,
        config: LeadsConfig | None = None,
        *,
        location_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.hook = hook
        self.source = source
        self.mapping = mapping
        self.templates = templates
        self.config = config or LeadsConfig()
        self.location_id = str(location_id or hook.location_id or "")
        if not self.location_id:
            raise GHLConfigError("no location id: set extra 'location_id' on the connection or pass location_id")
        self.clock = clock
        self._custom_ids: dict[str, str] = {}
        self._contact_leads: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- the run ---------------------------------------------------------------------------------
    def prepare(self, report: LeadsReport) -> None:
        """Check the lead table, create the link table, resolve custom fields (once per run)."""
        self.source.check_columns(self.mapping.lead_columns)
        self.source.ensure_link_table()
        refs = self.mapping.custom_field_refs
        if refs:
            fields = [f.model_dump() for f in self.hook.get_custom_fields(model="contact")]
            for ref in refs:
                fid = resolve_reference(ref, fields)
                if fid is None:
                    report.warnings.append(
                        f"custom field {ref!r} of the leads mapping does not exist in location {self.location_id}: its "
                        f"values are not written (create the field, or remove it from the mapping; fields: "
                        f"{sorted(str(f.get('name')) for f in fields)[:30]})"
                    )
                else:
                    self._custom_ids[ref] = fid
        self._contact_leads = {
            link.contact_id: link.lead_id for link in self.source.all_links(self.location_id) if link.lead_deleted_at is None
        }

    def run(self, report: LeadsReport | None = None) -> LeadsReport:
        """One lead run; returns the report (also logged)."""
        started = time.monotonic()
        base = {name: _stat(self.hook, name) for name in ("requests", "throttled", "retries")}
        report = report or LeadsReport()
        report.location_id = self.location_id
        report.source = f"{self.source.table_name} ({self.source.dialect_name})"
        self.prepare(report)
        seen: set[str] = set()
        claimed: dict[str, str] = {}  # email / phone of new leads this run -> lead id
        with ThreadPoolExecutor(max_workers=self.config.max_workers, thread_name_prefix="ghl-leads") as pool:
            for page in self.source.iter_lead_pages(self.mapping.lead_columns, self.config.page_size):
                self._page(page, report, seen, claimed, pool)
        self._gone(seen, report)
        report.requests += _stat(self.hook, "requests") - base["requests"]
        report.throttled += _stat(self.hook, "throttled") - base["throttled"]
        report.retries += _stat(self.hook, "retries") - base["retries"]
        report.duration_s = round(report.duration_s + time.monotonic() - started, 3)
        log.info("leads report\n%s", report.format_table())
        return report

    def _page(
        self, rows: list[dict[str, Any]], report: LeadsReport, seen: set[str], claimed: dict[str, str], pool: ThreadPoolExecutor
    ) -> None:
        leads = [self.mapping.map_lead(row) for row in rows]
        report.leads += len(leads)
        links = self.source.links(self.location_id, [lead.lead_id for lead in leads if lead.lead_id])
        work: list[tuple[MappedLead, LeadLink | None]] = []
        for lead in leads:
            if lead.lead_id:
                seen.add(lead.lead_id)
            if lead.errors:
                for error in lead.errors:
                    report.add_error(error)
                report.bad += 1 - len(lead.errors)  # one bad lead, however many problems
                continue
            link = links.get(lead.lead_id)
            if link is None:
                clash = self._claim(lead, claimed)
                if clash is not None:
                    report.add_error(clash)
                    continue
            work.append((lead, link))
        outcomes = list(pool.map(lambda item: self._contact_step(*item), work))
        now = self.clock()
        with self.source.transaction() as cur:
            for outcome in outcomes:
                self._account(outcome, report)
                link = outcome.link
                if link is None or outcome.kind in ("bad", "failed"):
                    continue
                if outcome.kind in ("created", "matched", "updated", "contact_deleted") or link.lead_deleted_at is not None:
                    link.lead_deleted_at = None  # a lead back in the table is linked again
                    self.source.save_link(cur, link)
        if not self.config.follow_up:
            return
        pending = [o for o in outcomes if o.link is not None and o.link.onboarded_at is None and o.kind not in ("bad", "failed", "contact_deleted", "skipped")]
        if not pending:
            return
        done = list(pool.map(self._follow_up, pending))
        with self.source.transaction() as cur:
            for outcome, result in zip(pending, done):
                if isinstance(result, BaseException):
                    report.add_failure(outcome.lead.lead_id, result)
                    continue
                tasks, notes = result
                report.tasks_created += tasks
                report.notes_created += notes
                outcome.link.onboarded_at = now  # type: ignore[union-attr]
                self.source.save_link(cur, outcome.link)  # type: ignore[arg-type]

    def _claim(self, lead: MappedLead, claimed: dict[str, str]) -> LeadError | None:
        """Refuse a new lead whose email or phone another new lead of this run has (they would be
        one HighLevel contact)."""
        for column_field in ("email", "phone"):
            value = lead.values.get(column_field)
            if not value:
                continue
            other = claimed.get(f"{column_field}:{value}")
            if other is not None and other != lead.lead_id:
                column = next((c.name for c in self.mapping.columns if c.sources == (column_field,)), column_field)
                return LeadError(
                    lead.lead_id, column, value,
                    f"lead {other} has the same {column_field} ({value}); HighLevel keeps one contact per {column_field}",
                    f"merge the two leads, or correct the {column_field} of one of them",
                )
        for column_field in ("email", "phone"):
            value = lead.values.get(column_field)
            if value:
                claimed[f"{column_field}:{value}"] = lead.lead_id
        return None

    def _account(self, outcome: _Outcome, report: LeadsReport) -> None:
        if outcome.kind == "bad" and outcome.error is not None:
            report.add_error(outcome.error)
            return
        if outcome.kind == "failed" and outcome.failure is not None:
            report.add_failure(outcome.lead.lead_id, outcome.failure)
            return
        if outcome.kind in ("created", "matched", "updated", "unchanged", "contact_deleted"):
            setattr(report, outcome.kind, getattr(report, outcome.kind) + 1)
        for name, n in outcome.written.items():
            report.count("fields_written", name, n)
        for name in outcome.not_updatable:
            report.count("not_updatable", name)
        report.tags_added += outcome.tags_added
        report.tags_removed += outcome.tags_removed

    # -- one lead: the contact -----------------------------------------------------------------
    def _contact_step(self, lead: MappedLead, link: LeadLink | None) -> _Outcome:
        try:
            if link is not None:
                return self._update_linked(lead, link)
            return self._link_new(lead)
        except (GHLAuthError, GHLDailyLimitError, GHLConfigError):
            raise  # every lead would fail the same way: fail the run now
        except GHLNotFoundError as exc:
            return _Outcome(lead, kind="failed", failure=exc)
        except GHLAPIError as exc:
            status = int(getattr(exc, "status", None) or 0)
            refused = 400 <= status < 500 and not isinstance(exc, GHLRateLimitError)
            if isinstance(exc, GHLValidationError) or refused:  # the lead's data, not the service
                return _Outcome(lead, kind="bad", error=self._api_refusal(lead, exc))
            return _Outcome(lead, kind="failed", failure=exc)
        except Exception as exc:  # noqa: BLE001 - one lead never stops the others
            return _Outcome(lead, kind="failed", failure=exc)

    def _api_refusal(self, lead: MappedLead, exc: GHLAPIError) -> LeadError:
        message = str(getattr(exc, "message", None) or exc)
        column = next((c.name for c in self.mapping.columns if c.sources and c.sources[0] in message), "(row)")
        return LeadError(
            lead.lead_id, column, lead.row.get(column) if column != "(row)" else None,
            f"HighLevel refused the lead: {message[:300]}", "correct the value HighLevel names, then rerun",
        )

    def _update_linked(self, lead: MappedLead, link: LeadLink) -> _Outcome:
        outcome = _Outcome(lead, link=link, check=True)
        if link.contact_deleted_at is not None:
            outcome.kind = "skipped"
            return outcome
        changed = diff_values(lead.values, link.written)
        link.lead_updated_at = iso(lead.updated_at) or link.lead_updated_at
        if not changed:
            outcome.kind = "unchanged"
            return outcome
        try:
            written, contact = self._apply(link.contact_id, changed, link.written, outcome)
        except GHLNotFoundError:
            outcome.kind = "contact_deleted"
            link.contact_deleted_at = self.clock()
            log.warning(
                "contact %s of lead %s was deleted in HighLevel: not re-created (delete the link row %s to create it again)",
                link.contact_id, lead.lead_id, link.key,
            )
            return outcome
        link.written = {**link.written, **written}
        link.synced_at = self.clock()
        if contact is not None:
            link.contact_updated_at = iso(getattr(contact, "dateUpdated", None)) or link.contact_updated_at
        outcome.kind = "updated" if written else "unchanged"
        return outcome

    def _link_new(self, lead: MappedLead) -> _Outcome:
        found = self.hook.get_duplicate_contact(email=lead.email or None, number=lead.phone or None)
        outcome = _Outcome(lead)
        now = self.clock()
        if found is not None:
            with self._lock:
                other = self._contact_leads.get(found.id)
            if other is not None and other != lead.lead_id:
                column = "email" if lead.email and (found.email or "").lower() == lead.email else "phone"
                column = next((c.name for c in self.mapping.columns if c.sources == (column,)), column)
                outcome.kind = "bad"
                outcome.error = LeadError(
                    lead.lead_id, column, lead.values.get("email" if "mail" in column else "phone"),
                    f"HighLevel contact {found.id} (the duplicate match) is already linked to lead {other}",
                    "merge the two leads, or correct the email/phone of one of them",
                )
                return outcome
            current = self._contact_values(found)
            changed = diff_values(lead.values, current)
            if "tags" in changed:  # add the managed tags the contact lacks; remove none of its own
                missing = sorted(set(changed["tags"]) - set(current.get("tags") or []))
                changed["tags"] = sorted(set(current.get("tags") or []) | set(missing))
            written, contact = self._apply(found.id, changed, current, outcome) if changed else ({}, found)
            contact_id = found.id
            outcome.kind = "matched"
            outcome.check = True
            # What HighLevel now holds for the fields the lead manages (a field update-contact
            # cannot change keeps HighLevel's value, so it shows as changed again next run).
            values = {k: current[k] for k in lead.values if k in current}
            values.update(written)
            if "tags" in lead.values:
                values["tags"] = lead.values["tags"]
        else:
            body = self._create_body(lead.values)
            contact = self.hook.create_contact(body)
            contact_id = contact.id
            outcome.kind = "created"
            outcome.check = False
            values = dict(lead.values)
            for name in lead.values:
                outcome.written[name] = outcome.written.get(name, 0) + 1
        with self._lock:
            self._contact_leads[contact_id] = lead.lead_id
        outcome.link = LeadLink(
            location_id=self.location_id,
            lead_id=lead.lead_id,
            contact_id=contact_id,
            written=values,
            lead_updated_at=iso(lead.updated_at),
            contact_updated_at=iso(getattr(contact, "dateUpdated", None)),
            created_at=now,
            synced_at=now,
        )
        return outcome

    def _contact_values(self, contact: Any) -> dict[str, Any]:
        """A HighLevel contact's values in the mapping's terms (normalised like a lead's)."""
        data = contact.model_dump() if hasattr(contact, "model_dump") else dict(contact)
        return contact_values(self.mapping, data, self._custom_ids)

    def _create_body(self, values: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        custom: list[dict[str, Any]] = []
        for name, value in values.items():
            if name.startswith("cf:"):
                fid = self._custom_ids.get(name[3:])
                if fid is not None:
                    custom.append({"id": fid, "field_value": value})
            elif name == "tags":
                if value:
                    body["tags"] = list(value)
            else:
                body[name] = value
        if custom:
            body["customFields"] = custom
        return body

    def _apply(
        self, contact_id: str, changed: Mapping[str, Any], old: Mapping[str, Any], outcome: _Outcome
    ) -> tuple[dict[str, Any], Any]:
        """Send the changed values: a ``PUT`` with the updatable fields and custom fields, then the
        managed tags' difference. Returns the values written and the contact (or ``None``)."""
        body: dict[str, Any] = {}
        custom: list[dict[str, Any]] = []
        written: dict[str, Any] = {}
        for name, value in changed.items():
            if name == "tags":
                continue
            if name.startswith("cf:"):
                fid = self._custom_ids.get(name[3:])
                if fid is not None:
                    custom.append({"id": fid, "field_value": value})
                    written[name] = value
            elif name in UPDATABLE_FIELDS:
                body[name] = value
                written[name] = value
            else:
                outcome.not_updatable.append(name)
        if custom:
            body["customFields"] = custom
        contact = self.hook.update_contact(contact_id, body) if body else None
        if "tags" in changed:
            new, before = set(changed["tags"] or []), set(old.get("tags") or [])
            add, remove = sorted(new - before), sorted(before - new)
            if remove:
                self.hook.remove_tags(contact_id, remove)
                outcome.tags_removed += len(remove)
            if add:
                self.hook.add_tags(contact_id, add)
                outcome.tags_added += len(add)
            written["tags"] = sorted(new)
        for name in written:
            outcome.written[name] = outcome.written.get(name, 0) + 1
        return written, contact

    # -- one lead: the follow-up ---------------------------------------------------------------
    def _follow_up(self, outcome: _Outcome) -> tuple[int, int] | BaseException:
        """The template's tasks and the note of one new lead; with ``outcome.check`` only those
        the contact does not have yet. Returns (tasks, notes) created, or the exception."""
        link = outcome.link
        assert link is not None
        lead = outcome.lead
        try:
            now = self.clock()
            bodies = [t.task_body(lead.row, now) for t in self.templates.tasks]
            note = lead.note
            # The contact's task ids before our creates: a contact this run created has none of
            # ours, an adopted one is listed once (titles already there are not created again).
            known: list[str] = []
            if outcome.check:
                if bodies:
                    existing = self.hook.list_tasks(link.contact_id)
                    known = [t.id for t in existing]
                    titles = {t.title for t in existing}
                    bodies = [b for b in bodies if b["title"] not in titles]
                if note:
                    if any((n.body or "").strip() == note for n in self.hook.list_notes(link.contact_id)):
                        note = None
            for body in bodies:
                task = self.hook.create_task(link.contact_id, body, known_task_ids=known)
                known.append(task.id)
            if note:
                payload = {"body": note}
                if self.templates.note_title:
                    payload["title"] = self.templates.note_title
                self.hook.create_note(link.contact_id, payload)
            return len(bodies), 1 if note else 0
        except (GHLAuthError, GHLDailyLimitError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported; the next run finishes the follow-up
            return exc

    # -- leads gone from the table -------------------------------------------------------------
    def _gone(self, seen: set[str], report: LeadsReport) -> None:
        all_links = list(self.source.all_links(self.location_id))
        links = [l for l in all_links if l.lead_id not in seen and l.lead_deleted_at is None]
        if not links:
            return
        report.leads_gone += len(links)
        total = len(all_links)
        delete = self.config.propagate_deletions
        if delete and len(links) > self.config.max_delete_fraction * total and total >= 10:
            report.warnings.append(
                f"{len(links)} of {total} linked leads are gone from the lead table, more than max_delete_fraction="
                f"{self.config.max_delete_fraction}; no contact deleted. If this is real, run again with a higher max_delete_fraction"
            )
            delete = False
        now = self.clock()
        for link in links:
            if delete and link.contact_deleted_at is None:
                try:
                    self.hook.delete_contact(link.contact_id, missing_ok=True)
                    report.contacts_deleted += 1
                    link.contact_deleted_at = now
                except GHLAPIError as exc:
                    report.add_failure(link.lead_id, exc)
                    continue
            link.lead_deleted_at = now
            with self.source.transaction() as cur:
                self.source.save_link(cur, link)


def contact_values(mapping: LeadMapping, data: Mapping[str, Any], custom_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A HighLevel contact (API dict) in the leads mapping's terms: field -> normalised value,
    ``tags`` lower-cased and sorted, ``cf:<ref>`` for resolved custom fields. Values that do not
    normalise are left out."""
    out: dict[str, Any] = {}
    for spec in mapping.columns:
        if not spec.sources:
            continue
        name = spec.sources[0]
        raw = data.get(name)
        if name == "tags":
            continue
        try:
            value = mapping.normalise(spec, raw)
        except (TransformError, ValueError, TypeError):
            value = raw if isinstance(raw, str) else None
        if value is not None:
            out[name] = value
    out["tags"] = sorted({str(t).strip().lower() for t in data.get("tags") or [] if str(t).strip()})
    by_id = {v: k for k, v in (custom_ids or {}).items()}
    for item in data.get("customFields") or []:
        if isinstance(item, Mapping) and item.get("id") in by_id:
            value = item.get("value", item.get("fieldValue", item.get("field_value")))
            if value is not None:
                out[f"cf:{by_id[item['id']]}"] = value
    return out

