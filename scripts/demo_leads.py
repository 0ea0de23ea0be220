"""``make demo-leads``: leads flowing into HighLevel and a two-way sync, against a local sandbox.

1. A fresh Airflow home under ``.demo-leads/`` and a sandbox HighLevel API in a child process
   (40 seeded contacts, HighLevel's rate limit of 100 requests per 10 s, answering like the live
   API; nothing leaves 127.0.0.1, no credentials needed).
2. ``airflow dags test ghl_leads_to_contacts``: no ``crm_source`` connection, so the embedded
   SQLite CRM ``.demo-leads/airflow_home/ghl_crm_leads.sqlite`` is created from the packaged demo
   leads; every lead becomes one contact with its follow-up tasks and note.
3. An edit on each side and a conflict: a lead's last name changed in the CRM, a contact's first
   name changed in HighLevel, and one phone changed on both sides (HighLevel last).
4. ``airflow dags test ghl_two_way_sync`` (reconcile, then the two-way step): the CRM edit goes to
   HighLevel, the HighLevel edit comes back to the CRM, the conflict is settled by the ``newest``
   rule (HighLevel's change is the later one) and listed with both values; the lead flow inside it
   creates no contact for the leads already linked. A second two-way run writes nothing: no echo.
5. Checks: one contact per lead email, both sides agree on the synced fields.

Exit status 0 only when every run succeeds and every check holds.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

from demo import airflow, airflow_env, banner  # scripts/demo.py: the same Airflow CLI runner and banner

REPO = Path(__file__).resolve().parent.parent
DEMO_HOME = REPO / ".demo-leads" / "airflow_home"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CONTACTS = 40
RATE_LIMIT = "100/10"


def report_lines(output: str) -> list[str]:
    """The lead report the task logged (from ``leads report`` to its ``requests:`` line)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if "leads report" in line]
    if not starts:
        return ["(no report in the output)"]
    out = []
    for line in lines[starts[-1] + 1 :]:
        text = line.split(" [airflow_provider_contacts")[0]
        out.append(text)
        if text.startswith("requests:"):
            break
    return out


def run_dag(env: dict[str, str], dag_id: str, title: str) -> list[str]:
    banner(title)
    started = time.monotonic()
    proc = airflow(env, "dags", "test", dag_id, "-f", str(REPO / "dags" / f"{dag_id}.py"))
    output = proc.stdout + proc.stderr
    lines = report_lines(output)
    print("\n".join(lines))
    print(f"(airflow dags test took {time.monotonic() - started:.1f} s including Airflow start-up)")
    return lines


def main() -> int:
    shutil.rmtree(DEMO_HOME.parent, ignore_errors=True)
    DEMO_HOME.mkdir(parents=True)
    env = airflow_env(DEMO_HOME, "INFO")
    from ghl_sandbox.config import SandboxConfig
    from ghl_sandbox.testing import SandboxServer

    banner("setting up")
    airflow(env, "db", "migrate")
    print(f"AIRFLOW_HOME={DEMO_HOME} (metadata DB migrated)")
    failures: list[str] = []
    with SandboxServer(SandboxConfig(seed=7, contacts=CONTACTS, rate_limit=RATE_LIMIT), subprocess=True) as sandbox:
        print(f"sandbox HighLevel API at {sandbox.base_url}: location {sandbox.location_id}, {CONTACTS} contacts, "
              f"rate limit {RATE_LIMIT} (requests/seconds)")
        env["AIRFLOW_CONN_GHL_DEFAULT"] = sandbox.conn_json()
        crm = DEMO_HOME / "ghl_crm_leads.sqlite"
        print(f"no 'crm_source' connection: the embedded CRM {crm} (demo leads) is used")

        run_dag(env, "ghl_leads_to_contacts", "lead run: leads flow into HighLevel")

        banner("an edit on each side, and a conflict")
        db = sqlite3.connect(crm)
        links = dict(db.execute("SELECT lead_id, contact_id FROM ghl_lead_links").fetchall())
        earlier = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        db.execute("UPDATE crm_leads SET last_name = 'Lopez-Ortega', updated_at = ? WHERE id = 1001", (earlier,))
        print("CRM:        lead 1001 last_name -> 'Lopez-Ortega'")
        sandbox.admin.update_contact(links["1002"], firstName="Blake-Ray")
        print(f"HighLevel:  contact {links['1002']} (lead 1002) firstName -> 'Blake-Ray'")
        db.execute("UPDATE crm_leads SET phone = '+1 415 555 0199', updated_at = ? WHERE id = 1003", (earlier,))
        db.commit()
        sandbox.admin.update_contact(links["1003"], phone="+14155550177")
        print("conflict:   lead 1003 phone -> '+1 415 555 0199' in the CRM (an hour ago), "
              "'+14155550177' in HighLevel (now); rule for phone: newest")

        both = run_dag(env, "ghl_two_way_sync", "two-way run: both directions (the lead flow inside creates nothing)")
        if not any("created 0," in line for line in both):
            failures.append("the two-way run created contacts for leads already linked")
        quiet = run_dag(env, "ghl_two_way_sync", "two-way run again: nothing to do, no echo")
        if not any("updated 0," in line for line in quiet) or not any("values read back into the lead table: -" in line for line in quiet):
            failures.append("the second two-way run wrote something (an echo)")

        banner("checking both sides")
        truth = sandbox.admin.dump()
        contacts = {c["id"]: c for c in truth["contacts"]}
        emails = Counter((c.get("email") or "").lower() for c in truth["contacts"] if c.get("email"))
        leads = db.execute("SELECT id, email, first_name, last_name, phone FROM crm_leads").fetchall()
        for lead_id, email, *_ in leads:
            if email and emails[email.lower()] != 1:
                failures.append(f"lead {lead_id}: {emails[email.lower()]} contacts with {email}")
        row = dict(db.execute("SELECT id, first_name FROM crm_leads WHERE id = 1002").fetchall())
        checks = [
            ("CRM edit reached HighLevel", contacts[links["1001"]]["lastName"] == "Lopez-Ortega"),
            ("HighLevel edit reached the CRM", row.get(1002) == "Blake-Ray"),
            ("conflict settled by 'newest' (HighLevel)", contacts[links["1003"]]["phone"] == "+14155550177"
             and db.execute("SELECT phone FROM crm_leads WHERE id = 1003").fetchone()[0] == "+14155550177"),
            ("one contact per lead", len({links[str(r[0])] for r in leads if str(r[0]) in links}) == len(links)),
        ]
        for what, ok in checks:
            print(f"  {'ok  ' if ok else 'FAIL'} {what}")
            if not ok:
                failures.append(what)
        print(f"  {len(links)} leads linked, {sum(emails.values())} contacts with an email in the location")
        db.close()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: leads flowed in once, edits crossed over both ways, the conflict followed its rule, no duplicate, no echo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
