"""Benchmark of the reconciliation's progress lines on a long first load.

A sandbox HighLevel API runs in a child process with ``--contacts`` contacts (default 20,000)
and HighLevel's real burst limit (``--rate-limit``, default ``100/10``: 100 requests per 10 s per
location). One full reconciliation (the first load) runs here into a fresh SQLite file with the
shipped mapping and the default progress interval (30 s). Every log line of the engine is
captured with the time it was written. Printed at the end:

- total wall time and the engine's own duration, requests (429s, retries), rows written;
- the number of progress lines and the largest gap between two consecutive lines, counting the
  start of the run and its final report as lines too (the issue asks for <= 30 s);
- how good the first time-left estimate was: the ``eta`` of the first contacts-phase line with a
  known total against the time the phase really took from that line;
- the first and the last progress line.

The last line is one JSON object with every figure; the exit status is 1 when the largest gap
exceeds the progress interval (``--interval-s``, default 30 s; ``--slack-s`` adds a tolerance, default 0).

Run it in the background (it takes over half an hour at the default size)::

    nohup .venv/bin/python benchmarks/bench_progress.py > /tmp/bench_progress.log 2>&1 &

and a quick check first with ``--contacts 600 --rate-limit 100/10``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

ENGINE_LOGGER = "airflow_provider_contacts.sync.engine"
_ETA = re.compile(r"eta=(?:(\d+)h(\d+)m|(\d+)m(\d+)s|(\d+)s)$")


class _Capture(logging.Handler):
    """Keeps (monotonic time, message) of every record of the engine's logger; echoes them."""

    def __init__(self, echo: bool) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.lines.append((time.monotonic(), message))
        if self.echo and message.startswith("progress "):
            print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def eta_seconds(line: str) -> float | None:
    """The ``eta=`` of a progress line in seconds (``None`` for ``eta=unknown``)."""
    match = _ETA.search(line)
    if not match:
        return None
    h, hm, m, ms, s = match.groups()
    if h is not None:
        return int(h) * 3600 + int(hm) * 60
    if m is not None:
        return int(m) * 60 + int(ms)
    return float(s)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ghl_sandbox.config import SandboxConfig
    from ghl_sandbox.testing import SandboxServer

    cfg = SandboxConfig(seed=11, contacts=args.contacts, rate_limit=args.rate_limit, latency_ms=args.latency_ms)
    print(f"--- sandbox: {args.contacts} contacts, rate limit {args.rate_limit}, latency {args.latency_ms} ms",
          flush=True)
    # A generous start-up time: seeding 20,000 contacts on a busy 2-core machine takes a while.
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(cfg, subprocess=True, startup_timeout_s=600) as sandbox:
        os.environ["AIRFLOW_CONN_GHL_BENCH"] = sandbox.conn_json()
        from airflow_provider_contacts.hooks.contacts import ContactsHook
        from airflow_provider_contacts.sync import DEFAULT_MAPPING_FILE, FieldMapping, ReconcileEngine, SqlSink, SyncConfig
        from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

        capture = _Capture(echo=not args.quiet)
        logger = logging.getLogger(ENGINE_LOGGER)
        logger.addHandler(capture)
        logger.setLevel(logging.INFO)
        mapping = FieldMapping.load(DEFAULT_MAPPING_FILE)
        hook = ContactsHook(ghl_conn_id="ghl_bench")
        config = SyncConfig(full_sweep=True, progress_interval_s=args.interval_s)
        started = time.monotonic()
        try:
            with SqlSink(EmbeddedSqliteHook(Path(tmp) / "bench.sqlite"), mapping) as sink:
                report = ReconcileEngine(hook, sink, mapping, config).run()
        finally:
            hook.close()
            logger.removeHandler(capture)
        finished = time.monotonic()
    return figures(report.to_dict(), capture.lines, started, finished, args)


def figures(report: dict[str, Any], lines: list[tuple[float, str]], started: float, finished: float,
            args: argparse.Namespace) -> dict[str, Any]:
    progress = [(t, m) for t, m in lines if m.startswith("progress ")]
    moments = [started] + [t for t, _ in progress] + [finished]
    gaps = [b - a for a, b in zip(moments, moments[1:])]
    # The first contacts-phase line that knows its total, and when the phase really ended (the
    # first line of the next phase).
    eta_check: dict[str, Any] = {}
    contacts = [(t, m) for t, m in progress if "phase=contacts " in m]
    for t, m in contacts:
        eta = eta_seconds(m)
        if eta is not None and "/unknown" not in m:
            after = [t2 for t2, m2 in progress if t2 > t and "phase=contacts " not in m2]
            end = after[0] if after else finished
            eta_check = {"eta_s": eta, "actual_s": round(end - t, 1), "line": m}
            break
    rows = {t: c["inserted"] + c["updated"] + c["deleted"] for t, c in report["tables"].items()}
    return {
        "benchmark": "bench_progress",
        "contacts": args.contacts,
        "rate_limit": args.rate_limit,
        "latency_ms": args.latency_ms,
        "interval_s": args.interval_s,
        "wall_s": round(finished - started, 1),
        "engine_s": report["duration_s"],
        "requests": report["requests"],
        "throttled": report["throttled"],
        "retries": report["retries"],
        "rows": rows,
        "progress_lines": len(progress),
        "max_gap_s": round(max(gaps), 2),
        "first_line": progress[0][1] if progress else None,
        "last_line": progress[-1][1] if progress else None,
        "eta_check": eta_check,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=20_000, help="contacts in the sandbox location")
    parser.add_argument("--rate-limit", default="100/10", help="sandbox burst limit '<requests>/<seconds>'")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added latency per request (ms)")
    parser.add_argument("--interval-s", type=float, default=30.0, help="the engine's progress interval (s)")
    parser.add_argument("--slack-s", type=float, default=0.0,
                        help="allowed overshoot of the interval (a line is written after a committed batch)")
    parser.add_argument("--quiet", action="store_true", help="do not echo the progress lines as they come")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = run(args)
    limit = args.interval_s + args.slack_s
    print(f"total time        {out['wall_s']:.1f} s (engine {out['engine_s']:.1f} s)")
    print(f"requests          {out['requests']} (429s {out['throttled']}, retries {out['retries']})")
    print(f"rows written      {out['rows']}")
    print(f"progress lines    {out['progress_lines']}")
    print(f"max gap           {out['max_gap_s']:.1f} s between progress lines (limit {limit:.0f} s: "
          f"{'OK' if out['max_gap_s'] <= limit else 'TOO LONG'})")
    if out["eta_check"]:
        print(f"first eta         {out['eta_check']['eta_s']:.0f} s predicted, the phase took "
              f"{out['eta_check']['actual_s']:.0f} s after that line")
    print(f"first line        {out['first_line']}")
    print(f"last line         {out['last_line']}")
    print(json.dumps(out))
    return 0 if out["max_gap_s"] <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
