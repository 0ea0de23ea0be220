"""Benchmark of agency scale: K locations synced at once, and two processes on one location.

A sandbox HighLevel API runs in a child process with 10 locations of ``--contacts`` contacts each and
a burst limit per (app, location) of ``--rate-limit`` (default ``20/2``: HighLevel's 10 requests/s
per location, 100 per 10 s, in a window compressed 5 times, so a short run is mostly steady state;
``--rate-limit 100/10`` runs the real window). Every worker is a separate process (spawned, its
imports done before the clock starts), as on Celery workers or Kubernetes pods.

1. **K = 1, 3, 10 locations at once**: each process runs a full reconcile of its own location into
   its own SQLite file (``--workload fetch``: ``--requests`` contact reads on 4 threads instead,
   the limiter alone). Printed: the requests the sandbox admitted, the wall time of the whole batch
   with its floor (a strict sliding window admits ``max`` at once, then ``max`` per window, so
   ``R`` requests need at least ``(ceil(R / max) - 1) x window`` seconds), the aggregate requests/s
   against K x the per-location limit ``max / window`` (goal: ratio >= 0.9), the 429s in % of the
   requests (goal <= 1 %) and the peak requests any location saw in one window.
2. **2 processes sharing one location**: each fetches ``--shared-requests`` contacts with 4
   threads, (a) one process alone, (b) two processes each with its own in-process limiter (no
   Redis), (c) two processes sharing the Redis limiter (``rate_limit_redis_conn_id``). Printed:
   429s and wall time of each (goal: (c) has no more 429s than (a)). Needs ``--redis-url``
   (default ``GHL_TEST_REDIS_URL``, else ``redis://127.0.0.1:6379/0``); skipped if Redis does not answer.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO / "dags" / "ghl_contacts_mapping.yaml"
REDIS_CONN_ID = "bench_agency_redis"


def _worker(kind: str, env: dict[str, str], target: str, ids: list[str], n_requests: int,
            ready: Any, go: Any, out: Any) -> None:
    """One worker process: ``kind`` "sync" (a full reconcile into ``target``) or "fetch"
    (``n_requests`` GET /contacts/{id} on 4 threads). Puts its figures on ``out``."""
    os.environ.update(env)
    import logging

    logging.disable(logging.WARNING)
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

    hook = ContactsHook()
    hook.settings  # noqa: B018 - read the connection before the clock starts
    if env.get("AIRFLOW_CONN_" + REDIS_CONN_ID.upper()):
        import airflow.providers.redis.hooks.redis  # noqa: F401
    mapping = FieldMapping.load(MAPPING_FILE)
    ready.put(os.getpid())
    go.wait()
    started = time.time()
    if kind == "sync":
        with SqlSink(EmbeddedSqliteHook(target), mapping) as sink:
            report = ReconcileEngine(hook, sink, mapping, SyncConfig(full_sweep=True)).run().to_dict()
        requests, throttled = report["requests"], report["throttled"]
    else:
        left = iter(range(n_requests))
        lock = threading.Lock()

        def fetch() -> None:
            while True:
                with lock:
                    i = next(left, None)
                if i is None:
                    return
                hook.get_contact(ids[i % len(ids)])

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        requests, throttled = hook.stats.requests, hook.stats.throttled
    out.put({"pid": os.getpid(), "start": started, "end": time.time(), "requests": requests, "throttled": throttled})


def run_batch(jobs: list[tuple[str, dict[str, str], str, list[str], int]]) -> list[dict[str, Any]]:
    """Start one process per job, wait until all are ready, start them together; their figures."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(*job, ready, go, out)) for job in jobs]
    for p in procs:
        p.start()
    for _ in procs:
        _get(ready, procs)
    go.set()
    results = [_get(out, procs) for _ in procs]
    for p in procs:
        p.join()
    return results


def _get(q: Any, procs: list[Any]) -> Any:
    while True:  # a child that dies must fail the benchmark, not hang it
        try:
            return q.get(timeout=5)
        except queue_module.Empty:
            dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead:
                raise RuntimeError(f"a worker process exited with {dead}") from None


