"""The run report: what one reconciliation run did, per table, and what it cost.

A :class:`RunReport` holds counts and texts (warnings, examples, custom field lists) whose size
grows with what the location holds; :meth:`RunReport.to_dict` is its JSON form (kept in the
target's ``ghl_sync_state`` as ``last_run``) and :meth:`RunReport.format_table` the log form.

What goes to Airflow is bounded whatever the data: :func:`report_rows` is the run as a small
table (one flat row per table: what the reconcile task returns to XCom, 3 rows of scalars per
location), :func:`summarize_rows` sums such rows per table (the asset event ``extra`` of each
table and the ``publish_report`` summary).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from airflow_provider_contacts.sync.schema import TABLES

__all__ = [
    "REPORT_ROW_FIELDS",
    "CustomFieldsReport",
    "RunReport",
    "SweepReport",
    "TableCounts",
    "report_rows",
    "summarize_rows",
]

_COUNT_NAMES = ("inserted", "updated", "unchanged", "deleted", "quarantined", "rejected")
_EXAMPLE_CHARS = 300


@dataclass
class TableCounts:
    """Rows of one table by outcome.

    ``unchanged`` rows were read but had the same content hash. ``quarantined``: records the
    mapping set aside (no id / ``contactId``, a required column empty or unconvertible);
    ``rejected``: records the target database refused to store (written to the quarantine table
    with the database's message). Both leave the record's target row as it was.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    rejected: int = 0

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
class CustomFieldsReport:
    """The location's automatic custom field columns (see :mod:`.custom_fields`).

    ``columns``: how many were filled this run; ``added``: columns created or filled again this
    run; ``renamed``: fields renamed in HighLevel (their column kept); ``removed``: fields deleted
    in HighLevel (column kept, no longer filled); ``missing``: custom fields the mapping names
    explicitly that the location does not have (their columns are NULL). Each item is a line of
    text naming the column and the field.
    """

    columns: int = 0
    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """Outcome of one location's run (see the module docstring).

    ``mode`` is ``full`` (first load or ``full_sweep``) or ``incremental``. ``requests`` counts
    HTTP requests to HighLevel (retries included), ``throttled`` the 429 answers among them,
    ``duration_s`` is wall time in seconds. Watermarks are ISO-8601 UTC ``dateUpdated`` values.

    ``column_errors``: table -> column -> how many values could not be converted and were stored
    as NULL (the value stays in ``raw_json``), with one example per column in
    ``column_error_examples`` (``"<record id>: <why>"``). ``cleaned``: table -> column (or
    ``raw_json``) -> how many values had characters no target can store removed (NUL) or
    replaced (lone surrogates). ``null_columns``: table -> mapped column -> how many records
    this run read while the column stayed NULL (or empty) for every one of them (each also a
    warning: a misspelt source shows here). ``backfilled``: table -> mapped column -> how many
    stored rows had the column re-mapped from ``raw_json`` because the column is new in the
    mapping or its source/transform changed (no request to HighLevel).
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
    column_errors: dict[str, dict[str, int]] = field(default_factory=dict)
    column_error_examples: dict[str, dict[str, str]] = field(default_factory=dict)
    cleaned: dict[str, dict[str, int]] = field(default_factory=dict)
    custom_fields: CustomFieldsReport = field(default_factory=CustomFieldsReport)
    null_columns: dict[str, dict[str, int]] = field(default_factory=dict)
    backfilled: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: What the run did with webhook events (``sync/events.py``; empty without events).
    events: dict[str, Any] = field(default_factory=dict)

    def counts(self, entity: str) -> TableCounts:
        """Counters of ``entity`` (``contacts``, ``tasks``, ``notes``) or of a table name."""
        return self.tables[TABLES.get(entity, entity)]

    def column_error(self, entity: str, column: str, example: str) -> None:
        """Count one value of ``column`` that could not be converted (NULL stored)."""
        table = TABLES.get(entity, entity)
        per_table = self.column_errors.setdefault(table, {})
        per_table[column] = per_table.get(column, 0) + 1
        self.column_error_examples.setdefault(table, {}).setdefault(column, example[:_EXAMPLE_CHARS])

    def clean(self, entity: str, column: str) -> None:
        """Count one value of ``column`` that was cleaned to be storable."""
        per_table = self.cleaned.setdefault(TABLES.get(entity, entity), {})
        per_table[column] = per_table.get(column, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for XCom and asset event extras)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """Inverse of :meth:`to_dict` (reports of older versions, lacking newer keys, read too)."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["tables"] = {k: TableCounts(**v) for k, v in data.get("tables", {}).items()}
        data["sweep"] = SweepReport(**data.get("sweep", {}))
        data["custom_fields"] = CustomFieldsReport(**data.get("custom_fields", {}))
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
        cf = self.custom_fields
        lines.append(f"custom field columns filled: {cf.columns}")
        for label, items in (("added", cf.added), ("renamed", cf.renamed), ("removed", cf.removed),
                             ("missing (mapped, not in the location)", cf.missing)):
            lines.extend(f"  custom field {label}: {item}" for item in items)
        for table, columns in sorted(self.column_errors.items()):
            for column, count in sorted(columns.items()):
                example = self.column_error_examples.get(table, {}).get(column, "")
                lines.append(f"column errors (stored NULL, value kept in raw_json): {table}.{column} {count}"
                             + (f" (e.g. {example})" if example else ""))
        for table, columns in sorted(self.cleaned.items()):
            lines.append(
                f"cleaned values (NUL removed / invalid characters replaced): {table} "
                + ", ".join(f"{column} {count}" for column, count in sorted(columns.items()))
            )
        for table, columns in sorted(self.backfilled.items()):
            lines.append(
                f"re-mapped from raw_json (new or changed columns): {table} "
                + ", ".join(f"{column} {count}" for column, count in sorted(columns.items()))
            )
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


#: Keys of a :func:`report_rows` row, in order.
REPORT_ROW_FIELDS = (
    "location_id", "table", "mode", "upserted", "inserted", "updated", "unchanged", "deleted", "quarantined",
    "rejected", "column_errors", "requests", "throttled", "duration_s", "warnings", "target",
)
_ID_CHARS = 100  # a location id or target name longer than this is cut (a row stays small)
_ROW_COUNTS = ("upserted", "inserted", "updated", "unchanged", "deleted", "quarantined", "rejected", "column_errors")


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= _ID_CHARS else text[: _ID_CHARS - 3] + "..."


def report_rows(report: RunReport | dict[str, Any]) -> list[dict[str, Any]]:
    """The run as a small table: one flat row (scalars only) per target table, in
    ``ghl_contacts``, ``ghl_tasks``, ``ghl_notes`` order, with the keys of
    :data:`REPORT_ROW_FIELDS`:

    - ``location_id``, ``table``, ``mode`` (``full`` / ``incremental``), ``target``;
    - record counts of the table: ``upserted`` (= ``inserted`` + ``updated``), ``inserted``,
      ``updated``, ``unchanged``, ``deleted`` (tombstoned or removed), ``quarantined`` (set aside
      by the mapping), ``rejected`` (refused by the database, quarantined too), ``column_errors``
      (values stored as NULL because they did not convert, all columns);
    - the location's run, the same on its three rows: ``requests`` to HighLevel (retries
      included), ``throttled`` (429 answers), ``duration_s`` (wall seconds), ``warnings`` (how
      many; their text is in the task log and in ``ghl_sync_state.last_run``).

    The size does not depend on the data (about 1 KB as JSON), so it suits XCom and the UI's XCom
    tab. ``report`` is a :class:`RunReport` or its :meth:`~RunReport.to_dict` form.
    """
    data = report.to_dict() if isinstance(report, RunReport) else dict(report)
    tables = data.get("tables") or {}
    column_errors = data.get("column_errors") or {}
    rows = []
    for table in (*TABLES.values(), *sorted(set(tables) - set(TABLES.values()))):
        counts = tables.get(table) or {}
        count = {name: int(counts.get(name, 0) or 0) for name in _COUNT_NAMES}
        rows.append({
            "location_id": _short(data.get("location_id")),
            "table": table,
            "mode": _short(data.get("mode")),
            "upserted": count["inserted"] + count["updated"],
            **count,
            "column_errors": sum(int(v or 0) for v in (column_errors.get(table) or {}).values()),
            "requests": int(data.get("requests", 0) or 0),
            "throttled": int(data.get("throttled", 0) or 0),
            "duration_s": round(float(data.get("duration_s", 0.0) or 0.0), 1),
            "warnings": len(data.get("warnings") or []),
            "target": _short(data.get("target")),
        })
    return [{key: row[key] for key in REPORT_ROW_FIELDS} for row in rows]


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum :func:`report_rows` rows (of one or several locations) per table.

    Returns ``{"tables": {table: {upserted, inserted, updated, unchanged, deleted, quarantined,
    rejected, column_errors, locations: [ids]}}, "locations": [ids], "requests": n,
    "throttled": n, "duration_s": longest location, "warning_count": n, "warnings_by_location":
    {id: n} (locations with warnings), "targets": [names]}``; its
    size grows with the number of locations only. Rows missing a count (an older version's) count
    0.
    """
    tables: dict[str, dict[str, Any]] = {}
    per_location: dict[str, dict[str, Any]] = {}
    targets: list[str] = []
    for row in rows:
        table = str(row.get("table"))
        location = row.get("location_id")
        entry = tables.setdefault(table, {**dict.fromkeys(_ROW_COUNTS, 0), "locations": []})
        for name in _ROW_COUNTS:
            entry[name] += int(row.get(name, 0) or 0)
        if location not in entry["locations"]:
            entry["locations"].append(location)
        # run-level figures: once per location (they repeat on its rows)
        per_location.setdefault(str(location), {
            "requests": int(row.get("requests", 0) or 0),
            "throttled": int(row.get("throttled", 0) or 0),
            "duration_s": float(row.get("duration_s", 0.0) or 0.0),
            "warnings": int(row.get("warnings", 0) or 0),
        })
        if row.get("target") and row["target"] not in targets:
            targets.append(row["target"])
    for table in TABLES.values():
        tables.setdefault(table, {**dict.fromkeys(_ROW_COUNTS, 0), "locations": []})
    runs = per_location.values()
    return {
        "tables": tables,
        "locations": list(per_location),
        "requests": sum(r["requests"] for r in runs),
        "throttled": sum(r["throttled"] for r in runs),
        "duration_s": max((r["duration_s"] for r in runs), default=0.0),
        "warning_count": sum(r["warnings"] for r in runs),
        "warnings_by_location": {loc: r["warnings"] for loc, r in per_location.items() if r["warnings"]},
        "targets": targets,
    }
