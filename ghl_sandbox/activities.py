"""Tasks and notes of a location: one ``ActivityTable`` each, keyed by id and grouped by contact.

Each item is kept API-shaped (with ``contactId``) plus its ``(added_ms, updated_ms)`` times; the
list of a contact's items keeps creation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dates import now_ms
from .errors import not_found


@dataclass
class ActivityTable:
    """The tasks (or notes) of one location."""

    kind: str  # "Task" | "Note": used in 404 messages
    editable: tuple[str, ...]  # fields an update may change
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    times: dict[str, tuple[int, int]] = field(default_factory=dict)
    by_contact: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: dict[str, Any], added_ms: int, updated_ms: int | None = None) -> dict[str, Any]:
        """Insert an item (its ``contactId`` must be a contact of the location)."""
        self.items[item["id"]] = item
        self.times[item["id"]] = (added_ms, updated_ms or added_ms)
        self.by_contact.setdefault(item["contactId"], []).append(item["id"])
        return item

    def get(self, contact_id: str, item_id: str) -> dict[str, Any]:
        """The item, if it belongs to that contact (404 otherwise)."""
        item = self.items.get(item_id)
        if item is None or item["contactId"] != contact_id:
            raise not_found(self.kind, item_id)
        return item

    def update(self, contact_id: str, item_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Apply the editable fields present in ``data``; the update time moves to now."""
        item = self.get(contact_id, item_id)
        for key in self.editable:
            if key in data:
                item[key] = data[key]
        self.times[item_id] = (self.times[item_id][0], now_ms())
        return item

    def delete(self, contact_id: str, item_id: str) -> None:
        """Remove an item of that contact."""
        self.get(contact_id, item_id)
        del self.items[item_id]
        del self.times[item_id]
        self.by_contact[contact_id].remove(item_id)

    def of_contact(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact's items in creation order."""
        return [self.items[i] for i in self.by_contact.get(contact_id, [])]

    def drop_contact(self, contact_id: str) -> None:
        """Remove every item of a deleted contact."""
        for item_id in self.by_contact.pop(contact_id, []):
            self.items.pop(item_id, None)
            self.times.pop(item_id, None)
