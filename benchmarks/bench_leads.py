"""Benchmark of the lead flow (sync/leads/flow.py): 1,000 new leads, then 1,000 updated leads.

A sandbox HighLevel API runs in a child process (rate limit ``--rate-limit``, default 100
requests per second, ten times HighLevel's 100 per 10 s so the run takes a minute, and
``--latency-ms`` 20 per request). The leads live in a fresh SQLite file. Printed per run:

- requests against the minimum: new lead = one duplicate look-up + one create + the template's
  tasks + one note (every benchmark lead has notes); updated lead = one ``PUT`` with its changed
  fields (the look-up is not needed: the link table knows the contact);
- wall time against the rate floor: the minimum requests at the sandbox's rate limit, and what
  the same requests take at HighLevel's burst limit (100 requests / 10 s).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LIVE_RATE = 100 / 10.0  # HighLevel: 100 requests per 10 s per app and location


def make_leads(path: Path, count: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE crm_leads (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT, "
            "company_name TEXT, lifecycle_stage TEXT, notes TEXT, updated_at TEXT)"
        )
        db.executemany(
            "INSERT INTO crm_leads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, f"lead{i}@bench.example.com", f"First{i}", f"Last{i}", f"+1 (720) {200 + i // 10000:03d}-{i % 10000:04d}",
                 f"Company {i % 50}", ("lead", "prospect", "customer")[i % 3], f"Imported lead {i}", "2026-01-01T00:00:00Z")
                for i in range(1, count + 1)
            ],
        )


def run(path: Path, label: str) -> dict[str, Any]:
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync.leads.flow import LeadsEngine
    from airflow_provider_contacts.sync.leads.mapping import LeadMapping
    from airflow_provider_contacts.sync.leads.source import LeadSource
    from airflow_provider_contacts.sync.leads.templates import load_templates
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

    hook = ContactsHook()
    started = time.monotonic()
    with LeadSource(EmbeddedSqliteHook(path)) as source:
        report = LeadsEngine(hook, source, LeadMapping.load(), load_templates()).run()
    wall = time.monotonic() - started
    hook.close()
    print(f"{label}: {report.format_table()}", flush=True)
    return {"report": report.to_dict(), "wall_s": round(wall, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate-limit", default="100/1", help="sandbox rate limit, requests/seconds (default 100/1)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    import logging
    import os

    logging.disable(logging.WARNING)
    from ghl_sandbox.config import SandboxConfig
    from ghl_sandbox.testing import SandboxServer

    from airflow_provider_contacts.sync.leads.templates import load_templates

    per_second = int(args.rate_limit.split("/")[0]) / float(args.rate_limit.split("/")[1])
    tasks = len(load_templates().tasks)
    results: dict[str, Any] = {"leads": args.leads, "rate_limit": args.rate_limit, "latency_ms": args.latency_ms, "tasks_per_lead": tasks}
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(
        SandboxConfig(seed=7, contacts=0, rate_limit=args.rate_limit, latency_ms=args.latency_ms), subprocess=True
    ) as sandbox:
        os.environ["AIRFLOW_CONN_GHL_DEFAULT"] = sandbox.conn_json()
        path = Path(tmp) / "crm.sqlite"
        make_leads(path, args.leads)
        new = run(path, "new leads")
        with sqlite3.connect(path) as db:
            db.execute("UPDATE crm_leads SET first_name = first_name || ' Jr', updated_at = '2026-02-01T00:00:00Z'")
        updated = run(path, "updated leads")
        total_contacts = len(sandbox.admin.dump()["contacts"])
    rows = []
    for name, result, minimum in (
        ("new", new, args.leads * (1 + 1 + tasks + 1)),
        ("update", updated, args.leads * 1),
    ):
        requests = result["report"]["requests"]
        floor_s = minimum / per_second
        rows.append((name, requests, minimum, requests / minimum, result["wall_s"], floor_s, minimum / LIVE_RATE))
        results[name] = {
            "requests": requests,
            "minimum": minimum,
            "requests_ratio": round(requests / minimum, 3),
            "requests_per_lead": round(requests / args.leads, 3),
            "wall_s": result["wall_s"],
            "floor_s": round(floor_s, 1),
            "wall_ratio": round(result["wall_s"] / floor_s, 3),
            "live_floor_s": round(minimum / LIVE_RATE, 1),
            "created": result["report"]["created"],
            "updated": result["report"]["updated"],
            "throttled": result["report"]["throttled"],
            "retries": result["report"]["retries"],
        }
    results["contacts_in_location"] = total_contacts
    print()
    print(f"{args.leads} leads, sandbox rate limit {args.rate_limit} req/s-window, latency {args.latency_ms} ms, {tasks} template tasks")
    print(f"{'run':<8}{'requests':>10}{'minimum':>10}{'ratio':>8}{'wall s':>9}{'floor s':>9}{'ratio':>8}{'at 100/10s':>12}")
    for name, requests, minimum, ratio, wall, floor_s, live in rows:
        print(f"{name:<8}{requests:>10}{minimum:>10}{ratio:>8.2f}{wall:>9.1f}{floor_s:>9.1f}{wall / floor_s:>8.2f}{live:>11.0f}s")
    print(f"contacts in the location afterwards: {total_contacts} (one per lead)")
    print(json.dumps(results))
    return 0 if total_contacts == args.leads else 1


if __name__ == "__main__":
    sys.exit(main())
