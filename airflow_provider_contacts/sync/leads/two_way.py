"""Two-way sync of chosen fields between a lead table and HighLevel (docs/leads.md, "Two-way sync").

It composes the two one-way flows: the reconcile (HighLevel -> the target's ``ghl_contacts``,
run first) and the lead flow (:mod:`.flow`, lead table -> HighLevel, run last). In between,
:class:`TwoWaySync` reads back, for every linked lead and every column of the mapping's
``leads.two_way`` section, three values:

- ``S``: the lead's value now (normalised like every written value: e-mail lower-cased, phone E.164);
- ``H``: the contact's value now, from the reconciled ``ghl_contacts.raw_json``;
- ``W``: the value last written or agreed, kept in the link table (``written_json``).

``S != W`` means the source changed the field, ``H != W`` that HighLevel did. Echo suppression
follows: a value the provider wrote (to either side) *is* ``W``, so reading it back on the other
side is no change, and nothing bounces. Then, per field:

==============================  ===============================================================
only HighLevel changed          ``H`` is written into the lead table (``pulled``), ``W := H``
only the source changed         left to the lead flow, which sends it (``PUT``), ``W := S``
both changed, to equal values   agreed: ``W := S``
both changed, differently       a **conflict**, recorded in the report with both values and
                                both change times; the column's rule picks the winner:
                                ``newest`` (the lead's ``updated_at`` against the contact's
                                ``dateUpdated``; a missing time counts as older, a tie goes to
                                the source), ``highlevel`` or ``source``
==============================  ===============================================================

An emptied value (``None`` on one side) is no statement and never clears the other side.

Deletions (``propagate_deletions``, off by default): a contact deleted in HighLevel (its
reconciled row has ``deleted_at``) deletes its lead row; a lead gone from the table deletes its
contact (the lead flow). Both are held back when they would touch more than
``max_delete_fraction`` of the linked leads. Off, both are only marked in the link table and
counted in the report; the contact is never re-created and the lead never re-imported.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.dates import parse_datetime
from airflow_provider_contacts.sync.leads.flow import LeadsConfig, LeadsEngine, LeadsReport
from airflow_provider_contacts.sync.leads.mapping import LeadMapping
from airflow_provider_contacts.sync.leads.source import LeadLink, LeadSource, iso, utcnow
from airflow_provider_contacts.sync.leads.templates import FollowUpTemplates
from airflow_provider_contacts.sync.schema import TABLES
from airflow_provider_contacts.sync.transforms import TransformError

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_contacts.hooks.contacts import ContactsHook

__all__ = ["TwoWayConfig", "TwoWaySync", "decide"]

log = logging.getLogger(__name__)


@dataclass
class TwoWayConfig:
    """Knobs of the two-way step.

    :param propagate_deletions: delete the lead of a contact deleted in HighLevel, and (through the
        lead flow) the contact of a lead gone from the table.
    :param max_delete_fraction: refuse to delete more than this fraction of the linked leads.
    :param touch_updated_at: set the lead's ``updated_at`` column to now when a value is written back.
    """

    propagate_deletions: bool = False
    max_delete_fraction: float = 0.5
    touch_updated_at: bool = True


def _time(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if value not in (None, "") else None
    except Exception:  # noqa: BLE001 - an unreadable change time counts as unknown
        return None


def decide(rule: str, source_at: Any, highlevel_at: Any) -> str:
    """The winner (``source`` or ``highlevel``) of a conflict under ``rule``.

    ``newest``: the later change time wins; a missing time counts as older; a tie goes to the source.
    """
    if rule in ("source", "highlevel"):
        return rule
    s, h = _time(source_at), _time(highlevel_at)
    if h is None:
        return "source"
    if s is None:
        return "highlevel"
    return "highlevel" if h > s else "source"


class TwoWaySync:
    """The read-back and conflict step of the two-way sync, then the lead flow (module docstring).

    :param hook: the location's ``ContactsHook``.
    :param source: the lead source (lead table, link table).
    :param target: the reconcile target's common-sql hook (its ``ghl_contacts`` is read).
    :param target_schema: the schema of the reconcile tables (``None``: default).
    """

    def __init__(
        self,
        hook: ContactsHook,
        source: LeadSource,
        target: DbApiHook,
        mapping: LeadMapping,
        templates: FollowUpTemplates,
        leads_config: LeadsConfig | None = None,
        config: TwoWayConfig | None = None,
        *,
        target_schema: str | None = None,
        location_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.hook = hook
        self.source = source
        self.target = target
        self.target_schema = target_schema
        self.mapping = mapping
        self.templates = templates
        self.config = config or TwoWayConfig()
        self.leads_config = leads_config or LeadsConfig()
        self.leads_config.propagate_deletions = self.config.propagate_deletions
        self.leads_config.max_delete_fraction = self.config.max_delete_fraction
        self.location_id = str(location_id or hook.location_id or "")
        self.clock = clock

    def run(self, report: LeadsReport | None = None) -> LeadsReport:
        """Read back, resolve conflicts, then run the lead flow; returns the combined report."""
        started = time.monotonic()
        report = report or LeadsReport()
        report.mode = "two_way"
        report.location_id = self.location_id
        self.source.check_columns(self.mapping.lead_columns)
        self.source.ensure_link_table()
        self._read_back(report)
        report.duration_s = round(time.monotonic() - started, 3)
        engine = LeadsEngine(
            self.hook, self.source, self.mapping, self.templates, self.leads_config,
            location_id=self.location_id, clock=self.clock,
        )
        return engine.run(report)

    # -- reading the reconciled contacts -----------------------------------------------------------
    def _contacts(self, contact_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], Any]]:
        """``contact id -> (raw API record, deleted_at)`` of the reconciled rows."""
        table = TABLES["contacts"] if not self.target_schema else f"{self.target_schema}.{TABLES['contacts']}"
        mark = str(self.target.placeholder)
        out: dict[str, tuple[dict[str, Any], Any]] = {}
        conn = self._target_conn
        cur = conn.cursor()
        try:
            for start in range(0, len(contact_ids), 500):
                chunk = list(contact_ids[start : start + 500])
                cur.execute(
                    f"SELECT id, raw_json, deleted_at FROM {table} WHERE location_id = {mark} AND id IN ({', '.join([mark] * len(chunk))})",
                    (self.location_id, *chunk),
                )
                for cid, raw, deleted in cur.fetchall():
                    record = raw if isinstance(raw, dict) else json.loads(raw or "{}")
                    out[str(cid)] = (record, deleted)
            conn.commit()
        finally:
            cur.close()
        return out

    def _read_back(self, report: LeadsReport) -> None:
        rules = self.mapping.section.two_way
        self._target_conn = self.target.get_conn()
        try:
            deletions: list[tuple[LeadLink, Any]] = []
            for leads, links in self._pages():
                contacts = self._contacts([l.contact_id for l in links.values()])
                now = self.clock()
                with self.source.transaction() as cur:
                    for lead in leads:
                        link = links.get(lead.lead_id)
                        if link is None or link.contact_deleted_at is not None:
                            continue
                        got = contacts.get(link.contact_id)
                        if got is None:
                            continue  # not reconciled yet (created after the last reconcile)
                        record, deleted_at = got
                        if deleted_at is not None:
                            deletions.append((link, lead.key_value))
                            continue
                        if lead.errors or not rules:
                            continue
                        self._fields(cur, lead, link, record, rules, report, now)
            self._deleted_contacts(deletions, report)
        finally:
            self._target_conn.close()

    def _pages(self):  # type: ignore[no-untyped-def]
        for rows in self.source.iter_lead_pages(self.mapping.lead_columns, self.leads_config.page_size):
            leads = [self.mapping.map_lead(row) for row in rows]
            links = self.source.links(self.location_id, [lead.lead_id for lead in leads if lead.lead_id])
            yield leads, links

    def _fields(
        self, cur: Any, lead: Any, link: LeadLink, record: Mapping[str, Any], rules: Mapping[str, str],
        report: LeadsReport, now: datetime,
    ) -> None:
        """Compare ``S``, ``H`` and ``W`` for every two-way column of one lead; write back and
        record what was decided (in ``cur``'s transaction)."""
        pull: dict[str, Any] = {}
        agreed: dict[str, Any] = {}
        for column, rule in rules.items():
            spec = self.mapping.column_spec(column)
            name = spec.sources[0]
            s_value = lead.values.get(name)
            try:
                h_value = self.mapping.normalise(spec, record.get(name))
            except (TransformError, ValueError, TypeError):
                h_value = record.get(name) if isinstance(record.get(name), str) else None
            w_value = link.written.get(name)
            s_changed = s_value is not None and s_value != w_value
            h_changed = h_value is not None and h_value != w_value
            if not h_changed:
                continue  # nothing new from HighLevel (the lead flow sends a source change)
            if not s_changed:
                pull[column] = h_value
                continue
            if s_value == h_value:
                agreed[name] = s_value
                continue
            winner = decide(rule, lead.updated_at, record.get("dateUpdated"))
            report.conflicts.append(
                {
                    "lead_id": lead.lead_id,
                    "contact_id": link.contact_id,
                    "column": column,
                    "field": name,
                    "source_value": s_value,
                    "highlevel_value": h_value,
                    "last_written": w_value,
                    "source_changed_at": iso(lead.updated_at),
                    "highlevel_changed_at": iso(record.get("dateUpdated")),
                    "rule": rule,
                    "winner": winner,
                }
            )
            log.info(
                "conflict on lead %s %s: source %r vs HighLevel %r -> %s wins (%s)",
                lead.lead_id, column, s_value, h_value, winner, rule,
            )
            if winner == "highlevel":
                pull[column] = h_value
        if not pull and not agreed:
            return
        if pull:
            values = dict(pull)
            updated_at = self.mapping.section.updated_at
            if self.config.touch_updated_at and updated_at:
                values[updated_at] = now.isoformat() if self.source.dialect_name == "sqlite" else now
            self.source.update_lead(cur, lead.key_value, values)
            for column, value in pull.items():
                name = self.mapping.field_of(column)
                link.written[name] = value
                lead.values[name] = value
                report.count("pulled", column)
            if self.config.touch_updated_at and updated_at:
                link.lead_updated_at = iso(now)
        link.written.update(agreed)
        link.contact_updated_at = iso(record.get("dateUpdated")) or link.contact_updated_at
        link.synced_at = now
        self.source.save_link(cur, link)

    def _deleted_contacts(self, deletions: list[tuple[LeadLink, Any]], report: LeadsReport) -> None:
        """Contacts deleted in HighLevel: mark their links; with ``propagate_deletions`` delete their leads."""
        if not deletions:
            return
        linked_total = sum(1 for link in self.source.all_links(self.location_id) if link.lead_deleted_at is None)
        delete = self.config.propagate_deletions
        if delete and len(deletions) > self.config.max_delete_fraction * linked_total and linked_total >= 10:
            report.warnings.append(
                f"{len(deletions)} of {linked_total} linked contacts are deleted in HighLevel, more than "
                f"max_delete_fraction={self.config.max_delete_fraction}; no lead deleted. If this is real, run again "
                "with a higher max_delete_fraction"
            )
            delete = False
        now = self.clock()
        with self.source.transaction() as cur:
            for link, key_value in deletions:
                link.contact_deleted_at = now
                report.contact_deleted += 1
                if delete:
                    report.leads_deleted += self.source.delete_lead(cur, key_value)
                    link.lead_deleted_at = now
                self.source.save_link(cur, link)
