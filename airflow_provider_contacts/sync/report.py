"""The run report: what one reconciliation run did, per table, and what it cost.

A :class:`RunReport` is small (counts and a few strings) so it can go to XCom and into asset
event extras; :meth:`RunReport.to_dict` is its JSON form and :meth:`RunReport.format_table`
the log form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_contacts.sync.mapping import TABLES

__all__ = ["RunReport", "SweepReport", "TableCounts", "merge_reports"]

_COUNT_NAMES = ("inserted", "updated", "unchanged", "deleted", "quarantined")


@dataclass
class TableCounts:
    """Rows of one table by outcome. ``unchanged`` rows were read but had the same content hash."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0

    def add(self, **counts: int) -> None:
        """Add to any of the counters by name."""
        for name, value in counts.items():
            setattr(self, name, getattr(self, name) + int(value))

    @property
    def changed(self) -> int:
        """Rows written: inserted + updated + deleted."""
        return self.inserted + self.updated + self.deleted


@dataclass
class SweepReport:
    """The rolling task/note sweep of one run.

    ``contacts``: contacts whose tasks and notes were re-read by the sweep; ``target``: how many it
    aimed for (location size / runs per sweep period); ``budget_limited``: the request budget cut it
    short; ``wrapped``: the cursor went past the last contact and started over; ``cursor``: the last
    contact id covered (the next run starts after it); ``skipped``: contacts of the slice left out
    because this run had already re-read them (they changed) or the id scan no longer found them.
    """

    contacts: int = 0
    skipped: int = 0
    target: int = 0
    budget_limited: bool = False
    wrapped: bool = False
    cursor: str | None = None


@dataclass
class RunReport:
    """Outcome of one location's run (see the module docstring).

    ``mode`` is ``full`` (first load or ``full_sweep``) or ``incremental``. ``requests`` counts
    HTTP requests to HighLevel (retries included), ``throttled`` the 429 answers among them,
    ``duration_s`` is wall time in seconds. Watermarks are ISO-8601 UTC ``dateUpdated`` values.
    """

    location_id: str
    target: str
    mode: str = "incremental"
    tables: dict[str, TableCounts] = field(default_factory=lambda: {t: TableCounts() for t in TABLES.values()})
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    duration_s: float = 0.0
    watermark_before: str | None = None
    watermark_after: str | None = None
    contacts_scanned: int = 0
    sweep: SweepReport = field(default_factory=SweepReport)
    warnings: list[str] = field(default_factory=list)

    def counts(self, entity: str) -> TableCounts:
        """Counters of ``entity`` (``contacts``, ``tasks``, ``notes``) or of a table name."""
        return self.tables[TABLES.get(entity, entity)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for XCom and asset event extras)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["tables"] = {k: TableCounts(**v) for k, v in data.get("tables", {}).items()}
        data["sweep"] = SweepReport(**data.get("sweep", {}))
        return cls(**data)

    def format_table(self) -> str:
        """Human-readable multi-line summary for logs and the demo."""
        head = f"{'table':<14}" + "".join(f"{n:>12}" for n in _COUNT_NAMES)
        lines = [
            f"location {self.location_id} -> {self.target} ({self.mode} run, {self.duration_s:.1f} s)",
            head,
            "-" * len(head),
        ]
        for table, counts in self.tables.items():
            lines.append(f"{table:<14}" + "".join(f"{getattr(counts, n):>12}" for n in _COUNT_NAMES))
        lines.append(
            f"requests: {self.requests} (429s: {self.throttled}, retries: {self.retries}); "
            f"contacts scanned for deletions: {self.contacts_scanned}"
        )
        lines.append(f"watermark (dateUpdated): {self.watermark_before} -> {self.watermark_after}")
        sw = self.sweep
        lines.append(
            f"task/note sweep: {sw.contacts}/{sw.target} contacts"
            + (f" ({sw.skipped} already re-read or gone)" if sw.skipped else "")
            + (" (request budget reached)" if sw.budget_limited else "")
            + (" (wrapped to the start)" if sw.wrapped else "")
            + f", cursor {sw.cursor}"
        )
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Sum the per-table counters of several locations' report dicts."""
    totals: dict[str, dict[str, int]] = {t: dict.fromkeys(_COUNT_NAMES, 0) for t in TABLES.values()}
    for report in reports:
        for table, counts in report.get("tables", {}).items():
            for name in _COUNT_NAMES:
                totals.setdefault(table, dict.fromkeys(_COUNT_NAMES, 0))[name] += int(counts.get(name, 0))
    return totals
