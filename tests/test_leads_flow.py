"""Leads into HighLevel (sync/leads/flow.py): one contact per lead whatever happens (email case, phone
formats, lost answers, a crash before the link, 5 % faults), follow-up tasks and notes once,
changed fields only, bad leads reported with the field and the fix; SQLite and PostgreSQL sources;
the ghl_leads_to_contacts DAG end to end on its embedded demo source."""

from __future__ import annotations

import csv
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.sync.leads.flow import LeadsConfig, LeadsEngine, LeadsReport
from airflow_provider_contacts.sync.leads.mapping import LeadMapping
from airflow_provider_contacts.sync.leads.source import DEMO_LEADS_CSV, LeadSource, create_demo_leads
from airflow_provider_contacts.sync.leads.templates import load_templates
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

DAGS = Path(__file__).resolve().parent.parent / "dags"
DEMO = list(csv.DictReader(DEMO_LEADS_CSV.open(encoding="utf-8")))
TEMPLATE_TASKS = len(load_templates().tasks)


# -- helpers shared with test_two_way_sync.py ----------------------------------------------------
def sqlite_source(path: Path, rows: list[dict[str, Any]] | None = None) -> LeadSource:
    """A lead source in a SQLite file: the demo leads, or ``rows`` (same columns)."""
    if rows is None:
        create_demo_leads(path)
    else:
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE crm_leads (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT, "
                "company_name TEXT, lifecycle_stage TEXT, notes TEXT, updated_at TEXT)"
            )
            db.executemany(
                "INSERT INTO crm_leads VALUES (:id, :email, :first_name, :last_name, :phone, :company_name, "
                ":lifecycle_stage, :notes, :updated_at)",
                [{**dict.fromkeys(DEMO[0]), **r} for r in rows],
            )
    return LeadSource(EmbeddedSqliteHook(path))


