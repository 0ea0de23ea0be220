"""Event-driven scheduling: "contacts changed in location X" as an AssetWatcher trigger."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import Asset, AssetWatcher
from ghl_sandbox import store as sandbox_store
from airflow_provider_contacts.triggers.events import WATERMARK_IDS_KEY, WATERMARK_KEY, GHLContactsChangedEventTrigger


class MemoryStateStore:
    """Stand-in for the triggerer's asset state store (``aget``/``aset``)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.data[key] = value


async def _events(trigger: GHLContactsChangedEventTrigger, sandbox: Any, changes: list, wait_s: float = 60) -> list[dict]:
    """Run the trigger and collect one event per change (a callable, or None for no change).

    The first change is made once the trigger has polled (so it has set its watermark); later
    ones while the trigger is suspended after yielding (an async generator does not run ahead),
    so each event holds exactly the changes made for it.
    """
    stream = trigger.run()
    payloads = []
    try:
        for i, change in enumerate(changes):
            polls = _polls(sandbox)
            if i > 0 and change is not None:
                await asyncio.to_thread(change)
            pending = asyncio.ensure_future(stream.__anext__())
            if i == 0 and change is not None:
                await asyncio.to_thread(_wait_for_poll, sandbox, polls, pending)
                await asyncio.to_thread(change)
            event = await asyncio.wait_for(pending, wait_s)
            payloads.append(event.payload)
    finally:
        await stream.aclose()
    return payloads


def _polls(sandbox: Any) -> int:
    return int(sandbox.admin.counters()["by_operation"].get("search-contacts-advanced", 0))


def _wait_for_poll(sandbox: Any, before: int, pending: asyncio.Future) -> None:
    deadline = time.monotonic() + 60
    while _polls(sandbox) <= before and not pending.done() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_each_change_in_the_location_yields_one_event_and_advances_the_watermark(sandbox, ghl_conn) -> None:
    contacts = sandbox.admin.dump()["contacts"]
    trigger = GHLContactsChangedEventTrigger(location_id=sandbox.location_id, poll_interval=0.05)
    trigger.asset_state_store = MemoryStateStore()
    first, second = asyncio.run(
        _events(
            trigger,
            sandbox,
            [
                lambda: sandbox.admin.update_contact(contacts[0]["id"], tags=["vip"]),
                lambda: (sandbox.admin.update_contact(contacts[1]["id"], city="Austin"),
                         sandbox.admin.create_contact(firstName="Noah")),
            ],
        )
    )
    assert first["status"] == "changed" and first["contact_ids"] == [contacts[0]["id"]]
    assert first["location_id"] == sandbox.location_id
    # the update and the create may land in the same millisecond, and then the id orders them
    assert contacts[1]["id"] in second["contact_ids"] and second["count"] == 2
    assert first["contact_ids"][0] not in second["contact_ids"]
    assert second["since"] == first["watermark"] < second["watermark"]
    assert trigger.asset_state_store.data[WATERMARK_KEY] == second["watermark"]


def test_a_restarted_trigger_resumes_from_the_saved_watermark(sandbox, ghl_conn) -> None:
    contact = sandbox.admin.dump()["contacts"][2]
    store = MemoryStateStore()
    store.data[WATERMARK_KEY] = "2020-01-01T00:00:00Z"  # saved by an earlier triggerer
    trigger = GHLContactsChangedEventTrigger(poll_interval=0.05, max_ids=10, filters=[{"field": "tags", "operator": "eq", "value": "vip"}])
    trigger.asset_state_store = store
    (event,) = asyncio.run(_events(trigger, sandbox, [None]))
    vip = sorted((c for c in sandbox.admin.dump()["contacts"] if "vip" in c["tags"]), key=lambda c: (c["dateUpdated"], c["id"]))
    assert event["since"] == "2020-01-01T00:00:00.000Z"
    assert event["contact_ids"] == [c["id"] for c in vip[:10]] and event["truncated"] is True
    assert contact  # the location is untouched: the events come from the saved watermark alone


