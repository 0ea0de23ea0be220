"""Benchmark: a full read of contacts + tasks + notes through ``ContactsHook``.

By default it starts its own sandbox in a child process (1,000 contacts, 20 ms latency, rate limit
100 requests per 1 s), reads everything the way a sync does (contact search pages feeding the
concurrent task/note fan-out), and prints:

* requests sent and 429 answers (client and server counts), retries;
* wall time, and efficiency = floor / wall where floor = minimal requests / allowed rate and the
  minimal requests are ceil(N/500) search pages + the task-search pages the batches need + one
  notes call per contact;
* records lost or duplicated, checked against the sandbox's own dump.

Point it at any HighLevel-compatible server with ``--base-url --token --location-id`` (then the
record check and server counters are skipped, and the rate comes from the answers' headers).
The last line printed is one JSON object with the figures. Nothing here asserts: it measures.

    .venv/bin/python benchmarks/bench_hook.py [--contacts 1000] [--latency-ms 20] [--rate-limit 100/1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ghl-bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

CONN_ID = "ghl_bench"
SEARCH_PAGE = 500


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contacts", type=int, default=1000, help="contacts in the sandbox (default 1000)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="sandbox latency per request (default 20)")
    p.add_argument("--rate-limit", default="100/1", help="sandbox burst limit '<n>/<seconds>' (default 100/1)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="sandbox fault rate 0..1 (default 0)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workers", type=int, default=8, help="fan-out threads (default 8)")
    p.add_argument("--base-url", help="use this HighLevel-compatible server instead of a sandbox")
    p.add_argument("--token", help="bearer token for --base-url")
    p.add_argument("--location-id", help="location id for --base-url")
    args = p.parse_args(argv)
    if args.base_url and not (args.token and args.location_id):
        p.error("--base-url needs --token and --location-id")
    return args


def _minimal_requests(ids: list[str], tasks_per_contact: Counter[str], batch: int, page_limit: int) -> int:
    """ceil(N/500) + the task-search pages of each id batch + one notes call per contact."""
    n = len(ids)
    pages = 0
    for start in range(0, n, batch):
        count = sum(tasks_per_contact[c] for c in ids[start : start + batch])
        pages += max(1, math.ceil(count / page_limit))
    return max(1, math.ceil(n / SEARCH_PAGE)) + pages + n


def run(base_url: str, token: str, location_id: str, workers: int) -> dict[str, Any]:
    """Read everything once; return what was read and the figures of the client side."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "ghl", "host": base_url, "password": token, "extra": {"location_id": location_id}}
    )
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    hook = ContactsHook(ghl_conn_id=CONN_ID)
    ids: list[str] = []
    contact_ids: Counter[str] = Counter()
    task_ids: Counter[str] = Counter()
    note_ids: Counter[str] = Counter()
    tasks_per_contact: Counter[str] = Counter()

    def contact_stream():
        for contact in hook.iter_search_contacts(page_limit=SEARCH_PAGE):
            contact_ids[contact.id] += 1
            ids.append(contact.id)
            yield contact.id

    started = time.monotonic()
    for activity in hook.fetch_tasks_and_notes(contact_stream(), max_workers=workers):
        tasks_per_contact[activity.contact_id] = len(activity.tasks)
        task_ids.update(t.id for t in activity.tasks)
        note_ids.update(n.id for n in activity.notes)
    wall = time.monotonic() - started
    snap = hook.limiter.snapshot()
    return {
        "hook": hook,
        "wall_s": wall,
        "ids": ids,
        "contact_ids": contact_ids,
        "task_ids": task_ids,
        "note_ids": note_ids,
        "tasks_per_contact": tasks_per_contact,
        "rate_per_s": snap.max_requests / snap.interval_s,
        "stats": hook.stats.as_dict(),
    }


def _lost_and_duplicated(expected: set[str], got: Counter[str]) -> tuple[int, int]:
    return len(expected - set(got)), sum(c - 1 for c in got.values() if c > 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse_args(argv)
    server = None
    if args.base_url:
        base_url, token, location_id = args.base_url, args.token, args.location_id
    else:
        from ghl_sandbox.testing import SandboxConfig, SandboxServer

        cfg = SandboxConfig(
            seed=args.seed,
            contacts=args.contacts,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            fault_rate=args.fault_rate,
        )
        server = SandboxServer(cfg, subprocess=True)
        server.__enter__()
        base_url, token, location_id = server.base_url, server.token, server.location_id
    try:
        expected: dict[str, Any] | None = None
        if server is not None:
            expected = server.admin.dump(location_id)
            server.admin.reset_counters()
        result = run(base_url, token, location_id, args.workers)
        server_counts = server.admin.counters() if server is not None else None
    finally:
        if server is not None:
            server.__exit__(None, None, None)

    hook = result["hook"]
    minimal = _minimal_requests(result["ids"], result["tasks_per_contact"], hook.task_batch_size, hook.task_page_limit)
    rate = result["rate_per_s"]
    floor_s = minimal / rate
    stats = result["stats"]
    requests_sent = server_counts["total"] if server_counts else stats["requests"]
    throttled = server_counts["status_429"] if server_counts else stats["throttled"]
    figures: dict[str, Any] = {
        "contacts": len(result["contact_ids"]),
        "tasks": sum(result["task_ids"].values()),
        "notes": sum(result["note_ids"].values()),
        "requests": requests_sent,
        "minimal_requests": minimal,
        "throttled_429": throttled,
        "throttled_pct": round(100.0 * throttled / max(1, requests_sent), 3),
        "retries": stats["retries"],
        "allowed_rate_per_s": rate,
        "floor_s": round(floor_s, 3),
        "wall_s": round(result["wall_s"], 3),
        "efficiency": round(floor_s / result["wall_s"], 3),
        "workers": args.workers,
    }
    if expected is not None:
        lost_c, dup_c = _lost_and_duplicated({c["id"] for c in expected["contacts"]}, result["contact_ids"])
        lost_t, dup_t = _lost_and_duplicated({t["id"] for t in expected["tasks"]}, result["task_ids"])
        lost_n, dup_n = _lost_and_duplicated({n["id"] for n in expected["notes"]}, result["note_ids"])
        figures["records_lost"] = lost_c + lost_t + lost_n
        figures["records_duplicated"] = dup_c + dup_t + dup_n
        figures["server_faults"] = server_counts["faults"] if server_counts else 0

    print(f"{'figure':<22} value")
    print(f"{'-' * 22} {'-' * 12}")
    for key, value in figures.items():
        print(f"{key:<22} {value}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
