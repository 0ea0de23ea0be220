"""README command 1 (``make demo``): the reconciliation DAG against a local sandbox, twice.

1. A fresh Airflow home under ``.demo/`` (metadata DB migrated) and a sandbox HighLevel API in a
   child process answering like the live API (300 seeded contacts with tasks and notes, phones as
   typed, per-location custom fields, live search shapes and statuses; HighLevel-like burst limit
   100 requests per 5 s; nothing leaves 127.0.0.1).
2. ``airflow dags test ghl_contacts_reconcile``: the first run loads everything into the embedded
   SQLite target ``.demo/airflow_home/ghl_contacts.sqlite``.
3. Changes in the "CRM" through the sandbox's admin surface: contacts created, updated, deleted;
   tasks and notes created, edited, completed, deleted on contacts that are otherwise untouched.
4. The second run (with ``sweep_period_hours=1``, so this one run re-reads every contact's tasks
   and notes, as the hourly sweep would over a week).
5. Both run reports, then a field-by-field check of the target against the sandbox.

Exit status 0 only when both runs succeed and the target equals the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # support.verify: the target-vs-sandbox comparison the tests use
DEMO_HOME = REPO / ".demo" / "airflow_home"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CONTACTS = 300
RATE_LIMIT = "100/5"
SEARCH_LAG_S = 2.0  # HighLevel's search index shows changes a few seconds late (ghl-live-notes.md)
DAG_ID = "ghl_contacts_reconcile"


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 74 - len(text)), flush=True)


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the Airflow CLI; on failure print its output tail and exit."""
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        print(f"airflow {' '.join(args)} failed ({proc.returncode}):")
        print("\n".join((proc.stdout + proc.stderr).splitlines()[-60:]))
        sys.exit(1)
    return proc


def airflow_env(home: Path, log_level: str) -> dict[str, str]:
    """This process's environment without its AIRFLOW* settings, plus an Airflow home of the demo's
    own (SQLite metadata DB, the repository's dags/, no examples)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
    }


def last_report(target: Path) -> dict[str, Any]:
    """The report the last run stored next to the data (table ghl_sync_state)."""
    import sqlite3

    with sqlite3.connect(target) as db:
        row = db.execute("SELECT value_json FROM ghl_sync_state WHERE name = 'last_run'").fetchone()
    return json.loads(row[0])


def run_dag(env: dict[str, str], conf: dict[str, Any], target: Path, title: str) -> dict[str, Any]:
    banner(title)
    started = time.monotonic()
    airflow(env, "dags", "test", DAG_ID, "-f", str(REPO / "dags" / "ghl_contacts_reconcile.py"), "-c", json.dumps(conf))
    from airflow_provider_contacts.sync.report import RunReport

    report = last_report(target)
    print(RunReport.from_dict(report).format_table())
    print(f"(airflow dags test took {time.monotonic() - started:.1f} s including Airflow start-up)")
    return report


def main() -> int:
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    DEMO_HOME.mkdir(parents=True)
    os.environ["AIRFLOW_HOME"] = str(DEMO_HOME)
    env = airflow_env(DEMO_HOME, "WARNING")
    from ghl_sandbox.config import SandboxConfig
    from ghl_sandbox.testing import SandboxServer

    banner("setting up")
    print(f"AIRFLOW_HOME={DEMO_HOME}")
    airflow(env, "db", "migrate")
    print("Airflow metadata DB migrated")
    config = SandboxConfig(seed=7, contacts=CONTACTS, rate_limit=RATE_LIMIT, search_lag_s=SEARCH_LAG_S)
    with SandboxServer(config, subprocess=True) as sandbox:
        print(
            f"sandbox HighLevel API at {sandbox.base_url}: location {sandbox.location_id}, "
            f"{CONTACTS} contacts, rate limit {RATE_LIMIT} (requests/seconds), answering like the live API "
            f"(search shows changes {SEARCH_LAG_S:g} s late)"
        )
        fields = ", ".join(f"{f['name']} ({f['dataType']})" for f in sandbox.truth()["customFields"])
        print(f"this location's custom fields: {fields}")
        env["AIRFLOW_CONN_GHL_DEFAULT"] = sandbox.conn_json()
        target = DEMO_HOME / "ghl_contacts.sqlite"
        print(f"no 'ghl_target' connection: the embedded SQLite target {target} is used")

        run_dag(env, {}, target, "run 1: first load")

        banner("changing data in the CRM (sandbox admin surface)")
        from ghl_sandbox.scenario import apply_mutations

        done = apply_mutations(sandbox.admin, scale=2)
        for kind, count in done.summary().items():
            print(f"  {kind:<24} {count}")

        report = run_dag(env, {"sweep_period_hours": 1}, target, "run 2: incremental + sweep")

        banner("checking the target against the sandbox")
        failures = check(sandbox, target, report, done)
    if failures:
        print("DIFFERENCES:")
        for line in failures:
            print(f"  {line}")
        return 1
    print("OK: every contact, task and note in the target equals the sandbox, field by field after mapping")
    target = DEMO_HOME / "ghl_contacts.sqlite"
    print(f"the data: {target}: tables ghl_contacts, ghl_tasks, ghl_notes, ghl_quarantine; views "
          "ghl_contact_360, ghl_directory_by_business, ghl_directory_by_tag")
    print(f"  sqlite3 {target} 'SELECT first_name, last_name, email FROM ghl_contacts LIMIT 5'")
    return 0


def check(sandbox: Any, target: Path, report: dict[str, Any], done: Any) -> list[str]:
    """Differences between target and sandbox, plus sanity checks on the second report."""
    from airflow_provider_contacts.sync.mapping import FieldMapping
    from airflow_provider_contacts.sync.sinks import SqlSink
    from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
    from support.verify import diff_target

    mapping = FieldMapping.load(REPO / "dags" / "ghl_contacts_mapping.yaml")
    truth = sandbox.truth()  # contacts as search shows them (live shape), which is what the sync reads
    with SqlSink(EmbeddedSqliteHook(target), mapping) as sink:
        mapping.resolve_custom_fields(truth["customFields"])
        failures = diff_target(sink, mapping, sandbox.location_id, truth)
    contacts = report["tables"]["ghl_contacts"]
    if contacts["inserted"] != len(done.contacts_created):
        failures.append(f"run 2 inserted {contacts['inserted']} contacts, expected {len(done.contacts_created)}")
    if contacts["deleted"] != len(done.contacts_deleted):
        failures.append(f"run 2 deleted {contacts['deleted']} contacts, expected {len(done.contacts_deleted)}")
    print(
        f"target: {len(truth['contacts'])} contacts, {len(truth['tasks'])} tasks, {len(truth['notes'])} notes live; "
        f"{len(failures)} differences"
    )
    return failures


if __name__ == "__main__":
    sys.exit(main())
