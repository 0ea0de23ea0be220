"""Event-driven scheduling: schedule a DAG on "contacts changed in location X".

Usage::

    from airflow.sdk import DAG, Asset, AssetWatcher
    from airflow_provider_contacts.triggers.events import GHLContactsChangedEventTrigger

    trigger = GHLContactsChangedEventTrigger(location_id="ve9EPM428h8vShlRW1KT", poll_interval=60)
    contacts = Asset("ghl://ve9EPM428h8vShlRW1KT/contacts",
                     watchers=[AssetWatcher(name="ghl_contacts_changed", trigger=trigger)])

    with DAG("on_contacts_changed", schedule=[contacts]): ...

The trigger polls the advanced search for contacts whose ``dateUpdated`` (or ``dateAdded``) is
after its watermark and yields one event per batch of changes:
``{"status": "changed", "location_id", "contact_ids": [...], "count", "truncated", "since", "watermark"}``.
The consuming DAG reads it from ``triggering_asset_events``.

Watermark: starts at ``since`` (default: the moment the trigger first runs, so existing data does
not fire), advances to the latest change of each event, and is kept in the asset's state store
(Airflow 3.3's ``asset_state_store``, key ``ghl_watermark``) when the triggerer provides one, so a
triggerer restart neither replays nor loses changes.

Failures never end the trigger: they are logged and retried at the next poll; after
``max_consecutive_errors`` failures in a row one ``{"status": "error", "message": ...}`` event is
yielded (so the failure is visible as a DAG run) and polling goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.triggers.changes import error_payload
from airflow_provider_contacts.triggers.conditions import ContactsChanged, iso

if TYPE_CHECKING:
    from airflow_provider_contacts.triggers.client import AsyncContactsClient

#: Key of the watermark in the asset state store.
WATERMARK_KEY = "ghl_watermark"


class GHLContactsChangedEventTrigger(BaseEventTrigger):
    """Yields an event each time contacts change in a location (for ``AssetWatcher``).

    :param ghl_conn_id: connection of type ``ghl``.
    :param location_id: location to watch (default: the connection's).
    :param filters: extra search filters (e.g. ``[{"field": "tags", "operator": "eq", "value": "vip"}]``).
    :param date_field: ``dateUpdated`` (created or updated, default) or ``dateAdded`` (created only).
    :param since: initial watermark (ISO 8601); default: when the trigger first runs.
    :param poll_interval: seconds between polls.
    :param max_ids: at most this many contact ids per event (the oldest changes first; the next
        event continues after them).
    :param max_consecutive_errors: failures in a row before an error event is yielded.
    """

    def __init__(
        self,
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        filters: list[dict[str, Any]] | None = None,
        date_field: str = "dateUpdated",
        since: str | None = None,
        poll_interval: float = 60.0,
        max_ids: int = 1000,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        self.ghl_conn_id = ghl_conn_id
        self.location_id = location_id
        self.filters = list(filters or [])
        self.date_field = date_field
        self.since = iso(since) if since else None
        self.poll_interval = float(poll_interval)
        self.max_ids = int(max_ids)
        self.max_consecutive_errors = int(max_consecutive_errors)
        # Validate now (at DAG parse time) rather than in the triggerer.
        ContactsChanged(since=self.since or iso(datetime.now(timezone.utc)), date_field=date_field, filters=self.filters,
                        max_ids=self.max_ids)
        #: Current watermark (ISO 8601 UTC); set when run() starts.
        self.watermark: str | None = self.since

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-only kwargs (the configuration, not the moving watermark)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ghl_conn_id": self.ghl_conn_id,
                "location_id": self.location_id,
                "filters": self.filters,
                "date_field": self.date_field,
                "since": self.since,
                "poll_interval": self.poll_interval,
                "max_ids": self.max_ids,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def _load_watermark(self) -> str:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                saved = await store.aget(WATERMARK_KEY)
                if saved:
                    return iso(saved)
            except Exception as exc:  # noqa: BLE001 - state store is an optimisation
                self.log.warning("could not read the watermark from the asset state store: %s", exc)
        return self.since or iso(datetime.now(timezone.utc))

    async def _save_watermark(self, value: str) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(WATERMARK_KEY, value)
        except Exception as exc:  # noqa: BLE001
            self.log.warning("could not save the watermark to the asset state store: %s", exc)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per batch of changed contacts."""
        # Imported here, in the triggerer: DAG files build this trigger at parse time (AssetWatcher).
        from airflow_provider_contacts.triggers.client import AsyncContactsClient

        self.watermark = await self._load_watermark()
        self.log.info("watching contacts changed after %s (%s)", self.watermark, self.date_field)
        errors = 0
        client: AsyncContactsClient | None = None
        try:
            while True:
                try:
                    if client is None:
                        client = await AsyncContactsClient(self.ghl_conn_id, self.location_id).open()
                    condition = ContactsChanged(
                        since=self.watermark, date_field=self.date_field, filters=self.filters, max_ids=self.max_ids
                    )
                    result = await condition.acheck(client)
                    errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep watching; report persistent failures
                    errors += 1
                    self.log.warning("polling contacts failed (%d in a row): %s", errors, exc)
                    if errors >= self.max_consecutive_errors:
                        errors = 0
                        yield TriggerEvent({**error_payload(exc), "location_id": self.location_id})
                    result = None
                if result is not None:
                    self.watermark = result["watermark"]
                    await self._save_watermark(self.watermark)
                    location = client.location_id if client is not None else self.location_id
                    yield TriggerEvent({"status": "changed", "location_id": location, **result})
                    if result["truncated"]:
                        continue  # more changes are waiting: fetch them without sleeping
                await asyncio.sleep(self.poll_interval)
        finally:
            if client is not None:
                await client.close()


__all__ = ["WATERMARK_KEY", "GHLContactsChangedEventTrigger"]
