"""Reliability soak: the scenarios of ``tests/test_reliability.py``, repeated on a bigger location.

Each round reseeds a sandbox HighLevel API (a child process on 127.0.0.1, ``--contacts`` contacts,
seed ``--seed`` + round) and runs, each into a fresh SQLite target:

a. 15 % of all requests faulted (500/502/503/504, delays, dropped answers, applied-then-lost) plus
   15 % of the other writes applied-then-lost, during a reconcile and during ``--writes`` creates of
   contacts (each with a task and a note, and more tasks and notes on existing contacts) through
   the hook;
b. ``--kills`` reconcile child processes killed with SIGKILL at request counts from a seeded RNG,
   the CRM changing between kills, then a run to the end;
c. two reconciles of the location into one target at once (first loads, then incremental); also
   into PostgreSQL with ``--postgres-url`` (default ``$GHL_TEST_POSTGRES_URL``; loopback only; a
   schema of its own, dropped after);
d. OAuth access tokens expiring every 2 s while a reconcile child and this process share the
   connection's single-use refresh tokens (file token store).

Every scenario ends with the checks of ``support.chaos``: the target equals
the sandbox, no row or record lost, no duplicate, no refresh token reused, no token in any log or
run report. Bounded: ``--rounds`` rounds, no new round after ``--max-minutes``. Talks to 127.0.0.1
only. Prints one table row per scenario run, the totals, and as the last line one JSON object:
``runs``, ``faults_injected`` (by kind), ``kills``, ``rows_lost``, ``duplicates``,
``reused_refresh_tokens``, ``token_leaks``, ``wall_time_s`` and more. Exit status 1 when any
check failed.

    .venv/bin/python benchmarks/soak_reliability.py                 # defaults: a few minutes
    .venv/bin/python benchmarks/soak_reliability.py --rounds 10 --contacts 400 --kills 5
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO / "dags" / "ghl_contacts_mapping.yaml"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # support.chaos: the reliability scenarios the tests run

COLUMNS = ("round", "scenario", "target", "secs", "runs", "kills", "faults", "lost_ans", "writes", "failed",
           "rows_lost", "dups", "rec_lost", "refresh", "reused", "leaks", "ok")


def _loopback_url(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"--postgres-url must point at 127.0.0.1 / localhost (got host {host!r}): the soak "
                         "only talks to this machine")
    return url


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four scenarios (default 3)")
    parser.add_argument("--contacts", type=int, default=150, help="contacts in the location (default 150)")
    parser.add_argument("--writes", type=int, default=8, help="contacts created through the hook per round (default 8)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLed runs per round (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the location and the kill points (default 7)")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="start no round after this (default 10)")
    parser.add_argument("--postgres-url", default=os.environ.get("GHL_TEST_POSTGRES_URL") or None,
                        help="also run scenario c into this PostgreSQL (loopback only; default: "
                             "$GHL_TEST_POSTGRES_URL if set), e.g. postgresql://postgres@127.0.0.1:5432/test; "
                             "'off' for none")
    parser.add_argument("--workdir", default=None, help="where targets and child logs go (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.contacts < 20 or args.writes < 1 or args.kills < 1 or args.max_minutes <= 0:
        raise SystemExit("--rounds, --writes, --kills >= 1, --contacts >= 20 and --max-minutes > 0")
    if args.postgres_url and args.postgres_url.strip().lower() in ("off", "none", ""):
        args.postgres_url = None
    if args.postgres_url:
        _loopback_url(args.postgres_url)
    return args


def _row(round_no: int, target: str, result: Any) -> dict[str, Any]:
    return {
        "round": round_no, "scenario": result.name, "target": target, "secs": f"{result.seconds:.1f}",
        "runs": result.runs, "kills": result.kills, "faults": sum(result.faults_by_kind.values()),
        "lost_ans": result.applied_then_lost, "writes": result.writes, "failed": result.failed_calls,
        "rows_lost": result.rows_lost, "dups": result.duplicates, "rec_lost": result.records_lost,
        "refresh": result.refreshes, "reused": result.reused_refresh_tokens, "leaks": result.token_leaks,
        "ok": "yes" if result.ok else "NO",
    }


def _print_row(row: dict[str, Any], out: Any) -> None:
    widths = {c: max(len(c), {"scenario": 12, "target": 10}.get(c, 6)) for c in COLUMNS}
    print("  ".join(str(row[c]).rjust(widths[c]) if c != "scenario" else str(row[c]).ljust(widths[c]) for c in COLUMNS),
          file=out, flush=True)


class _OwnOutput:
    """This process's stdout and stderr (its log records, Airflow's console logging, any print) go
    to ``path`` while active, to be scanned for tokens; the soak's table goes to ``console``, the
    original stdout."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.console: Any = None
        self._saved: list[int] = []

    def __enter__(self) -> _OwnOutput:
        sys.stdout.flush()
        sys.stderr.flush()
        self.console = os.fdopen(os.dup(1), "w", buffering=1)
        self._saved = [os.dup(1), os.dup(2)]
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, saved in zip((1, 2), self._saved):
            os.dup2(saved, target)
            os.close(saved)
        self.console.close()

    def text(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""


def _scenarios(args: argparse.Namespace, chaos: Any, sb: Any, workers: Any, workdir: Path,
               round_no: int) -> list[tuple[str, Any]]:
    """The scenario runs of one round: ``(target kind, callable returning a ScenarioResult)``."""
    rdir = workdir / f"round-{round_no}"
    rdir.mkdir(exist_ok=True)
    tag = f"r{round_no}{uuid.uuid4().hex[:4]}"
    runs: list[tuple[str, Any]] = [
        ("sqlite", lambda: chaos.faults_scenario(
            sb, chaos.TargetSpec(path=str(rdir / "faults.sqlite")), MAPPING_FILE, tag=tag, writes=args.writes)),
        ("sqlite", lambda: chaos.kill_scenario(
            sb, chaos.TargetSpec(path=str(rdir / "kills.sqlite")), MAPPING_FILE, workers,
            seed=args.seed * 1000 + round_no, kills=args.kills)),
        ("sqlite", lambda: chaos.concurrent_scenario(
            sb, chaos.TargetSpec(path=str(rdir / "twins.sqlite")), MAPPING_FILE, workers, seed=args.seed + round_no)),
    ]
    if args.postgres_url:
        pg = chaos.TargetSpec(url=args.postgres_url, schema=f"ghl_soak_{uuid.uuid4().hex[:10]}")

        def twins_pg() -> Any:
            try:
                return chaos.concurrent_scenario(sb, pg, MAPPING_FILE, workers, seed=args.seed + round_no)
            finally:
                pg.drop()

        runs.append(("postgresql", twins_pg))
    runs.append(("sqlite", lambda: chaos.oauth_expiry_scenario(
        sb, chaos.TargetSpec(path=str(rdir / "oauth.sqlite")), MAPPING_FILE, workers, workdir=rdir, tag=tag)))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ghl-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow-home"))

    from support import chaos
    from ghl_sandbox.testing import SandboxConfig, SandboxServer, token_leaks

    results: list[tuple[int, str, Any]] = []
    rounds_done = 0
    own = _OwnOutput(workdir / "soak-process.log")
    with own:
        out = own.console
        workers = chaos.ReconcileWorkers(workdir / "workers").start()  # imports while the sandbox seeds
        print(f"reliability soak: {args.rounds} round(s), {args.contacts} contacts, {args.writes} writes, "
              f"{args.kills} kills per round, seed {args.seed}; work dir {workdir}", file=out, flush=True)
        _print_row({c: c for c in COLUMNS}, out)
        try:
            with SandboxServer(SandboxConfig(contacts=args.contacts, seed=args.seed, rate_limit=None),
                               subprocess=True) as sb:
                for round_no in range(1, args.rounds + 1):
                    if time.monotonic() - started > args.max_minutes * 60:
                        print(f"time budget of {args.max_minutes} min spent: no round {round_no}", file=out, flush=True)
                        break
                    sb.admin.reset(seed=args.seed + round_no, contacts=args.contacts)
                    for target, run in _scenarios(args, chaos, sb, workers, workdir, round_no):
                        try:
                            result = run()
                        except Exception as exc:  # noqa: BLE001 - a crashed scenario is a failed check
                            result = chaos.ScenarioResult(name="crashed", failed_calls=1,
                                                          notes=[f"{type(exc).__name__}: {str(exc)[:500]}"])
                        results.append((round_no, target, result))
                        _print_row(_row(round_no, target, result), out)
                        for line in result.problems():
                            print(f"    ! {line}", file=out, flush=True)
                    rounds_done = round_no
        finally:
            workers.close()
    # This process's own output (log records, Airflow's console logs) is scanned too.
    process_leaks = len(token_leaks(own.text()))

    faults: Counter[str] = Counter()
    for _, _, r in results:
        faults.update(r.faults_by_kind)
    total = {
        "rounds": rounds_done,
        "contacts": args.contacts,
        "scenario_runs": len(results),
        "runs": sum(r.runs for _, _, r in results),
        "faults_injected": dict(sorted(faults.items())),
        "faults_total": sum(faults.values()),
        "answers_lost_after_apply": sum(r.applied_then_lost for _, _, r in results),
        "hook_writes": sum(r.writes for _, _, r in results),
        "kills": sum(r.kills for _, _, r in results),
        "concurrent_runs_failed_cleanly": sum(r.runs_failed_cleanly for _, _, r in results),
        "oauth_refreshes": sum(r.refreshes for _, _, r in results),
        "expired_token_calls": sum(r.expired_token_calls for _, _, r in results),
        "failed_calls": sum(r.failed_calls for _, _, r in results),
        "rows_lost": sum(r.rows_lost for _, _, r in results),
        "records_lost": sum(r.records_lost for _, _, r in results),
        "duplicates": sum(r.duplicates for _, _, r in results),
        "reused_refresh_tokens": sum(r.reused_refresh_tokens for _, _, r in results),
        "token_leaks": sum(r.token_leaks for _, _, r in results) + process_leaks,
        "target_diffs": sum(len(r.diffs) for _, _, r in results),
        "scenarios_failed": sum(1 for _, _, r in results if not r.ok) + (1 if process_leaks else 0),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print()
    width = max(len(k) for k in total)
    for key, value in total.items():
        print(f"{key.ljust(width)}  {value}")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(total), flush=True)
    return 1 if total["scenarios_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
