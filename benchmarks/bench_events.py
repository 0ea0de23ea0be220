"""Benchmark: webhook events vs polling only, at one location size and K = 10, 100, 1,000 changes.

A sandbox HighLevel API runs in a child process (``--contacts``, default 20,000; rate limit
``--rate-limit`` 100 requests/s and ``--latency-ms`` 20 per request, as ``bench_sync.py``) and
sends signed events for every change to the receiver app (``webhooks.app``, served in this
process) which stores them in the events target. One full load is copied into two SQLite targets:

- **events**: ``ReconcileEngine(..., events=EventSync())`` - the run an asset-triggered
  ``ghl_contacts_events`` run does: pending events applied, incremental search, deletion scan and
  sweep only when due (not due between the hourly runs);
- **polling**: today's incremental run (``SyncConfig()`` defaults: deletion scan every run, a
  sweep slice sized for 168 runs per 7 days).

For each K the same changes (40 % contact updates, 20 % task completions, 20 % new notes, 10 % new
tasks, 10 % contact deletions, on distinct contacts) are made once and each target runs once.
Printed per K and mode: requests, wall time of the run, and the differences left against the
sandbox (``tests/support/verify.diff_target``; 0: converged). Time to convergence with events is
the run's wall time plus the trigger's poll interval (5 s by default) and Airflow's scheduling
latency; polling leaves task and note changes on untouched contacts for the sweep, which reaches a
given contact within ``sweep_period`` (7 days by default). At the end: what polling needs to
converge now (a run that sweeps the whole location), and the hourly backstop of each mode.

The goal: requests with events <= K + a small constant. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO / "dags" / "ghl_contacts_mapping.yaml"
sys.path.insert(0, str(REPO / "tests"))  # support.verify


class Clock:
    """The engine's "now", settable (to show the hourly backstop without waiting an hour)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def serve_receiver(store: Any, keys: dict[str, str]) -> tuple[Any, str]:
    import uvicorn

    from airflow_provider_contacts.webhooks.app import WebhookSettings, create_app

    settings = WebhookSettings(rsa_public_key=keys["rsa_public_key_pem"], ed25519_public_key=keys["ed25519_public_key_pem"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store=store), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}/events"