def _redis_env(url: str, prefix: str) -> dict[str, str]:
    parts = urlsplit(url)
    conn: dict[str, Any] = {"conn_type": "redis", "host": parts.hostname or "127.0.0.1", "port": parts.port or 6379,
                            "extra": {"db": int((parts.path or "/0").strip("/") or 0)}}
    if parts.password:
        conn["password"] = parts.password
    return {f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": json.dumps(conn)}


def _redis_up(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:  # noqa: BLE001 - any failure: no Redis for this run
        return False


def _usage(sandbox: Any) -> dict[str, dict[str, Any]]:
    return {row["location_id"]: row for row in sandbox.admin.counters()["limits"]}


def floor_seconds(requests: int, limit: tuple[int, float]) -> float:
    """The fewest seconds a strict sliding window of ``max`` per ``window`` needs between the first
    and the last of ``requests`` (the first ``max`` at once, then ``max`` more per window)."""
    max_requests, window = limit
    return max(0, math.ceil(requests / max_requests) - 1) * window


def bench_locations(sandbox: Any, k: int, locations: list[str], tokens: dict[str, str], limit: tuple[int, float],
                    redis_env: dict[str, str], prefix: str, tmp: str, workload: str = "sync",
                    requests: int = 300) -> dict[str, Any]:
    """K processes, each syncing (or fetching ``requests`` contacts of) its own location, all at once."""
    sandbox.admin.reset_counters()
    jobs = []
    for loc in locations[:k]:
        extra = {"rate_limit_redis_conn_id": REDIS_CONN_ID, "rate_limit_key_prefix": prefix} if redis_env else {}
        env = {"AIRFLOW_CONN_GHL_DEFAULT": sandbox.conn_json(token=tokens[loc], location_id=loc, **extra), **redis_env}
        ids = [c["id"] for c in sandbox.admin.dump(loc)["contacts"]] if workload == "fetch" else []
        jobs.append((workload, env, str(Path(tmp) / f"k{k}-{loc}.sqlite"), ids, requests))
    results = run_batch(jobs)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    usage = _usage(sandbox)
    rows = [usage[loc] for loc in locations[:k]]
    admitted = sum(r["admitted"] for r in rows)
    throttled = sum(r["throttled"] for r in rows)
    per_location_rate = limit[0] / limit[1]
    floor_s = max(floor_seconds(r["admitted"], limit) for r in rows)
    return {
        "k": k, "requests": admitted, "requests_per_location": [r["admitted"] for r in rows],
        "wall_s": round(wall, 2), "aggregate_rps": round(admitted / wall, 2),
        "k_x_limit_rps": round(k * per_location_rate, 2), "ratio": round(admitted / wall / (k * per_location_rate), 3),
        "floor_s": round(floor_s, 2), "floor_rps": round(admitted / floor_s, 2) if floor_s else None,
        "floor_ratio": round(floor_s / wall, 3) if floor_s else None,
        "throttled": throttled, "throttled_pct": round(100.0 * throttled / max(1, admitted + throttled), 2),
        "peak_max": max(r["peak"] for r in rows), "limit": limit[0],
    }


def bench_shared(sandbox: Any, location: str, token: str, ids: list[str], n: int, redis_env: dict[str, str],
                 limit: tuple[int, float], prefix: str) -> dict[str, Any]:
    """One process alone, two without Redis, two with Redis, on one location."""
    out: dict[str, Any] = {}
    for name, procs, shared in (("one_process", 1, False), ("two_processes_no_redis", 2, False),
                                ("two_processes_redis", 2, True)):
        time.sleep(limit[1] * 1.2)  # let the previous scenario's window drain
        sandbox.admin.reset_counters()
        extra = ({"rate_limit_redis_conn_id": REDIS_CONN_ID, "rate_limit_key_prefix": f"{prefix}-{name}"}
                 if shared else {})
        env = {"AIRFLOW_CONN_GHL_DEFAULT": sandbox.conn_json(token=token, location_id=location, **extra), **redis_env}
        results = run_batch([("fetch", env, "", ids, n)] * procs)
        wall = max(r["end"] for r in results) - min(r["start"] for r in results)
        row = _usage(sandbox)[location]
        out[name] = {"processes": procs, "requests": sum(r["requests"] for r in results), "admitted": row["admitted"],
                     "throttled": row["throttled"], "peak": row["peak"], "wall_s": round(wall, 2),
                     "rps": round(row["admitted"] / wall, 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="1,3,10", help="comma-separated numbers of locations synced at once (0: none)")
    parser.add_argument("--contacts", type=int, default=150, help="contacts per location")
    parser.add_argument("--rate-limit", default="20/2", help="sandbox burst limit per location '<requests>/<seconds>'")
    parser.add_argument("--shared-requests", type=int, default=120, help="requests per process, part 2")
    parser.add_argument("--workload", choices=("sync", "fetch"), default="sync",
                        help="part 1: a full reconcile per location, or --requests contact reads on 4 threads "
                             "(little CPU per request: the limiter alone, on a busy machine)")
    parser.add_argument("--requests", type=int, default=300, help="part 1 with --workload fetch: requests per location")
    parser.add_argument("--redis-url", default=os.environ.get("GHL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    from ghl_sandbox.config import SandboxConfig, parse_rate_limit
    from ghl_sandbox.testing import SandboxServer

    limit = parse_rate_limit(args.rate_limit)
    if limit is None:
        parser.error("--rate-limit must be a limit, e.g. 20/2")
    ks = [int(k) for k in args.ks.split(",") if k.strip() and int(k) > 0]  # --ks 0: part 2 only
    redis_ok = _redis_up(args.redis_url)
    prefix = f"bench-agency-{uuid.uuid4().hex[:8]}"
    redis_env = _redis_env(args.redis_url, prefix) if redis_ok else {}
    cfg = SandboxConfig(seed=7, contacts=args.contacts, locations=max(ks, default=1), rate_limit=args.rate_limit,
                        tasks_per_contact=0.5, notes_per_contact=1.0)
    figures: dict[str, Any] = {"benchmark": "bench_agency", "rate_limit": args.rate_limit, "workload": args.workload,
                               "contacts_per_location": args.contacts, "redis": redis_ok}
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(cfg, subprocess=True) as sandbox:
        locations = list(sandbox.admin.info()["locations"])
        tokens = {loc: sandbox.admin.issue_token(location_id=loc, lifetime_s=86_400) for loc in locations}
        print(f"--- K locations at once, workload {args.workload} (limit {args.rate_limit} per location, "
              f"{args.contacts} contacts each, "
              f"shared limiter {'on' if redis_ok else 'off: no Redis'})", flush=True)
        figures["locations"] = []
        for k in ks:
            time.sleep(limit[1] * 1.2)
            r = bench_locations(sandbox, k, locations, tokens, limit, redis_env, prefix, tmp, args.workload,
                                args.requests)
            figures["locations"].append(r)
            print(f"K={k:<3} requests {r['requests']:>5}  wall {r['wall_s']:>6.1f} s (floor {r['floor_s']:.0f} s)  "
                  f"aggregate {r['aggregate_rps']:>6.1f} req/s vs K x limit {r['k_x_limit_rps']:.1f}: ratio "
                  f"{r['ratio']:.2f}  429s {r['throttled']} ({r['throttled_pct']:.2f} %)  "
                  f"peak {r['peak_max']}/{r['limit']} per window", flush=True)
        if redis_ok:
            ids = [c["id"] for c in sandbox.admin.dump(locations[0])["contacts"]]
            print(f"--- 2 processes sharing one location ({args.shared_requests} requests each, 4 threads)", flush=True)
            shared = bench_shared(sandbox, locations[0], tokens[locations[0]], ids, args.shared_requests, redis_env, limit,
                                  prefix)
            figures["shared_location"] = shared
            for name, r in shared.items():
                print(f"{name:<24} processes {r['processes']}  admitted {r['admitted']:>5}  429s {r['throttled']:>4}  "
                      f"peak {r['peak']}/{limit[0]}  wall {r['wall_s']:>6.1f} s  {r['rps']:.1f} req/s", flush=True)
        else:
            print("--- 2 processes sharing one location: skipped (Redis does not answer at --redis-url)", flush=True)
    if redis_ok:
        _cleanup(args.redis_url, prefix)
    print(json.dumps(figures))
    return 0


def _cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    sys.exit(main())
