"""Reliability scenarios against the sandbox: injected faults, ``kill -9``, concurrent runs and
expiring OAuth tokens, each ending with the same checks.

Used by ``tests/test_reliability.py`` (CI, small sizes) and ``benchmarks/soak_reliability.py``
(repeated rounds). Every scenario returns a :class:`ScenarioResult` whose figures must come out as
``rows_lost == 0``, ``duplicates == 0``, ``reused_refresh_tokens == 0``, ``token_leaks == 0``,
``failed_calls == 0`` and ``diffs == []`` (the target equals the sandbox, by
``support.verify.diff_target`` against ``SandboxServer.truth()``).

Scenarios:

* :func:`faults_scenario`: 15 % of all API requests faulted (5xx, 504, delays, dropped answers, and
  requests applied whose answer is lost), plus 15 % of the remaining writes applied-then-lost, while
  a reconcile runs and, at the same time, a writer creates contacts, tasks and notes (and updates and
  deletes some) through the hook. Then one more reconcile under the same faults.
* :func:`kill_scenario`: reconcile child processes killed with ``SIGKILL`` at request counts drawn
  from a seeded RNG (the CRM changing between kills), then one run to the end.
* :func:`concurrent_scenario`: two reconcile processes of one location into one target at once.
* :func:`oauth_expiry_scenario`: access tokens expiring every 2 s while a reconcile child process and
  this process share one OAuth connection (single-use refresh tokens in a file token store).

Child processes come from :class:`ReconcileWorkers`: one "zygote" process imports the hook and the
engine once, then forks a fresh child per run, so a run starts in milliseconds and ``kill -9`` hits
a real process (its own DB connection, sockets and token store lock) at an arbitrary point. Each
child's stdout and stderr (logging at INFO) go to a file that the checks scan for tokens.

Only the public entry points of the engine are used (``ReconcileEngine``, ``SqlSink``,
``FieldMapping.load``, ``support.verify.diff_target``) and only loopback addresses are contacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ghl_sandbox.testing import SandboxServer, token_leaks

__all__ = [
    "FAULT_MIX",
    "LogCapture",
    "ReconcileWorkers",
    "ScenarioResult",
    "TargetSpec",
    "WriteLoad",
    "check_target",
    "concurrent_scenario",
    "faults_scenario",
    "kill_scenario",
    "oauth_expiry_scenario",
]

log = logging.getLogger(__name__)

#: The fault mix of :func:`faults_scenario`: ``fault_rate`` of every request, plus ``write_fault_rate``
#: of the writes the first draw spared, applied and then lost.
FAULT_MIX: dict[str, Any] = {
    "fault_rate": 0.15,
    "fault_kinds": ("500", "502", "503", "504", "delay", "drop", "applied_lost"),
    "fault_delay_ms": 80.0,
    "write_fault_rate": 0.15,
    "write_fault_kinds": ("applied_lost",),
    "lost_answer_modes": ("close", "drop", "502", "504"),
}

#: Faults off again (the sandbox's defaults).
NO_FAULTS: dict[str, Any] = {"fault_rate": 0.0, "write_fault_rate": 0.0, "latency_ms": 0.0}


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """Figures of one scenario run (see the module docstring for what they must be)."""

    name: str
    runs: int = 0
    runs_failed_cleanly: int = 0
    kills: int = 0
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    applied_then_lost: int = 0
    writes: int = 0
    failed_calls: int = 0
    rows_lost: int = 0
    duplicates: int = 0
    records_lost: int = 0
    reused_refresh_tokens: int = 0
    refreshes: int = 0
    expired_token_calls: int = 0
    token_leaks: int = 0
    diffs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every invariant holds."""
        return not (self.diffs or self.rows_lost or self.duplicates or self.records_lost
                    or self.reused_refresh_tokens or self.token_leaks or self.failed_calls)

    def problems(self) -> list[str]:
        """What broke, one line each, with the scenario's notes (empty when :attr:`ok`); never holds a token."""
        if self.ok:
            return []
        out = [f"{name}={getattr(self, name)}" for name in
               ("rows_lost", "duplicates", "records_lost", "reused_refresh_tokens", "token_leaks", "failed_calls")
               if getattr(self, name)]
        out += [f"diff: {d}" for d in self.diffs[:10]]
        return out + [f"note: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# Targets and checks
# ------------------------------------------------------------------------------------------------


@dataclass
class TargetSpec:
    """A SQL target both this process and the worker children can open: an SQLite file
    (``path``) or a PostgreSQL database (``url``, e.g. ``postgresql://postgres@127.0.0.1:5432/test``)
    in a ``schema`` of its own."""

    path: str | None = None
    url: str | None = None
    schema: str | None = None
    conn_id: str = "ghl_rel_target"

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return "postgresql" if self.url else "sqlite"

    def hook(self) -> Any:
        """A common-sql hook on the target (PostgreSQL: through the Airflow connection ``conn_id``,
        set from ``url`` in this process's environment)."""
        from airflow_provider_contacts.sync.target import EmbeddedSqliteHook, get_target_hook

        if self.url:
            os.environ[_conn_env(self.conn_id)] = self.url
            return get_target_hook(self.conn_id)
        return EmbeddedSqliteHook(self.path or "ghl_target.sqlite")

    def sink(self, mapping: Any) -> Any:
        """A :class:`~airflow_provider_contacts.sync.sinks.SqlSink` on the target (close it after use)."""
        from airflow_provider_contacts.sync.sinks import SqlSink

        return SqlSink(self.hook(), mapping, schema=self.schema)

    def drop(self) -> None:
        """Remove the target's data (the PostgreSQL schema; the SQLite file and its WAL)."""
        if self.url and self.schema:
            self.hook().run(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE", autocommit=True)
        elif self.path:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)


def _duplicate_ids(sink: Any) -> int:
    """Rows sharing an id in any data table of the target (must be 0)."""
    from airflow_provider_contacts.sync.mapping import TABLES

    total = 0
    with sink.transaction() as tx:
        for table in TABLES.values():
            tx.cur.execute(f"SELECT id FROM {sink.table(table)} GROUP BY id HAVING count(*) > 1")
            total += len(tx.cur.fetchall())
    return total


def check_target(sb: SandboxServer, target: TargetSpec, mapping_path: str | Path,
                 location_id: str | None = None) -> tuple[list[str], int, int]:
    """Compare the target with what the sandbox holds: ``(diffs, rows_lost, duplicate_rows)``.

    ``diffs`` comes from ``support.verify.diff_target`` against ``sb.truth()``; ``rows_lost`` counts
    records of the sandbox missing from the target; ``duplicate_rows`` ids held twice in a table.
    """
    from airflow_provider_contacts.sync.mapping import FieldMapping
    from support.verify import diff_target

    mapping = FieldMapping.load(mapping_path)
    sink = target.sink(mapping)
    try:
        diffs = diff_target(sink, mapping, location_id or sb.location_id, sb.truth(location_id), limit=200)
        duplicates = _duplicate_ids(sink)
    finally:
        sink.close()
    lost = sum(1 for d in diffs if "missing from the target" in d)
    return diffs, lost, duplicates


class LogCapture(logging.Handler):
    """Every log record of this process while active (root logger, DEBUG), formatted with its
    exception, to scan for tokens: ``with LogCapture() as logs: ...; token_leaks(logs.text())``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock_lines = threading.Lock()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._old_level: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the run
            text = repr(record.msg)
        with self._lock_lines:
            self.lines.append(text)

    def text(self) -> str:
        """All captured lines."""
        with self._lock_lines:
            return "\n".join(self.lines)

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        if self._old_level is not None:
            root.setLevel(self._old_level)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` for the block (the Airflow connection of a scenario)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _conn_env(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _fresh_hook_state() -> None:
    """Forget this process's limiters, OAuth token caches and create claims (a new "worker")."""
    from airflow_provider_contacts.hooks.contacts import forget_process_state

    forget_process_state()


#: The hook's retry policy in the scenarios: retries enough that 15 % faults never exhaust them (the
#: retry budget is not what is tested here), short waits.
FAST_RETRY: dict[str, float] = {"max_retries": 10, "max_throttled": 20, "max_elapsed_s": 60.0,
                                "base_s": 0.02, "cap_s": 0.25}


def _fast_retry() -> Any:
    """:data:`FAST_RETRY` as a ``RetryPolicy``."""
    from airflow_provider_contacts.hooks.retry import RetryPolicy

    return RetryPolicy(**FAST_RETRY)


def _sync_config(**kw: Any) -> Any:
    from airflow_provider_contacts.sync.engine import SyncConfig

    return SyncConfig(**_config_kwargs(kw))


def _config_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """SyncConfig keyword arguments from JSON-friendly ones (``*_s`` durations in seconds)."""
    out = dict(kw)
    for name in ("overlap", "sweep_period", "schedule_interval"):
        if f"{name}_s" in out:
            out[name] = timedelta(seconds=float(out.pop(f"{name}_s")))
    return out


#: Every run re-reads every contact's tasks and notes (one run per sweep period): a run that ends
#: leaves the target equal to the sandbox, whatever changed before it.
WHOLE_SWEEP: dict[str, Any] = {"sweep_period_s": 3600, "schedule_interval_s": 3600}


def _mutate(sb: SandboxServer, rng: random.Random, tag: str) -> None:
    """A few CRM-user changes through the admin surface: contacts created (with a task and a note),
    updated and deleted; tasks and notes added, edited and deleted on untouched contacts."""
    admin = sb.admin
    truth = sb.truth()
    contacts = sorted(truth["contacts"], key=lambda c: c["id"])
    for i in range(2):
        created = admin.create_contact(firstName=f"Chaos{tag}{i}", lastName="Mutant",
                                       email=f"chaos.{tag}.{i}@example.com")
        admin.create_task(created["id"], title=f"chaos task {tag} {i}")
        admin.create_note(created["id"], body=f"chaos note {tag} {i}")
    picked = rng.sample(contacts, k=min(4, len(contacts)))
    if len(picked) >= 4:
        admin.update_contact(picked[0]["id"], city=f"City {tag}")
        admin.delete_contact(picked[1]["id"])
        admin.create_task(picked[2]["id"], title=f"sweep task {tag}")
        admin.create_note(picked[3]["id"], body=f"sweep note {tag}")
    tasks = [t for t in truth["tasks"] if t["contactId"] not in {p["id"] for p in picked[:2]}]
    notes = [n for n in truth["notes"] if n["contactId"] not in {p["id"] for p in picked[:2]}]
    if tasks:
        task = rng.choice(tasks)
        admin.update_task(task["contactId"], task["id"], title=f"{task['title']} ({tag})")
    if len(tasks) > 1:
        task = rng.choice(tasks)
        admin.delete_task(task["contactId"], task["id"])
    if notes:
        note = rng.choice(notes)
        admin.delete_note(note["contactId"], note["id"])


def _counter_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# ------------------------------------------------------------------------------------------------
# Writes through the hook
# ------------------------------------------------------------------------------------------------


@dataclass
class WriteLoad:
    """Creates (contacts, tasks, notes), updates and deletes through ``ContactsHook``, each with a
    unique marker, so the sandbox can be checked for exactly one record per create.

    ``count`` contacts are created (every third without an email: the look-up after a lost answer
    then searches by name), each with a task and a note; ``count`` more tasks and notes go to
    existing contacts; every created contact is updated once; every fourth created note is deleted
    (``missing_ok=True``: a delete whose answer was lost is repeated and finds nothing).
    """

    tag: str
    count: int = 6
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    contacts: dict[str, str] = field(default_factory=dict)  # marker -> id
    tasks: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    deleted_notes: set[str] = field(default_factory=set)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        self.calls += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every failure is a failed call, reported by type
            self.errors.append(f"{what}: {type(exc).__name__}: {str(exc)[:300]}")
            log.warning("write load: %s failed: %s: %s", what, type(exc).__name__, exc)
            return None

    def run(self, hook: Any, existing_contact_ids: list[str]) -> None:
        """Do the writes (sequentially, as one Airflow task would)."""
        due = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
        for i in range(self.count):
            marker = f"{self.tag}-{i}"
            body: dict[str, Any] = {"firstName": f"Rel{self.tag}", "lastName": f"Writer{i}"}
            if i % 3:
                body["email"] = f"rel.{self.tag}.{i}@example.com"
            contact = self._call(f"create contact {marker}", lambda b=body: hook.create_contact(b))
            if contact is None:
                continue
            self.contacts[marker] = contact.id
            for parent, suffix in ((contact.id, "new"), (existing_contact_ids[i % len(existing_contact_ids)], "old")):
                title = f"rel task {marker} {suffix}"
                task = self._call(f"create task {marker} {suffix}", lambda p=parent, t=title: hook.create_task(
                    p, {"title": t, "dueDate": due.isoformat().replace("+00:00", "Z"), "body": "reliability"}))
                if task is not None:
                    self.tasks[title] = task.id
                text = f"rel note {marker} {suffix}"
                note = self._call(f"create note {marker} {suffix}",
                                  lambda p=parent, t=text: hook.create_note(p, {"body": t}))
                if note is not None:
                    self.notes[text] = note.id
                    if i % 4 == 3 and suffix == "new":
                        done = self._call(f"delete note {marker}",
                                          lambda p=parent, n=note.id: hook.delete_note(p, n, missing_ok=True))
                        if done is not None:
                            self.deleted_notes.add(text)
            self._call(f"update contact {marker}",
                       lambda c=contact.id, m=marker: hook.update_contact(c, {"city": f"Updated {m}"}))

    def check(self, truth: dict[str, Any]) -> tuple[int, int]:
        """``(duplicates, lost)`` in the sandbox: records created more than once, or not at all."""
        contacts = Counter(f"{self.tag}-{c['lastName'][len('Writer'):]}" for c in truth["contacts"]
                           if c.get("firstName") == f"Rel{self.tag}" and str(c.get("lastName", "")).startswith("Writer"))
        tasks = Counter(t["title"] for t in truth["tasks"] if str(t.get("title", "")).startswith(f"rel task {self.tag}-"))
        notes = Counter(n["body"] for n in truth["notes"] if str(n.get("body", "")).startswith(f"rel note {self.tag}-"))
        duplicates = sum(n - 1 for counter in (contacts, tasks, notes) for n in counter.values() if n > 1)
        lost = sum(1 for m in self.contacts if contacts[m] == 0)
        lost += sum(1 for t in self.tasks if tasks[t] == 0)
        lost += sum(1 for n in self.notes if notes[n] == 0 and n not in self.deleted_notes)
        lost += sum(1 for n in self.deleted_notes if notes[n] != 0)  # a delete that did not happen
        return duplicates, lost


# ------------------------------------------------------------------------------------------------
# Worker processes
# ------------------------------------------------------------------------------------------------


def run_job(job: dict[str, Any]) -> int:
    """One reconcile, in a worker child (see :class:`ReconcileWorkers`): ``job`` names the
    connection (``env``), the target, the mapping, the ``SyncConfig`` and where to write the
    report (``report``: ``{"ok": true, "report": {...}}`` or ``{"ok": false, "error": "..."}``)."""
    os.environ.update(job.get("env", {}))
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.hooks.retry import RetryPolicy
    from airflow_provider_contacts.sync.engine import ReconcileEngine
    from airflow_provider_contacts.sync.mapping import FieldMapping

    outcome: dict[str, Any]
    code = 0
    began = time.time()
    hook = ContactsHook(job.get("conn_id", "ghl_default"), retry=RetryPolicy(**job.get("retry", FAST_RETRY)))
    try:
        mapping = FieldMapping.load(job["mapping"])
        sink = TargetSpec(**job["target"]).sink(mapping)
        try:
            report = ReconcileEngine(hook, sink, mapping, _sync_config(**job.get("config", {}))).run()
        finally:
            sink.close()
        outcome = {"ok": True, "report": report.to_dict(), "table": report.format_table(),
                   "refreshes": hook.stats.refreshes}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, with the traceback in the log
        traceback.print_exc()
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        code = 1
    finally:
        hook.close()
    outcome.update(started_at=began, ended_at=time.time())
    tmp = job["report"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(outcome, fh, default=str)
    os.replace(tmp, job["report"])
    return code


def zygote_main() -> None:
    """The worker zygote's loop (``python -c "...chaos import zygote_main; zygote_main()"``).

    Imports the hook and the engine once, then answers JSON commands on stdin, one per line:
    ``{"cmd": "run", "job": {...}}`` forks a child running :func:`run_job` (stdout/stderr to
    ``job["log"]``, logging at INFO) and answers ``{"pid": N}``; ``{"cmd": "poll", "pid": N}``
    answers ``{"exit": code}`` (``null`` while running; ``-9`` for a child killed by SIGKILL);
    ``{"cmd": "exit"}`` ends the loop.
    """
    # Replies go to the original stdout, alone: whatever the imports print lands in the log (stderr).
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import airflow_provider_contacts.hooks.contacts  # noqa: F401 - preloaded for the children
    import airflow_provider_contacts.sync.engine  # noqa: F401
    import airflow_provider_contacts.sync.sinks  # noqa: F401
    import airflow_provider_contacts.sync.target  # noqa: F401
    import support.verify  # noqa: F401

    exits: dict[int, int] = {}

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    reply({"ready": os.getpid()})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "run":
            job = cmd["job"]
            pid = os.fork()
            if pid == 0:  # the worker child
                code = 1
                try:
                    out.close()  # the reply channel is the zygote's alone
                    fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)
                    sys.stdout = os.fdopen(1, "w", buffering=1)
                    sys.stderr = os.fdopen(2, "w", buffering=1)
                    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
                    code = run_job(job)
                except BaseException:  # noqa: BLE001 - the child must never return into the loop
                    traceback.print_exc()
                finally:
                    with contextlib.suppress(Exception):
                        sys.stdout.flush()
                        sys.stderr.flush()
                    os._exit(code)
            reply({"pid": pid})
        elif cmd["cmd"] == "poll":
            pid = int(cmd["pid"])
            if pid not in exits:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exits[pid] = os.waitstatus_to_exitcode(status)
            reply({"exit": exits.get(pid)})
        elif cmd["cmd"] == "exit":
            reply({"bye": True})
            return


@dataclass
class Worker:
    """A reconcile child process: ``pid``, its ``log`` file and ``report`` file."""

    pid: int
    log: Path
    report: Path
    exit_code: int | None = None

    def outcome(self) -> dict[str, Any]:
        """What :func:`run_job` wrote (``{}`` when it was killed before writing)."""
        try:
            return json.loads(self.report.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def log_text(self) -> str:
        """The child's stdout and stderr."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _with_tests_on_path() -> str:
    """``PYTHONPATH`` for a child that imports ``support.chaos``: the folder holding ``support``
    first, then whatever the parent had."""
    here = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


class ReconcileWorkers:
    """Reconcile runs in child processes forked from one preloaded zygote (see the module docstring).

    ``workers.run(job)`` starts one and returns a :class:`Worker`; ``workers.poll(w)``,
    ``workers.wait(w)``, ``workers.kill(w)`` (``SIGKILL`` to that pid only). Use as a context
    manager; start it early (``start()``), the zygote's imports take a few seconds.
    """

    def __init__(self, workdir: str | os.PathLike[str], startup_timeout_s: float = 180.0) -> None:
        self.workdir = Path(workdir)
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._ready = False
        self._count = 0
        self.started: list[Worker] = []

    def start(self) -> ReconcileWorkers:
        """Start the zygote (returns at once; the first command waits until it is ready)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / "zygote.log"
        with open(log_path, "ab") as errors:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from support.chaos import zygote_main; zygote_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _with_tests_on_path()},
            )
        return self

    def _await_ready(self) -> None:
        if self._ready:
            return
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout_s
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            while not sel.select(timeout=0.5):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the reconcile worker zygote did not start; its output:\n{self._zygote_log()}")
        line = self._proc.stdout.readline()
        if not line.startswith('{"ready"'):
            raise RuntimeError(f"the reconcile worker zygote did not start (answered {line[:200]!r}); its output:\n"
                               f"{self._zygote_log()}")
        self._ready = True

    def _zygote_log(self) -> str:
        try:
            return (self.workdir / "zygote.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._proc is None:
                self.start()
            self._await_ready()
            assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(json.dumps(cmd) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the reconcile worker zygote exited; its output:\n{self._zygote_log()}")
            return json.loads(line)

    def run(self, *, conn_id: str, conn_json: str, target: TargetSpec, mapping_path: str | Path,
            config: dict[str, Any] | None = None, extra_env: dict[str, str] | None = None) -> Worker:
        """Start a reconcile child of the location of ``conn_json`` into ``target``."""
        self._count += 1
        name = f"run-{self._count:03d}"
        job = {
            "conn_id": conn_id,
            "env": {_conn_env(conn_id): conn_json, **(extra_env or {})},
            "target": asdict(target),
            "mapping": str(mapping_path),
            "config": config or {},
            "log": str(self.workdir / f"{name}.log"),
            "report": str(self.workdir / f"{name}.json"),
            "retry": FAST_RETRY,
        }
        pid = int(self._ask({"cmd": "run", "job": job})["pid"])
        worker = Worker(pid, Path(job["log"]), Path(job["report"]))
        self.started.append(worker)
        return worker

    def poll(self, worker: Worker) -> int | None:
        """The child's exit code (negative: killed by that signal), ``None`` while it runs."""
        if worker.exit_code is None:
            worker.exit_code = self._ask({"cmd": "poll", "pid": worker.pid})["exit"]
        return worker.exit_code

    def wait(self, worker: Worker, timeout_s: float = 120.0) -> int:
        """Wait for the child to end; kills it (and raises) after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (code := self.poll(worker)) is None:
            if time.monotonic() > deadline:
                self.kill(worker)
                raise TimeoutError(f"reconcile child {worker.pid} still ran after {timeout_s} s; killed. "
                                   f"Its log:\n{worker.log_text()[-3000:]}")
            time.sleep(0.02)
        return code

    def kill(self, worker: Worker) -> None:
        """``kill -9`` the child (only if it has not ended yet)."""
        if self.poll(worker) is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)

    def logs(self) -> str:
        """Every child's output, for the token scan."""
        return "\n".join(w.log_text() for w in self.started)

    def close(self) -> None:
        """Kill children still running, end the zygote."""
        if self._proc is None:
            return
        try:
            if self._ready:
                for worker in self.started:
                    with contextlib.suppress(Exception):
                        self.kill(worker)
                        self.wait(worker, 10)
                with contextlib.suppress(Exception):
                    self._ask({"cmd": "exit"})
        finally:
            proc, self._proc = self._proc, None
            with contextlib.suppress(Exception):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> ReconcileWorkers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------------


def _finish(result: ScenarioResult, sb: SandboxServer, target: TargetSpec, mapping_path: str | Path,
            counters_before: dict[str, Any], texts: list[str], secrets: tuple[str, ...] = ()) -> ScenarioResult:
    """The common end of every scenario: faults off, target vs sandbox, OAuth reuse, token leaks."""
    sb.admin.configure(**NO_FAULTS)
    counters = sb.admin.counters()
    result.faults_by_kind = _counter_delta(counters["faults_by_kind"], counters_before["faults_by_kind"])
    result.applied_then_lost = counters["applied_then_lost"] - counters_before["applied_then_lost"]
    oauth, oauth_before = counters["oauth"], counters_before["oauth"]
    result.reused_refresh_tokens = oauth["refresh_token_reuses"] - oauth_before["refresh_token_reuses"]
    result.refreshes = oauth["refresh_grants"] - oauth_before["refresh_grants"]
    result.expired_token_calls = oauth["expired_access_token_calls"] - oauth_before["expired_access_token_calls"]
    diffs, lost, duplicate_rows = check_target(sb, target, mapping_path)
    result.diffs, result.rows_lost = diffs, lost
    result.duplicates += duplicate_rows
    result.token_leaks = sum(len(token_leaks(text, secrets)) for text in texts)
    return result


def faults_scenario(sb: SandboxServer, target: TargetSpec, mapping_path: str | Path, *, tag: str = "a",
                    writes: int = 6) -> ScenarioResult:
    """Scenario a: :data:`FAULT_MIX` during a reconcile and, at the same time, writes through the
    hook (:class:`WriteLoad`); then another reconcile under the same faults. In this process."""
    from airflow_provider_contacts.hooks.contacts import ContactsHook
    from airflow_provider_contacts.sync.engine import ReconcileEngine
    from airflow_provider_contacts.sync.mapping import FieldMapping

    started = time.monotonic()
    result = ScenarioResult("faults")
    _fresh_hook_state()
    conn_id = f"ghl_rel_faults_{tag}"
    before = sb.admin.counters()
    existing = [c["id"] for c in sorted(sb.truth()["contacts"], key=lambda c: c["id"])[:writes]]
    load = WriteLoad(tag=tag, count=writes)
    mapping = FieldMapping.load(mapping_path)
    with LogCapture() as logs, _env(_conn_env(conn_id), sb.conn_json()):
        sb.admin.configure(**FAULT_MIX)
        reports = []
        sink = target.sink(mapping)
        try:
            writer_hook = ContactsHook(conn_id, retry=_fast_retry())
            writer = threading.Thread(target=load.run, args=(writer_hook, existing), name="write-load")
            writer.start()
            for config in ({}, WHOLE_SWEEP):
                hook = ContactsHook(conn_id, retry=_fast_retry())
                try:
                    reports.append(ReconcileEngine(hook, sink, mapping, _sync_config(**config)).run())
                except Exception as exc:  # noqa: BLE001 - a failed run is a finding, not a crash
                    result.failed_calls += 1
                    result.notes.append(f"reconcile failed: {type(exc).__name__}: {str(exc)[:300]}")
                finally:
                    hook.close()
                result.runs += 1
                writer.join()  # the second run starts once every write is done
            writer_hook.close()
        finally:
            sink.close()
        xcom = [json.dumps(r.to_dict(), default=str) + r.format_table() for r in reports]
    result.writes = load.calls
    result.failed_calls += len(load.errors)
    result.notes += load.errors
    result.duplicates, result.records_lost = load.check(sb.truth())
    _finish(result, sb, target, mapping_path, before, [logs.text(), *xcom])
    result.seconds = round(time.monotonic() - started, 2)
    return result


def kill_scenario(sb: SandboxServer, target: TargetSpec, mapping_path: str | Path, workers: ReconcileWorkers, *,
                  seed: int = 7, kills: int = 3, latency_ms: float = 15.0) -> ScenarioResult:
    """Scenario b: reconcile children killed with ``SIGKILL`` once the sandbox has served a number of
    their requests drawn from ``random.Random(seed)`` (the CRM changing between kills), then a run
    to the end: the target must equal the sandbox."""
    started = time.monotonic()
    rng = random.Random(seed)
    result = ScenarioResult("kill -9")
    conn_id = "ghl_rel_kill"
    before = sb.admin.counters()
    sb.admin.configure(latency_ms=latency_ms)  # long enough runs to be caught half-way
    size = len(sb.truth()["contacts"])
    for point in range(kills):
        if point:
            _mutate(sb, rng, f"k{seed}x{point}")
        kill_at = rng.randint(1, size + 4)  # a run makes about one request per contact
        base = sb.admin.counters()["total"]
        worker = workers.run(conn_id=conn_id, conn_json=sb.conn_json(), target=target, mapping_path=mapping_path,
                             config={"batch_size": 10, **WHOLE_SWEEP})
        while workers.poll(worker) is None and sb.admin.counters()["total"] - base < kill_at:
            time.sleep(0.005)
        workers.kill(worker)
        code = workers.wait(worker)
        result.runs += 1
        if code == -signal.SIGKILL:
            result.kills += 1
        elif code != 0:
            result.failed_calls += 1
            result.notes.append(f"run {point} ended with {code}: {worker.outcome().get('error')}")
    _mutate(sb, rng, f"k{seed}end")
    final = workers.run(conn_id=conn_id, conn_json=sb.conn_json(), target=target, mapping_path=mapping_path,
                        config={"batch_size": 10, **WHOLE_SWEEP})
    result.runs += 1
    if workers.wait(final) != 0:
        result.failed_calls += 1
        result.notes.append(f"the run after the kills failed: {final.outcome().get('error')}")
    _finish(result, sb, target, mapping_path, before, [workers.logs()])
    result.seconds = round(time.monotonic() - started, 2)
    return result


def concurrent_scenario(sb: SandboxServer, target: TargetSpec, mapping_path: str | Path, workers: ReconcileWorkers,
                        *, seed: int = 3, latency_ms: float = 5.0) -> ScenarioResult:
    """Scenario c: two reconcile processes of one location into one target at the same time, twice
    (on an empty target: both first loads; then, after CRM changes, both incremental). Each must
    succeed, or fail cleanly saying why; when both succeed the target must equal the sandbox at once;
    in any case one more run converges."""
    started = time.monotonic()
    rng = random.Random(seed)
    result = ScenarioResult("concurrent")
    conn_id = "ghl_rel_twins"
    before = sb.admin.counters()
    sb.admin.configure(latency_ms=latency_ms)
    early: list[str] = []
    for round_no in range(2):
        if round_no:
            _mutate(sb, rng, f"c{seed}x{round_no}")
        twins = [workers.run(conn_id=conn_id, conn_json=sb.conn_json(), target=target, mapping_path=mapping_path,
                             config={"batch_size": 20, **WHOLE_SWEEP}) for _ in range(2)]
        codes = [workers.wait(w) for w in twins]
        result.runs += 2
        spans = [(o.get("started_at"), o.get("ended_at")) for o in (w.outcome() for w in twins)]
        if all(a is not None and b is not None for a, b in spans):
            overlap = min(b for _, b in spans) - max(a for a, _ in spans)  # type: ignore[type-var,operator]
            if overlap <= 0:
                result.notes.append(f"round {round_no}: the two runs did not overlap (gap {-overlap:.2f} s)")
        for worker, code in zip(twins, codes):
            if code != 0:
                error = worker.outcome().get("error") or ""
                if error:
                    result.runs_failed_cleanly += 1
                    result.notes.append(f"round {round_no}: one of two concurrent runs failed, saying: {error[:300]}")
                else:
                    result.failed_calls += 1
                    result.notes.append(f"round {round_no}: a concurrent run crashed ({code}) without saying why")
        if all(code == 0 for code in codes):
            diffs, _, _ = check_target(sb, target, mapping_path)
            if diffs:  # both said they succeeded: the target must already agree
                early += [f"after round {round_no} (both runs succeeded): {d}" for d in diffs]
    again = workers.run(conn_id=conn_id, conn_json=sb.conn_json(), target=target, mapping_path=mapping_path,
                        config={"batch_size": 20, **WHOLE_SWEEP})
    result.runs += 1
    if workers.wait(again) != 0:
        result.failed_calls += 1
        result.notes.append(f"the run after the concurrent pairs failed: {again.outcome().get('error')}")
    _finish(result, sb, target, mapping_path, before, [workers.logs()])
    result.diffs = early + result.diffs
    result.seconds = round(time.monotonic() - started, 2)
    return result


def oauth_expiry_scenario(sb: SandboxServer, target: TargetSpec, mapping_path: str | Path,
                          workers: ReconcileWorkers, *, workdir: str | os.PathLike[str], tag: str = "d",
                          lifetime_s: float = 2.0, min_run_s: float = 4.5) -> ScenarioResult:
    """Scenario d: OAuth access tokens expiring every ``lifetime_s`` while a reconcile child and this
    process (paging through contacts) share one OAuth connection, with its single-use refresh tokens
    in one file token store. No call may fail and no refresh token may be used twice."""
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    started = time.monotonic()
    result = ScenarioResult("oauth expiry")
    _fresh_hook_state()
    conn_id = f"ghl_rel_oauth_{tag}"
    before = sb.admin.counters()
    app = sb.admin.install_oauth_app()
    store = Path(workdir) / f"tokens-{tag}.json"
    conn_json = sb.oauth_conn_json(app, rotation_store=f"file:{store}")
    size = max(1, len(sb.truth()["contacts"]))
    # A full run's requests in sequence: the notes of 8 contacts at a time, and per batch of 25 the
    # task search, the page and the writes. Latency stretches it over a few token lifetimes.
    rounds = size / 8 + 3 * -(-size // 25) + 4
    sb.admin.configure(access_token_lifetime_s=lifetime_s, latency_ms=max(5.0, 1000.0 * min_run_s / rounds))
    reads = 0
    with LogCapture() as logs, _env(_conn_env(conn_id), conn_json):
        worker = workers.run(conn_id=conn_id, conn_json=conn_json, target=target, mapping_path=mapping_path,
                             config={"batch_size": 25, "full_sweep": True})
        hook = ContactsHook(conn_id, retry=_fast_retry())
        try:
            while workers.poll(worker) is None or time.monotonic() - started < lifetime_s * 2.5:
                try:
                    hook.search_contacts(page_limit=20)
                    reads += 1
                except Exception as exc:  # noqa: BLE001 - a failed call is the finding
                    result.failed_calls += 1
                    result.notes.append(f"a read in this process failed: {type(exc).__name__}: {str(exc)[:300]}")
                time.sleep(0.1)
        finally:
            hook.close()
        code = workers.wait(worker)
    result.runs = 1
    outcome = worker.outcome()
    if code != 0:
        result.failed_calls += 1
        result.notes.append(f"the OAuth reconcile failed ({code}): {outcome.get('error')}")
    result.notes.append(f"{reads} reads in this process alongside the run")
    sb.admin.configure(access_token_lifetime_s=86_400)
    xcom = json.dumps(outcome.get("report", {}), default=str) + str(outcome.get("table", ""))
    _finish(result, sb, target, mapping_path, before, [logs.text(), workers.logs(), xcom],
            secrets=(app["client_secret"],))
    if result.refreshes < 2:
        result.notes.append(f"only {result.refreshes} refreshes: the tokens did not expire mid-run")
    result.seconds = round(time.monotonic() - started, 2)
    return result
