"""Benchmark of the reconciliation: full and incremental sync at several location sizes.

For each size (``--sizes``, default 1000 and 20000 contacts) a sandbox HighLevel API runs in a
child process (rate limit ``--rate-limit``, default 100 requests/s, ``--latency-ms`` 20 per
request, like the hook benchmark). Each sync runs in its own child process into a fresh SQLite
file, so its peak RSS is its own. Printed per run:

- requests vs the floor: the fewest requests that can produce the result through the API
  (full: custom fields + contact pages of 500 + one notes call per contact + task search pages
  of 100; incremental: custom fields + changed-contact pages + id-scan pages + notes and task
  pages for the changed contacts and the sweep slice);
- wall time vs the floor (floor requests at the rate limit);
- peak RSS of the sync process (MiB, ``VmHWM``).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO / "dags" / "ghl_contacts_mapping.yaml"


def _sync_child(conn_json: str, target: str, full: bool, queue: Any) -> None:
    """One sync in a child process; puts (report dict, peak RSS MiB) on ``queue``."""
    os.environ["AIRFLOW_CONN_GHL_DEFAULT"] = conn_json
    import logging

    logging.disable(logging.WARNING)
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

    mapping = FieldMapping.load(MAPPING_FILE)
    with SqlSink(EmbeddedSqliteHook(target), mapping) as sink:
        report = ReconcileEngine(ContactsHook(), sink, mapping, SyncConfig(full_sweep=full)).run()
    queue.put((report.to_dict(), peak_rss_mib()))


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB: ``VmHWM``, which (unlike ``ru_maxrss``, kept across exec)
    starts afresh in a spawned process, so the parent's memory is not counted."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_sync(conn_json: str, target: str, full: bool) -> tuple[dict[str, Any], float, float]:
    """Run one sync in a fresh process; returns (report, wall seconds, peak RSS MiB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    started = time.monotonic()
    proc = ctx.Process(target=_sync_child, args=(conn_json, target, full, queue))
    proc.start()
    while True:  # a child that dies before reporting must fail the benchmark, not hang it
        try:
            report, rss = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"sync process exited with {proc.exitcode} before reporting") from None
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"sync process exited with {proc.exitcode}")
    return report, time.monotonic() - started, rss


def floor_full(contacts: int, tasks: int) -> int:
    """Fewest requests for a first load."""
    return 1 + math.ceil(max(contacts, 1) / 500) + contacts + math.ceil(tasks / 100)


def floor_incremental(contacts: int, changed: int, swept: int) -> int:
    """Fewest requests for an incremental run with ``changed`` contacts and a sweep of ``swept``."""
    reread = changed + swept
    return 1 + math.ceil(max(changed, 1) / 500) + math.ceil(contacts / 500) + reread + math.ceil(reread / 100)


def bench_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    from ghl_sandbox.config import SandboxConfig, parse_rate_limit
    from ghl_sandbox.testing import SandboxServer
    from ghl_sandbox.scenario import apply_mutations

    limit = parse_rate_limit(args.rate_limit)
    rate = limit[0] / limit[1] if limit else float("inf")
    cfg = SandboxConfig(seed=7, contacts=size, rate_limit=args.rate_limit, latency_ms=args.latency_ms)
    out: dict[str, Any] = {"contacts": size}
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(cfg, subprocess=True) as sandbox:
        target = str(Path(tmp) / "bench.sqlite")
        truth = sandbox.admin.dump()
        n_tasks = len(truth["tasks"])
        del truth
        report, wall, rss = run_sync(sandbox.conn_json(), target, full=True)
        out["full"] = _figures(report, wall, rss, floor_full(size, n_tasks), rate)
        done = apply_mutations(sandbox.admin, scale=max(1, size // 1000))
        changed = len(done.contacts_created) + len(done.contacts_updated)
        report, wall, rss = run_sync(sandbox.conn_json(), target, full=False)
        out["incremental"] = _figures(
            report, wall, rss, floor_incremental(size, changed, report["sweep"]["contacts"]), rate
        )
        out["incremental"]["changed_contacts"] = changed
    return out


def _figures(report: dict[str, Any], wall: float, rss: float, floor: int, rate: float) -> dict[str, Any]:
    wall_floor = floor / rate if math.isfinite(rate) else 0.0
    return {
        "requests": report["requests"],
        "requests_floor": floor,
        "throttled": report["throttled"],
        "engine_s": report["duration_s"],
        "wall_s": round(wall, 2),
        "wall_floor_s": round(wall_floor, 2),
        "peak_rss_mib": round(rss, 1),
        "rows": {t: c["inserted"] + c["updated"] + c["deleted"] for t, c in report["tables"].items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000", help="comma-separated contact counts")
    parser.add_argument("--rate-limit", default="100/1", help="sandbox burst limit '<requests>/<seconds>'")
    parser.add_argument("--latency-ms", type=int, default=20, help="added latency per request")
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"--- {size} contacts (rate limit {args.rate_limit}, latency {args.latency_ms} ms)", flush=True)
        result = bench_size(size, args)
        for kind in ("full", "incremental"):
            f = result[kind]
            print(
                f"{kind:<12} requests {f['requests']:>6} (floor {f['requests_floor']:>6}, "
                f"x{f['requests'] / f['requests_floor']:.2f})  wall {f['wall_s']:>7.1f} s "
                f"(floor {f['wall_floor_s']:>6.1f} s, engine {f['engine_s']:.1f} s)  "
                f"peak RSS {f['peak_rss_mib']:.0f} MiB  429s {f['throttled']}",
                flush=True,
            )
        results.append(result)
    print(json.dumps({"benchmark": "bench_sync", "rate_limit": args.rate_limit, "latency_ms": args.latency_ms,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
