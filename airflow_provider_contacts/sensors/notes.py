"""Sensor: a note added to a contact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow_provider_contacts.sensors.base import GHLBaseSensor
from airflow_provider_contacts.triggers.conditions import Condition, NoteAdded


class GHLNoteAddedSensor(GHLBaseSensor):
    """Wait until a note is added to a contact after ``since`` (by the note's ``dateAdded``).

    :param contact_id: the contact. Templated.
    :param since: ISO 8601 date-time or datetime. Templated; default: when the sensor starts waiting.

    XCom: ``{"contact_id", "note_ids": [...], "notes": [<key fields>], "count"}``.
    Works in poke, reschedule and deferrable modes.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "since")

    def __init__(self, *, contact_id: str, since: str | datetime | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.since = since

    def build_condition(self, started_at: datetime) -> Condition:
        return NoteAdded(contact_id=self._id("contact_id"), since=self._since(self.since, started_at))


__all__ = ["GHLNoteAddedSensor"]