def execute(source: LeadSource, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL on the source database (its own placeholder style) and commit."""
    with source.transaction() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []


def run_leads(source: LeadSource, mapping: LeadMapping | None = None, **config: Any) -> LeadsReport:
    """One lead run with a fresh hook (as each Airflow task gets)."""
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    hook = ContactsHook()
    try:
        return LeadsEngine(hook, source, mapping or LeadMapping.load(), load_templates(), LeadsConfig(**config)).run()
    finally:
        hook.close()


def links_of(source: LeadSource, location_id: str) -> dict[str, str]:
    """lead id -> contact id."""
    return {link.lead_id: link.contact_id for link in source.all_links(location_id)}


def assert_one_contact_per_lead(sandbox: Any, source: LeadSource, emails: list[str], notes: dict[str, str] | None = None) -> dict[str, Any]:
    """Every email is one contact, linked; each linked contact has the template's tasks once and its note once."""
    data = sandbox.admin.dump()
    by_email = Counter((c.get("email") or "").lower() for c in data["contacts"])
    for email in emails:
        assert by_email[email.lower()] == 1, (email, by_email[email.lower()])
    links = links_of(source, sandbox.location_id)
    assert len(set(links.values())) == len(links), "two leads linked to one contact"
    tasks = Counter(t["contactId"] for t in data["tasks"])
    titles = Counter((t["contactId"], t["title"]) for t in data["tasks"])
    contacts = {c["id"]: c for c in data["contacts"]}
    for lead_id, contact_id in links.items():
        assert contact_id in contacts, f"lead {lead_id}: contact {contact_id} missing"
        assert tasks[contact_id] == TEMPLATE_TASKS, (lead_id, tasks[contact_id])
        assert max(n for (cid, _), n in titles.items() if cid == contact_id) == 1
    if notes is not None:
        note_count = Counter((n["contactId"], n["body"]) for n in data["notes"])
        for lead_id, body in notes.items():
            assert note_count[(links[lead_id], body)] == 1, (lead_id, body)
    return data


def demo_notes() -> dict[str, str]:
    return {r["id"]: r["notes"] for r in DEMO if r["notes"]}


def demo_emails() -> list[str]:
    return [r["email"] for r in DEMO if r["email"]]


class Killed(BaseException):
    """A worker killed mid-run (not an Exception: nothing may catch it on the way out)."""


# -- tests ---------------------------------------------------------------------------------------
def test_new_leads_become_one_contact_each_with_follow_up_and_a_rerun_changes_nothing(sandbox, ghl_conn, tmp_path) -> None:
    with sqlite_source(tmp_path / "crm.sqlite") as source:
        first = run_leads(source)
        assert (first.created, first.bad, first.failed) == (len(DEMO), 0, 0), first.format_table()
        assert first.tasks_created == TEMPLATE_TASKS * len(DEMO) and first.notes_created == len(demo_notes())
        # requests: one look-up + one create per lead, the template's tasks and the note; nothing else
        assert first.requests == 2 * len(DEMO) + first.tasks_created + first.notes_created
        data = assert_one_contact_per_lead(sandbox, source, demo_emails(), demo_notes())
        contact = next(c for c in data["contacts"] if c.get("email") == "blake.chen@example.com")  # lower-cased
        assert contact["phone"] == "+14155550102" and contact["companyName"] == "Northwind Traders"
        assert "stage:prospect" in contact["tags"]
        task = next(t for t in data["tasks"] if t["contactId"] == contact["id"] and t["title"].startswith("Call"))
        assert task["title"] == "Call Blake Chen" and task["completed"] is False

        again = run_leads(source)
        assert (again.created, again.updated, again.unchanged, again.requests) == (0, 0, len(DEMO), 0)


def test_duplicates_by_email_case_and_phone_format_are_matched_not_created(sandbox, ghl_conn, tmp_path) -> None:
    existing_by_email = sandbox.admin.create_contact(firstName="Ava", email="AVERY.LOPEZ@example.COM", tags=["vip"])
    existing_by_phone = sandbox.admin.create_contact(firstName="Casey", phone="(415) 555-0103")
    rows = [
        {"id": 1, "email": "avery.lopez@example.com", "first_name": "Avery", "last_name": "Lopez", "lifecycle_stage": "lead"},
        {"id": 2, "email": "casey.patel@example.org", "first_name": "Casey", "phone": "+1 415-555-0103"},
        {"id": 3, "email": "Avery.Lopez@Example.com", "first_name": "Avery (again)"},  # same lead twice in the CRM
        {"id": 4, "phone": "415.555.0104", "first_name": "Devon"},
        {"id": 5, "phone": "+1 (415) 555 0104", "first_name": "Devon twin"},
    ]
    with sqlite_source(tmp_path / "crm.sqlite", rows) as source:
        report = run_leads(source)
        assert (report.matched, report.created, report.bad) == (2, 1, 2), report.format_table()
        links = links_of(source, sandbox.location_id)
        assert links["1"] == existing_by_email["id"] and links["2"] == existing_by_phone["id"]
        refused = {e["lead_id"]: e for e in report.errors}
        assert set(refused) == {"3", "5"}
        assert refused["3"]["column"] == "email" and "lead 1" in refused["3"]["problem"] and "merge" in refused["3"]["fix"]
        assert refused["5"]["column"] == "phone" and "lead 4" in refused["5"]["problem"]
        contacts = {c["id"]: c for c in sandbox.admin.dump()["contacts"]}
        adopted = contacts[existing_by_email["id"]]
        assert adopted["firstName"] == "Avery" and set(adopted["tags"]) == {"vip", "stage:lead"}  # its own tag kept
        assert contacts[existing_by_phone["id"]]["email"] == "casey.patel@example.org"
        devon = [c for c in contacts.values() if (c.get("phone") or "").endswith("4155550104")]
        assert len(devon) == 1
        again = run_leads(source)
        assert (again.created, again.matched, again.bad) == (0, 0, 2)  # still reported, never created


def test_lost_create_answers_and_a_crash_before_the_link_never_duplicate(sandbox, ghl_conn, tmp_path, monkeypatch) -> None:
    sandbox.admin.configure(
        write_fault_rate=0.4, write_fault_kinds=["applied_lost"],
        fault_operations=["create-contact", "create-task", "create-note"],
    )
    with sqlite_source(tmp_path / "crm.sqlite") as source:
        real_save = LeadSource.save_link
        calls = {"n": 0}

        def crash_on_the_fifth_link(self: LeadSource, cur: Any, link: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 5:
                raise Killed("worker killed after the creates, before the links committed")
            real_save(self, cur, link)

        monkeypatch.setattr(LeadSource, "save_link", crash_on_the_fifth_link)
        with pytest.raises(Killed):
            run_leads(source, page_size=8)
        monkeypatch.setattr(LeadSource, "save_link", real_save)
        assert links_of(source, sandbox.location_id) == {}  # the page's links rolled back together
        rerun = run_leads(source, page_size=8)
        assert rerun.failed == 0, rerun.format_table()
        assert rerun.matched >= 8 and rerun.matched + rerun.created == len(DEMO)  # the first page found again
        sandbox.admin.configure(write_fault_rate=0.0)
        assert_one_contact_per_lead(sandbox, source, demo_emails(), demo_notes())
    lost = sandbox.admin.counters()["applied_then_lost_by_operation"]
    assert lost.get("create-contact", 0) >= 1 and lost.get("create-task", 0) >= 1, lost


def test_five_percent_faults_duplicate_nothing_and_lose_nothing(sandbox, ghl_conn, tmp_path) -> None:
    rows = [
        {"id": i, "email": f"lead{i}@example.com", "first_name": f"Lead{i}", "last_name": "Faulty",
         "phone": f"+1 303 555 {i:04d}", "company_name": f"Co {i % 5}", "lifecycle_stage": ["lead", "customer"][i % 2],
         "notes": f"note of lead {i}"}
        for i in range(1, 41)
    ]
    sandbox.admin.configure(fault_rate=0.05, fault_kinds=["500", "502", "503", "drop"], write_fault_rate=0.05)
    with sqlite_source(tmp_path / "crm.sqlite", rows) as source:
        reports = [run_leads(source)]
        while reports[-1].failed and len(reports) < 4:  # what Airflow's task retries do
            reports.append(run_leads(source))
        assert reports[-1].failed == 0, reports[-1].format_table()
        sandbox.admin.configure(fault_rate=0.0, write_fault_rate=0.0)
        assert len(links_of(source, sandbox.location_id)) == len(rows)
        assert_one_contact_per_lead(sandbox, source, [r["email"] for r in rows], {str(r["id"]): r["notes"] for r in rows})
    counters = sandbox.admin.counters()
    assert counters["faults"] > 0 and sum(r.retries for r in reports) > 0, counters


def test_bad_leads_are_reported_with_the_field_and_fix_and_do_not_block_the_others(sandbox, ghl_conn, tmp_path) -> None:
    rows = [
        {"id": 1, "email": "good.one@example.com", "first_name": "Good"},
        {"id": 2, "email": "not-an-email", "first_name": "Bad email"},
        {"id": 3, "email": "bad.phone@example.com", "phone": "12", "first_name": "Bad phone"},
        {"id": 4, "first_name": "Nobody"},
        {"id": 5, "email": "good.two@example.com", "first_name": "Good too"},
    ]
    with sqlite_source(tmp_path / "crm.sqlite", rows) as source:
        report = run_leads(source)
    assert (report.created, report.bad) == (2, 3), report.format_table()
    errors = {e["lead_id"]: e for e in report.errors}
    assert errors["2"]["column"] == "email" and "local@domain.tld" in errors["2"]["fix"]
    assert errors["3"]["column"] == "phone" and "country code" in errors["3"]["fix"] and errors["3"]["value"] == "12"
    assert errors["4"]["column"] == "email" and "email or the phone" in errors["4"]["fix"]
    assert "bad lead 3: column phone" in report.format_table()


def test_a_changed_lead_sends_only_its_changed_fields_and_moves_its_stage_tags(sandbox, ghl_conn, tmp_path) -> None:
    with sqlite_source(tmp_path / "crm.sqlite") as source:
        run_leads(source)
        contact_id = links_of(source, sandbox.location_id)["1001"]
        sandbox.admin.update_contact(contact_id, tags=["stage:lead", "met-at-fair"])  # a user's own tag
        execute(source, "UPDATE crm_leads SET first_name = 'Ave', lifecycle_stage = 'Customer' WHERE id = 1001")
        sandbox.admin.reset_counters()
        report = run_leads(source)
        assert (report.updated, report.unchanged, report.created) == (1, len(DEMO) - 1, 0)
        assert report.fields_written == {"firstName": 1, "tags": 1}
        ops = sandbox.admin.counters()["by_operation"]
        assert ops.get("update-contact") == 1 and ops.get("add-tags") == 1 and ops.get("remove-tags") == 1, ops
        assert sum(ops.values()) == 3
        contact = {c["id"]: c for c in sandbox.admin.dump()["contacts"]}[contact_id]
        assert contact["firstName"] == "Ave" and contact["lastName"] == "Lopez"
        assert set(contact["tags"]) == {"stage:customer", "met-at-fair"}


def test_a_lead_gone_from_the_table_keeps_its_contact_unless_deletions_propagate(sandbox, ghl_conn, tmp_path) -> None:
    with sqlite_source(tmp_path / "crm.sqlite") as source:
        run_leads(source)
        links = links_of(source, sandbox.location_id)
        execute(source, "DELETE FROM crm_leads WHERE id IN (1001, 1002)")
        kept = run_leads(source)
        assert (kept.leads_gone, kept.contacts_deleted) == (2, 0)
        live = {c["id"] for c in sandbox.admin.dump()["contacts"]}
        assert {links["1001"], links["1002"]} <= live
        execute(source, "DELETE FROM crm_leads WHERE id = 1003")
        gone = run_leads(source, propagate_deletions=True)
        assert (gone.leads_gone, gone.contacts_deleted) == (1, 1)
        live = {c["id"] for c in sandbox.admin.dump()["contacts"]}
        assert links["1003"] not in live and links["1001"] in live


def test_the_leads_dag_parses_and_its_runner_uses_the_embedded_demo_source(sandbox, ghl_conn) -> None:
    """The DAG's task calls ``run_leads`` with the params' values; without a ``crm_source``
    connection that reads the embedded SQLite file, created from the packaged demo CSV. (The DAG
    files parse without import errors and heavy imports: tests/test_example_dags.py.)"""
    import runpy

    from airflow_provider_contacts.sync.leads import runner as leads_runner
    from airflow_provider_contacts.sync.leads.source import embedded_leads_path

    dag = runpy.run_path(str(DAGS / "ghl_leads_to_contacts.py"))["dag"]
    assert dag.dag_id == "ghl_leads_to_contacts" and dag.task_ids == ["leads_to_contacts"]
    assert all("null" in p.schema["type"] for p in dag.params.values())  # the trigger form's rule
    two_way = runpy.run_path(str(DAGS / "ghl_two_way_sync.py"))["dag"]
    assert two_way.task_ids == ["reconcile", "sync_both_ways"] and all("null" in p.schema["type"] for p in two_way.params.values())
    embedded = embedded_leads_path()
    embedded.unlink(missing_ok=True)
    report = leads_runner.run_leads(mapping_path=None, templates_path=None)
    assert (report.created, report.bad, report.failed) == (len(DEMO), 0, 0) and embedded.is_file()
    with LeadSource(EmbeddedSqliteHook(embedded)) as source:
        assert_one_contact_per_lead(sandbox, source, demo_emails(), demo_notes())
    embedded.unlink()


def test_a_postgres_source_with_its_own_schema(sandbox, ghl_conn, postgres_url, monkeypatch) -> None:
    import psycopg2
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    schema = "ghl_leads_test"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", postgres_url)
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    admin.cursor().execute(
        f"CREATE TABLE {schema}.crm_leads (id BIGINT PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT, "
        "company_name TEXT, lifecycle_stage TEXT, notes TEXT, updated_at TIMESTAMPTZ)"
    )
    rows = [
        (int(r["id"]), r["email"] or None, r["first_name"], r["last_name"], r["phone"] or None, r["company_name"],
         r["lifecycle_stage"], r["notes"] or None, r["updated_at"])
        for r in DEMO
    ]
    admin.cursor().executemany(f"INSERT INTO {schema}.crm_leads VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    try:
        with LeadSource(PostgresHook(postgres_conn_id="crm_pg"), "crm_leads", schema=schema) as source:
            first = run_leads(source)
            assert (first.created, first.bad) == (len(DEMO), 0), first.format_table()
            again = run_leads(source)
            assert (again.created, again.unchanged, again.requests) == (0, len(DEMO), 0)
            assert_one_contact_per_lead(sandbox, source, demo_emails(), demo_notes())
        cur = admin.cursor()
        cur.execute(f"SELECT count(*), count(onboarded_at) FROM {schema}.ghl_lead_links")
        assert cur.fetchone() == (len(DEMO), len(DEMO))
    finally:
        admin.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


def test_the_packaged_files_are_package_data() -> None:
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    for name in ("leads_mapping.yaml", "leads_followup_templates.yaml", "leads_demo.csv"):
        assert name in text, name
    assert os.path.isfile(DEMO_LEADS_CSV)