def copy_sqlite(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def make_changes(admin: Any, k: int, rng: random.Random) -> dict[str, int]:
    """K changes on distinct contacts (mix in the module docstring); returns the count per kind."""
    truth = admin.dump()
    tasks: dict[str, list[dict[str, Any]]] = {}
    for t in truth["tasks"]:
        tasks.setdefault(t["contactId"], []).append(t)
    notes = {n["contactId"] for n in truth["notes"]}
    ids = [c["id"] for c in truth["contacts"]]
    rng.shuffle(ids)
    plan = {"contact_update": math.ceil(0.4 * k), "task_complete": round(0.2 * k), "note_create": round(0.2 * k),
            "task_create": round(0.1 * k)}
    plan["contact_delete"] = max(0, k - sum(plan.values()))
    done = dict.fromkeys(plan, 0)
    pool = iter(ids)
    open_task = {cid: next((t for t in ts if not t.get("completed")), None) for cid, ts in tasks.items()}
    with_open = iter([cid for cid in ids if open_task.get(cid)])
    used: set[str] = set()

    def take(source: Any) -> str:
        for cid in source:
            if cid not in used:
                used.add(cid)
                return cid
        raise RuntimeError("the location is too small for this K")

    for _ in range(plan["task_complete"]):
        cid = take(with_open)
        admin.update_task(cid, open_task[cid]["id"], completed=True)
        done["task_complete"] += 1
    for _ in range(plan["contact_update"]):
        admin.update_contact(take(pool), city=f"Bench {rng.randrange(10**9)}")
        done["contact_update"] += 1
    for _ in range(plan["note_create"]):
        admin.create_note(take(pool), body=f"Bench note {rng.randrange(10**9)}")
        done["note_create"] += 1
    for _ in range(plan["task_create"]):
        admin.create_task(take(pool), title=f"Bench task {rng.randrange(10**9)}")
        done["task_create"] += 1
    for _ in range(plan["contact_delete"]):
        admin.delete_contact(take(iter(c for c in ids if c in notes or c in tasks)))
        done["contact_delete"] += 1
    return done


class Target:
    def __init__(self, path: Path, events: bool, clock: Clock) -> None:
        from airflow_provider_contacts.sync import FieldMapping, SqlSink
        from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

        self.mapping = FieldMapping.load(MAPPING_FILE)
        self.sink = SqlSink(EmbeddedSqliteHook(path), self.mapping)
        self.events = events
        self.clock = clock

    def run(self, config: Any = None) -> tuple[dict[str, Any], float]:
        from airflow_provider_contacts.hooks.contacts import ContactsHook
        from airflow_provider_contacts.sync import ReconcileEngine
        from airflow_provider_contacts.sync.events import EventSync

        hook = ContactsHook()
        started = time.monotonic()
        try:
            report = ReconcileEngine(hook, self.sink, self.mapping, config, clock=self.clock,
                                     events=EventSync(run_id="bench") if self.events else None).run()
        finally:
            hook.close()
        return report.to_dict(), time.monotonic() - started

    def differences(self, admin: Any, location_id: str) -> int:
        from support.verify import diff_target

        return len(diff_target(self.sink, self.mapping, location_id, admin.dump(), limit=10**7))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=20_000, help="contacts in the location (default 20000)")
    parser.add_argument("--changes", default="10,100,1000", help="comma-separated K")
    parser.add_argument("--rate-limit", default="100/1", help="sandbox burst limit '<requests>/<seconds>'")
    parser.add_argument("--latency-ms", type=int, default=20, help="added latency per request")
    parser.add_argument("--skip-polling-convergence", action="store_true",
                        help="skip the whole-location sweep that makes polling converge (~1 request per contact)")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from airflow_provider_contacts.sync import SyncConfig
    from airflow_provider_contacts.sync.events import sqlalchemy_engine
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
    from airflow_provider_contacts.webhooks.store import WebhookEventStore
    from ghl_sandbox.config import SandboxConfig
    from ghl_sandbox.testing import SandboxServer

    ks = [int(k) for k in args.changes.split(",")]
    cfg = SandboxConfig(seed=7, contacts=args.contacts, rate_limit=args.rate_limit, latency_ms=args.latency_ms,
                        webhook_time_scale=0.001)
    out: dict[str, Any] = {"benchmark": "bench_events", "contacts": args.contacts, "rate_limit": args.rate_limit,
                           "latency_ms": args.latency_ms, "rounds": []}
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(cfg, subprocess=True, startup_timeout_s=900) as sandbox:
        os.environ["AIRFLOW_CONN_GHL_DEFAULT"] = sandbox.conn_json()
        admin, location = sandbox.admin, sandbox.location_id
        clock = Clock()
        ev_path, poll_path = Path(tmp) / "events.sqlite", Path(tmp) / "polling.sqlite"
        print(f"--- {args.contacts} contacts (rate limit {args.rate_limit}, latency {args.latency_ms} ms)", flush=True)
        events_target = Target(ev_path, True, clock)
        report, wall = Target(ev_path, False, clock).run()
        print(f"full load: {report['requests']} requests, {wall:.1f} s", flush=True)
        out["full_load"] = {"requests": report["requests"], "wall_s": round(wall, 1)}
        copy_sqlite(ev_path, poll_path)
        polling_target = Target(poll_path, False, clock)
        store = WebhookEventStore(engine=sqlalchemy_engine(EmbeddedSqliteHook(ev_path)))
        store.ensure_table()
        server, url = serve_receiver(store, admin.webhook_keys())
        admin.subscribe_webhook(url, location)
        events_target.run()  # the first run with events: sets the backstop's clocks (scans once)
        header = f"{'K':>6} {'mode':<8} {'requests':>9} {'run s':>8} {'diffs left':>11}  notes"
        print(header, flush=True)
        print("-" * len(header), flush=True)
        for k in ks:
            admin.clear_webhook_deliveries()
            done = make_changes(admin, k, rng)
            log = admin.wait_for_webhooks(timeout_s=120)
            delivered = log["by_outcome"].get("delivered", 0)
            ev_report, ev_wall = events_target.run()
            ev_diff = events_target.differences(admin, location)
            po_report, po_wall = polling_target.run(SyncConfig())
            po_diff = polling_target.differences(admin, location)
            e = ev_report["events"]
            row = {
                "k": k, "changes": done, "events_delivered": delivered,
                "events": {"requests": ev_report["requests"], "wall_s": round(ev_wall, 2), "differences": ev_diff,
                           "applied": e["applied"], "deletion_scan": e["deletion_scan"], "sweep": e["sweep"],
                           "requests_minus_k": ev_report["requests"] - k},
                "polling": {"requests": po_report["requests"], "wall_s": round(po_wall, 2), "differences": po_diff,
                            "swept_contacts": po_report["sweep"]["contacts"],
                            "scanned_contacts": po_report["contacts_scanned"]},
            }
            out["rounds"].append(row)
            print(f"{k:>6} {'events':<8} {ev_report['requests']:>9} {ev_wall:>8.1f} {ev_diff:>11}  "
                  f"{e['applied']} events applied ({delivered} delivered); requests - K = {ev_report['requests'] - k}",
                  flush=True)
            print(f"{k:>6} {'polling':<8} {po_report['requests']:>9} {po_wall:>8.1f} {po_diff:>11}  "
                  f"scan {po_report['contacts_scanned']} ids, sweep {po_report['sweep']['contacts']} contacts; "
                  f"x{po_report['requests'] / max(1, ev_report['requests']):.1f} the requests of events", flush=True)
        # The hourly backstop of each mode, one hour later with nothing changed.
        clock.offset += timedelta(hours=1)
        ev_report, ev_wall = events_target.run()
        po_report, po_wall = polling_target.run(SyncConfig())
        out["hourly_backstop"] = {
            "events": {"requests": ev_report["requests"], "wall_s": round(ev_wall, 2),
                       "deletion_scan": ev_report["events"]["deletion_scan"], "sweep_contacts": ev_report["sweep"]["contacts"]},
            "polling": {"requests": po_report["requests"], "wall_s": round(po_wall, 2),
                        "sweep_contacts": po_report["sweep"]["contacts"]},
        }
        print(f"hourly backstop, nothing changed: events {ev_report['requests']} requests "
              f"(sweep {ev_report['sweep']['contacts']} contacts, deletion scan {ev_report['events']['deletion_scan']}); "
              f"polling {po_report['requests']} requests (scan + sweep {po_report['sweep']['contacts']} contacts)",
              flush=True)
        if not args.skip_polling_convergence:
            config = SyncConfig(sweep_period=timedelta(hours=1), schedule_interval=timedelta(hours=1))
            po_report, po_wall = polling_target.run(config)
            po_diff = polling_target.differences(admin, location)
            out["polling_convergence"] = {"requests": po_report["requests"], "wall_s": round(po_wall, 1),
                                          "differences": po_diff}
            print(f"polling converges only with a whole-location sweep: {po_report['requests']} requests, "
                  f"{po_wall:.1f} s, {po_diff} differences left", flush=True)
        admin.unsubscribe_webhook(url)
        server.should_exit = True
        store.dispose()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
