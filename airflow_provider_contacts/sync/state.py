"""Durable per-location sync state, kept in the target database itself (table ``ghl_sync_state``).

Why the target and not Airflow's ``asset_state_store`` or a Variable: the state is written in the
same transaction as the rows it describes, so "the watermark advances only after the load has
committed" holds by construction, a killed run can never leave a watermark ahead of its data, and
the state moves with the data (a new target starts with a full load). It needs no access to
Airflow's metadata database, so the engine behaves the same under ``dag.test()``, a real worker,
or a plain script.

Values (JSON, one row each, id ``<location_id>:<name>``):

``watermark``     ISO-8601 UTC ``dateUpdated`` of the newest contact loaded (``None``: never loaded).
``sweep_cursor``  the last contact id whose tasks and notes the rolling sweep re-read.
``sweep_cycle_started_at``  when the sweep last started over from the first contact.
``last_full_at``  when the last full run finished.
``last_run``      the last run's report (dict).
``custom_field_columns``  the location's automatic custom field columns (see
                  :mod:`.custom_fields`): ``{"fields": {<field id>: {"column", "name", "fieldKey",
                  "dataType", "transform", "removed"}}, "refs": {<mapped name>: <field id>}}``.
                  Read by every location's run (columns of one name and type are shared).
``column_specs``  the mapping's mapped columns as ``{entity: {column: spec hash}}``
                  (:meth:`.mapping.ColumnSpec.spec_hash`): a column new or changed since is
                  re-mapped from ``raw_json`` for the stored rows (``ReconcileEngine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_contacts.sync.writes import SinkTransaction

__all__ = ["SyncState"]


@dataclass
class SyncState:
    """The state of one location; load with :meth:`load`, persist fields with :meth:`save`."""

    location_id: str
    watermark: str | None = None
    sweep_cursor: str | None = None
    sweep_cycle_started_at: str | None = None
    last_full_at: str | None = None

    _FIELDS = ("watermark", "sweep_cursor", "sweep_cycle_started_at", "last_full_at")

    @classmethod
    def load(cls, tx: SinkTransaction, location_id: str) -> SyncState:
        """Read the location's state (defaults when it never ran against this target)."""
        return cls(location_id, **{name: tx.get_state(location_id, name) for name in cls._FIELDS})

    def save(self, tx: SinkTransaction, now: datetime, *names: str, **extra: Any) -> None:
        """Write the named fields (all when none named) plus ``extra`` values, in ``tx``."""
        values = {name: getattr(self, name) for name in (names or self._FIELDS)}
        values.update(extra)
        tx.set_state(self.location_id, values, now)
