"""Wake DAGs when HighLevel webhook events are pending: :class:`GHLWebhookEventTrigger` and the
asset helper :func:`webhook_events_asset`.

The receiver (:mod:`airflow_provider_contacts.webhooks`) stores each verified event in the table
``ghl_webhook_events`` of the sync's target database. The trigger runs in the triggerer, polls
that table (one indexed ``SELECT`` of the pending events' ids every ``poll_interval`` seconds) and
yields one event whenever events it has not announced yet are pending::

    {"status": "pending", "location_ids": [...], "pending": <n>, "new": <n>,
     "oldest_received_at": <ISO 8601>, "target_conn_id": ..., "location_id": <filter or null>}

so a burst of events costs one DAG run, not one per event (the run applies them all). Events
still pending ``renotify_after`` seconds after they were announced (the run failed, or no DAG
consumes them) are announced again. After a triggerer restart pending events are announced
once more: a harmless extra run, the reconcile applies events idempotently.

Failures (database down, connection missing) never end the trigger: they are logged and the next
poll tries again; after ``max_consecutive_errors`` failures in a row one ``{"status": "error",
"message": ...}`` event is yielded (the failure becomes visible as a DAG run) and polling goes on.

With an ``AssetWatcher`` (``BaseEventTrigger``), every yielded event is an asset event that
schedules the DAGs on the asset: ``ghl_contacts_reconcile`` built with ``event_driven=True``
(:func:`~airflow_provider_contacts.sync.dag.build_reconcile_dag`) or any DAG of yours::

    from airflow_provider_contacts.triggers.webhook_events import webhook_events_asset

    with DAG("on_highlevel_events", schedule=[webhook_events_asset(target_conn_id="warehouse")]): ...
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_contacts.failures import error_event
from airflow_provider_contacts.params import positive_seconds
from airflow_provider_contacts.redaction import redact_url_credentials

__all__ = ["DEFAULT_ASSET_NAME", "GHLWebhookEventTrigger", "webhook_events_asset"]

DEFAULT_ASSET_NAME = "ghl_webhook_events"
DEFAULT_TARGET_CONN_ID = "ghl_target"


class GHLWebhookEventTrigger(BaseEventTrigger):
    """Yields an event when webhook events are pending in the target (for ``AssetWatcher``).

    :param target_conn_id: the SQL connection of the target holding ``ghl_webhook_events`` (the
        reconcile's ``target_conn_id``; ``ghl_target`` falls back to the embedded SQLite file).
    :param location_id: only this location's events; ``None``: any location.
    :param target_schema: schema of the table (the reconcile's ``target_schema``).
    :param poll_interval: seconds between two looks at the table (> 0).
    :param renotify_after: seconds after which events still pending are announced again (> 0).
    :param max_events: pending events looked at per poll at most (the oldest).
    :param max_consecutive_errors: failed polls in a row before an error event is yielded.
    """

    def __init__(
        self,
        target_conn_id: str = DEFAULT_TARGET_CONN_ID,
        location_id: str | None = None,
        target_schema: str | None = None,
        poll_interval: float = 5.0,
        renotify_after: float = 900.0,
        max_events: int = 10_000,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        if not target_conn_id or not str(target_conn_id).strip():
            raise ValueError(f"{type(self).__name__}: target_conn_id must name the SQL target connection, e.g. 'ghl_target'")
        self.target_conn_id = str(target_conn_id).strip()
        self.location_id = str(location_id).strip() if location_id else None
        self.target_schema = target_schema or None
        self.poll_interval = positive_seconds(type(self).__name__, "poll_interval", poll_interval)
        self.renotify_after = positive_seconds(type(self).__name__, "renotify_after", renotify_after)
        if int(max_events) < 1 or int(max_consecutive_errors) < 1:
            raise ValueError(f"{type(self).__name__}: max_events and max_consecutive_errors must be >= 1")
        self.max_events = int(max_events)
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-only kwargs."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "target_conn_id": self.target_conn_id,
                "location_id": self.location_id,
                "target_schema": self.target_schema,
                "poll_interval": self.poll_interval,
                "renotify_after": self.renotify_after,
                "max_events": self.max_events,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; yield one event per new batch of pending events."""
        # The first import of the sync engine and SQLAlchemy takes a few hundred ms: in a worker
        # thread, not on the triggerer's event loop.
        events = await asyncio.to_thread(importlib.import_module, "airflow_provider_contacts.sync.events")
        reader = events.AsyncEventReader(self.target_conn_id, schema=self.target_schema)
        announced: dict[str, float] = {}  # pending webhook id -> when it was last announced
        errors = 0
        self.log.info(
            "watching webhook events in %s (location %s) every %.1f s",
            self.target_conn_id, self.location_id or "any", self.poll_interval,
        )
        try:
            while True:
                try:
                    pending = await reader.apending(self.location_id, self.max_events)
                    errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep watching; report persistent failures
                    errors += 1
                    self.log.warning(
                        "reading pending webhook events failed (%d in a row): %s",
                        errors, redact_url_credentials(str(exc) or repr(exc)),
                    )
                    if errors >= self.max_consecutive_errors:
                        errors = 0
                        yield TriggerEvent({**error_event(exc), "target_conn_id": self.target_conn_id,
                                            "location_id": self.location_id})
                    await asyncio.sleep(self.poll_interval)
                    continue
                now = time.monotonic()
                ids = {event["webhook_id"] for event in pending}
                announced = {wid: at for wid, at in announced.items() if wid in ids}
                new = [e for e in pending if e["webhook_id"] not in announced]
                stale = [wid for wid, at in announced.items() if now - at >= self.renotify_after]
                if new or stale:
                    for event in pending:
                        announced[event["webhook_id"]] = now
                    received = [e["received_at"] for e in pending if e.get("received_at")]
                    payload = {
                        "status": "pending",
                        "target_conn_id": self.target_conn_id,
                        "location_id": self.location_id,
                        "location_ids": sorted({str(e["location_id"]) for e in pending if e.get("location_id")}),
                        "pending": len(pending),
                        "new": len(new),
                        "oldest_received_at": min(received) if received else None,
                        "announced_at": datetime.now(timezone.utc).isoformat(),
                    }
                    self.log.info("%d webhook event(s) pending (%d new) for %s", len(pending), len(new),
                                  payload["location_ids"])
                    yield TriggerEvent(payload)
                await asyncio.sleep(self.poll_interval)
        finally:
            await reader.aclose()


def webhook_events_asset(
    target_conn_id: str = DEFAULT_TARGET_CONN_ID,
    location_id: str | None = None,
    *,
    target_schema: str | None = None,
    name: str | None = None,
    poll_interval: float = 5.0,
    renotify_after: float = 900.0,
) -> Any:
    """An ``Asset`` whose ``AssetWatcher`` runs :class:`GHLWebhookEventTrigger`: a DAG scheduled
    on it runs when webhook events are pending in ``target_conn_id``.

    The asset is named ``name`` (default ``ghl_webhook_events``, with ``__<location>`` when
    filtered to a location) with the URI ``ghl://webhook-events/<target_conn_id>/<location or
    all>``; DAGs that name the same asset share it (one watcher).
    """
    from airflow.sdk import Asset, AssetWatcher

    suffix = f"__{location_id}" if location_id else ""
    asset_name = name or f"{DEFAULT_ASSET_NAME}{suffix}"
    trigger = GHLWebhookEventTrigger(
        target_conn_id=target_conn_id, location_id=location_id, target_schema=target_schema,
        poll_interval=poll_interval, renotify_after=renotify_after,
    )
    return Asset(
        name=asset_name,
        uri=f"ghl://webhook-events/{target_conn_id}/{location_id or 'all'}",
        group="ghl",
        watchers=[AssetWatcher(name=f"{asset_name}_watcher", trigger=trigger)],
    )
