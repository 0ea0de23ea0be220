"""Sensors on the notes of one contact: a note added, notes changed (added, edited, deleted).

Per contact only: HighLevel has no location-wide note endpoint, and a new or edited note leaves the
contact's ``dateUpdated`` alone (ghl-live-notes.md), so the contacts that got a note cannot be
found through the contact search; reading every contact's notes at each check would cost one
request per contact and check. To watch several contacts, use one sensor per contact (dynamic task
mapping: ``GHLNoteAddedSensor.partial(...).expand(contact_id=[...])``).

All give the same answer in poke, reschedule and deferrable modes (see
:mod:`airflow_provider_contacts.sensors.base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow_provider_contacts.sensors.base import GHLBaseSensor
from airflow_provider_contacts.sensors.conditions import (
    CHANGE_KINDS,
    GHLNoteAddedCondition,
    GHLNoteChangedCondition,
)


class GHLNoteAddedSensor(GHLBaseSensor):
    """Wait until a note is added to a contact after ``since`` (by the note's ``dateAdded``).

    :param contact_id: the contact. Templated.
    :param since: ISO 8601 date-time or datetime. Templated; default: when the sensor starts waiting.

    XCom: ``{"contact_id", "note_ids": [...], "notes": [<key fields>], "count"}``.
    Same answer in poke, reschedule and deferrable modes. A contact that does not exist (404, or
    the live API's 400 ``Contact not found``) fails the task at once.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id", "since")

    def __init__(self, *, contact_id: str, since: str | datetime | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.since = since

    def build_condition(self, started_at: datetime) -> GHLNoteAddedCondition:
        return GHLNoteAddedCondition(
            contact_id=self._id("contact_id"), since=self._since(self.since, started_at)  # type: ignore[arg-type]
        )


class GHLNoteChangedSensor(GHLBaseSensor):
    """Wait until a note of a contact is added, edited or deleted.

    Found by content: at the first check the sensor takes a baseline (a fingerprint of the
    compared fields of each note), kept between pokes in every mode (memory in poke mode, the task
    state store in reschedule mode, the trigger's kwargs in deferrable mode); a note whose compared
    fields differ from it has been edited.

    :param contact_id: the contact. Templated.
    :param compare: the fields whose change counts (default all of ``body``, ``title``, ``color``,
        ``pinned``, ``userId``).
    :param changes: which kinds count (default all): ``"created"``, ``"updated"``, ``"deleted"``.
    :param max_items: at most this many changes in the XCom value (``count`` is the total).

    XCom: ``{"contact_id", "changes": [{"id", "change", "fields": [...]}], "note_ids": [...],
    "notes": [<key fields of added/edited notes>], "count", "truncated"}``. Same answer in poke,
    reschedule and deferrable modes. A contact that does not exist fails the task at once.
    """

    template_fields: Sequence[str] = (*GHLBaseSensor.template_fields, "contact_id")

    def __init__(
        self,
        *,
        contact_id: str,
        compare: Sequence[str] | None = None,
        changes: Sequence[str] = CHANGE_KINDS,
        max_items: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.contact_id = contact_id
        self.compare = list(compare) if compare else None
        self.changes = list(changes)
        self.max_items = max_items
        try:  # refuse bad values at parse time
            GHLNoteChangedCondition(contact_id="check", compare=self.compare, changes=self.changes, max_items=max_items)
        except ValueError as exc:
            raise ValueError(f"{self._owner}: {exc}") from None

    def build_condition(self, started_at: datetime) -> GHLNoteChangedCondition:
        return GHLNoteChangedCondition(
            contact_id=self._id("contact_id"), compare=self.compare, changes=self.changes, max_items=self.max_items
        )


__all__ = ["GHLNoteAddedSensor", "GHLNoteChangedSensor"]
