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
``{"status": "changed", "location_id", "contact_ids": [...], "count", "truncated", "since", "watermark",
"watermark_ids"}``.
The consuming DAG reads it from ``triggering_asset_events``.

Watermark: starts at ``since`` (default: the moment the trigger first runs, so existing data does
not fire; contacts changed strictly after it count), then advances to the latest change of each
event together with the ids already reported at exactly that millisecond (the event's
``watermark_ids``): the next poll searches changes *at or after* the watermark and skips those ids,
so contacts sharing the timestamp of the last one reported (a batch cut off at ``max_ids``, a bulk
update, a change landing in the same millisecond) are reported once, never skipped.

Both are kept in the asset's state store (Airflow 3.3's ``asset_state_store``) when the triggerer
provides one: key ``ghl_watermark`` holds the watermark (ISO 8601 string), key
``ghl_watermark_ids`` holds ``{"watermark": ..., "ids": [...]}``. The ids are written first and
used only when their ``watermark`` equals the saved watermark; otherwise (an older provider
version, a crash between the two writes, a watermark reset by hand) the contacts at exactly the
saved watermark are reported again rather than lost. So a triggerer restart neither loses nor
(barring that crash window) replays changes.

Failures never end the trigger: they are logged and retried at the next poll; after
``max_consecutive_errors`` failures in a row one ``{"status": "error", "message": ...}`` event is
yielded (so the failure is visible as a DAG run) and polling goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.failures import error_event
from airflow_provider_contacts.params import iso, positive_seconds
from airflow_provider_contacts.redaction import redact_url_credentials
from airflow_provider_contacts.sensors.conditions import GHLContactsChangedCondition
from airflow_provider_contacts.sensors.sources import GHLAsyncHookSource

#: Key of the watermark in the asset state store (an ISO 8601 UTC string).
WATERMARK_KEY = "ghl_watermark"
#: Key of the ids reported at exactly the watermark: ``{"watermark": <ISO 8601>, "ids": [...]}``.
WATERMARK_IDS_KEY = "ghl_watermark_ids"


class GHLContactsChangedEventTrigger(BaseEventTrigger):
    """Yields an event each time contacts change in a location (for ``AssetWatcher``).

    :param ghl_conn_id: connection of type ``ghl``.
    :param location_id: location to watch (default: the connection's).
    :param filters: extra search filters (e.g. ``[{"field": "tags", "operator": "eq", "value": "vip"}]``).
    :param date_field: ``dateUpdated`` (created or updated, default) or ``dateAdded`` (created only).
    :param since: initial watermark (ISO 8601); default: when the trigger first runs.
    :param poll_interval: seconds between polls (> 0).
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
        self.poll_interval = positive_seconds(type(self).__name__, "poll_interval", poll_interval)
        self.max_ids = int(max_ids)
        self.max_consecutive_errors = int(max_consecutive_errors)
        # Validate now (at DAG parse time) rather than in the triggerer.
        GHLContactsChangedCondition(
            since=self.since or iso(datetime.now(timezone.utc)), date_field=date_field, filters=self.filters,
            max_ids=self.max_ids,
        )

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

    async def _load_watermark(self) -> tuple[str, list[str] | None]:
        """The saved ``(watermark, ids reported at it)``, else ``(since or now, None)``.

        Saved ids that do not belong to the saved watermark give ``[]``: the contacts at exactly
        the watermark are reported again (inclusive, nothing skipped) rather than possibly lost.
        """
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                saved = await store.aget(WATERMARK_KEY)
                if saved:
                    watermark = iso(saved)
                    return watermark, _ids_at(await store.aget(WATERMARK_IDS_KEY), watermark)
            except Exception as exc:  # noqa: BLE001 - state store is an optimisation
                self.log.warning(
                    "could not read the watermark from the asset state store: %s", redact_url_credentials(str(exc))
                )
        return self.since or iso(datetime.now(timezone.utc)), None

    async def _save_watermark(self, watermark: str, ids: list[str]) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:  # the ids first: they only count when the watermark next to them matches
            await store.aset(WATERMARK_IDS_KEY, {"watermark": watermark, "ids": ids})
            await store.aset(WATERMARK_KEY, watermark)
        except Exception as exc:  # noqa: BLE001
            self.log.warning("could not save the watermark to the asset state store: %s", redact_url_credentials(str(exc)))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per batch of changed contacts."""
        watermark, seen_ids = await self._load_watermark()
        self.log.info(
            "watching contacts changed after %s (%s; %d already reported at it)",
            watermark, self.date_field, len(seen_ids or ()),
        )
        condition = GHLContactsChangedCondition(
            since=watermark, date_field=self.date_field, filters=self.filters, max_ids=self.max_ids, seen_ids=seen_ids
        )
        errors = 0
        source: GHLAsyncHookSource | None = None
        while True:
            try:
                if source is None:
                    source = await GHLAsyncHookSource.connect(self.ghl_conn_id, self.location_id)
                result = await condition.acheck(source)
                errors = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep watching; report persistent failures
                errors += 1
                self.log.warning(
                    "polling contacts failed (%d in a row): %s", errors, redact_url_credentials(str(exc) or repr(exc))
                )
                if errors >= self.max_consecutive_errors:
                    errors = 0
                    yield TriggerEvent({**error_event(exc), "location_id": self.location_id})
                result = None
            if result is not None:
                condition = condition.next_after(result)
                await self._save_watermark(condition.since, result["watermark_ids"])
                location = source.location_id if source is not None else self.location_id
                yield TriggerEvent({"status": "changed", "location_id": location, **result})
                if result["truncated"]:
                    continue  # more changes are waiting: fetch them without sleeping
            await asyncio.sleep(self.poll_interval)


def _ids_at(saved: Any, watermark: str) -> list[str]:
    """The ids of a saved ``{"watermark", "ids"}`` when it belongs to ``watermark``, else ``[]``."""
    if not isinstance(saved, dict) or not saved.get("watermark"):
        return []
    try:
        same = iso(saved["watermark"]) == watermark
    except ValueError:
        return []
    return [str(i) for i in saved.get("ids") or ()] if same else []


__all__ = ["WATERMARK_IDS_KEY", "WATERMARK_KEY", "GHLContactsChangedEventTrigger"]