def test_serialize_is_json_only_and_the_trigger_fits_an_asset_watcher() -> None:
    trigger = GHLContactsChangedEventTrigger(
        location_id="ve9EPM428h8vShlRW1KT", since=datetime(2024, 5, 1, tzinfo=timezone.utc), poll_interval=30
    )
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs and kwargs["since"] == "2024-05-01T00:00:00.000Z"
    assert type(trigger)(**kwargs).serialize() == (classpath, kwargs)
    asset = Asset(
        "ghl://ve9EPM428h8vShlRW1KT/contacts", watchers=[AssetWatcher(name="ghl_contacts_changed", trigger=trigger)]
    )
    assert asset.watchers[0].trigger is trigger


def test_persistent_failures_surface_as_an_error_event_and_polling_goes_on(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", json.dumps({**json.loads(sandbox.conn_json()), "password": "bad-token-456"}))
    trigger = GHLContactsChangedEventTrigger(poll_interval=0.01, max_consecutive_errors=3)
    (event,) = asyncio.run(_events(trigger, sandbox, [None]))
    assert event["status"] == "error" and event["error_type"] == "GHLAuthError"
    assert "bad-token-456" not in json.dumps(event)


def test_contacts_sharing_the_watermark_millisecond_are_each_reported_once(sandbox, ghl_conn, monkeypatch) -> None:
    """More contacts than ``max_ids`` change in the same millisecond (the sandbox clock is frozen, as
    for a bulk update): the batches continue at exactly the watermark, and a change landing in the
    watermark's millisecond after it was reported is still seen. No id twice, none missed."""
    ids = sorted(c["id"] for c in sandbox.admin.dump()["contacts"][:8])  # the search breaks ties by id
    clock = {"ms": sandbox_store.now_ms() + 5_000}  # after every seeded date
    monkeypatch.setattr(sandbox_store, "now_ms", lambda: clock["ms"])

    def touch(*contact_ids: str, at: int | None = None) -> None:
        if at is not None:
            clock["ms"] = at
        for cid in contact_ids:
            sandbox.admin.update_contact(cid)

    same_ms = clock["ms"]
    store = MemoryStateStore()
    trigger = GHLContactsChangedEventTrigger(location_id=sandbox.location_id, poll_interval=0.05, max_ids=2)
    trigger.asset_state_store = store
    events = asyncio.run(
        _events(
            trigger,
            sandbox,
            [
                lambda: touch(*ids[:5]),  # five changes in one millisecond, two per event
                None,
                None,
                lambda: touch(ids[5]),  # lands in the watermark's millisecond after it was reported
                lambda: touch(ids[0], at=same_ms + 7),  # a later change of an already reported contact
            ],
            wait_s=10,
        )
    )
    assert [e["contact_ids"] for e in events] == [ids[:2], ids[2:4], [ids[4]], [ids[5]], [ids[0]]]
    assert [e["truncated"] for e in events[:3]] == [True, True, False]
    watermark = events[0]["watermark"]
    assert all(e["watermark"] == watermark for e in events[:4]) and events[4]["watermark"] > watermark
    assert events[3]["watermark_ids"] == sorted(ids[:6]) and events[4]["watermark_ids"] == [ids[0]]
    assert store.data[WATERMARK_KEY] == events[4]["watermark"]
    assert store.data[WATERMARK_IDS_KEY] == {"watermark": events[4]["watermark"], "ids": [ids[0]]}

    # A restarted triggerer resumes from the saved state: the contact already reported at the
    # watermark is not reported again, another one changed in that millisecond is.
    restarted = GHLContactsChangedEventTrigger(location_id=sandbox.location_id, poll_interval=0.05, max_ids=2)
    restarted.asset_state_store = store
    (event,) = asyncio.run(_events(restarted, sandbox, [lambda: touch(ids[6])], wait_s=10))
    assert event["contact_ids"] == [ids[6]] and event["since"] == events[4]["watermark"]
