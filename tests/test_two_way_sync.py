"""Two-way sync (sync/leads/two_way.py): a lead changed on both sides is settled per field by its rule
(``newest``, ``highlevel``, ``source``) and recorded with both values; one-sided changes cross
over; the provider's own writes are never read back as changes (no echo); deletions propagate only
when asked. On SQLite, and on PostgreSQL (own schemas) where GHL_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_leads_flow import DEMO, execute, links_of, run_leads, sqlite_source

from airflow_provider_contacts.sync import DEFAULT_MAPPING_FILE, FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from airflow_provider_contacts.sync.leads.flow import LeadsConfig, LeadsReport
from airflow_provider_contacts.sync.leads.mapping import DEFAULT_LEADS_MAPPING_FILE, LeadMapping
from airflow_provider_contacts.sync.leads.source import LeadSource
from airflow_provider_contacts.sync.leads.templates import load_templates
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook
from airflow_provider_contacts.sync.leads.two_way import TwoWayConfig, TwoWaySync, decide

RULES = {"first_name": "newest", "last_name": "highlevel", "phone": "source"}


def mapping(rules: dict[str, str] = RULES) -> LeadMapping:
    import yaml

    data = yaml.safe_load(DEFAULT_LEADS_MAPPING_FILE.read_text())
    data["leads"]["two_way"] = rules
    return LeadMapping.from_dict(data)


class Side:
    """A lead source and a reconcile target on one backend."""

    def __init__(self, source: LeadSource, target: Any, target_schema: str | None = None) -> None:
        self.source, self.target, self.target_schema = source, target, target_schema

    def sync(self, **config: Any) -> LeadsReport:
        """Reconcile the location into the target, then the two-way step (fresh hook, as a task)."""
        from airflow_provider_contacts.hooks.contacts import ContactsHook

        reconcile_mapping = FieldMapping.load(DEFAULT_MAPPING_FILE)
        hook = ContactsHook()
        try:
            with SqlSink(self.target, reconcile_mapping, schema=self.target_schema) as sink:
                ReconcileEngine(hook, sink, reconcile_mapping, SyncConfig()).run()
            return TwoWaySync(
                hook, self.source, self.target, mapping(), load_templates(), LeadsConfig(), TwoWayConfig(**config),
                target_schema=self.target_schema,
            ).run()
        finally:
            hook.close()

    def lead(self, lead_id: int) -> dict[str, Any]:
        cols = ["first_name", "last_name", "phone", "updated_at"]
        row = execute(self.source, f"SELECT {', '.join(cols)} FROM {self.source.table_name} WHERE id = {lead_id}")
        return dict(zip(cols, row[0])) if row else {}


@pytest.fixture(scope="module")
def _small_sandbox() -> Iterator[Any]:
    """A sandbox with few seeded contacts (each two-way run reconciles the whole location)."""
    from ghl_sandbox.testing import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(seed=7, contacts=5, rate_limit=None)) as server:
        yield server


@pytest.fixture
def small(_small_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The small sandbox, reset, as ``ghl_default``."""
    _small_sandbox.admin.reset()
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", _small_sandbox.conn_json())
    return _small_sandbox


@pytest.fixture(params=["sqlite", "postgres"])
def side(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Side]:
    if request.param == "sqlite":
        with sqlite_source(tmp_path / "crm.sqlite") as source:
            yield Side(source, EmbeddedSqliteHook(tmp_path / "target.sqlite"))
        return
    url = request.getfixturevalue("postgres_url")
    import psycopg2
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", url)
    admin = psycopg2.connect(url)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("DROP SCHEMA IF EXISTS ghl_two_way_src CASCADE; DROP SCHEMA IF EXISTS ghl_two_way_tgt CASCADE; CREATE SCHEMA ghl_two_way_src")
    cur.execute(
        "CREATE TABLE ghl_two_way_src.crm_leads (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, "
        "phone TEXT, company_name TEXT, lifecycle_stage TEXT, notes TEXT, updated_at TIMESTAMPTZ)"
    )
    cur.executemany(
        "INSERT INTO ghl_two_way_src.crm_leads VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(int(r["id"]), r["email"] or None, r["first_name"], r["last_name"], r["phone"] or None, r["company_name"],
          r["lifecycle_stage"], r["notes"] or None, r["updated_at"]) for r in DEMO],
    )
    try:
        with LeadSource(PostgresHook(postgres_conn_id="crm_pg"), "crm_leads", schema="ghl_two_way_src") as source:
            yield Side(source, PostgresHook(postgres_conn_id="crm_pg"), "ghl_two_way_tgt")
    finally:
        cur.execute("DROP SCHEMA IF EXISTS ghl_two_way_src CASCADE; DROP SCHEMA IF EXISTS ghl_two_way_tgt CASCADE")
        admin.close()


def test_a_lead_changed_on_both_sides_is_settled_by_each_fields_rule_and_nothing_echoes(small, side) -> None:
    run_leads(side.source, mapping())
    assert side.sync().conflicts == []
    links = links_of(side.source, small.location_id)
    ts = "updated_at = '2020-01-01T00:00:00Z'"
    upd = lambda lead, sql: execute(side.source, f"UPDATE {side.source.table_name} SET {sql} WHERE id = {lead}")  # noqa: E731
    # newest: the source's change is older than HighLevel's -> HighLevel wins
    upd(1001, f"first_name = 'Src1001', {ts}")
    small.admin.update_contact(links["1001"], firstName="Hl1001")
    # newest: the source's change is newer -> the source wins
    upd(1002, "first_name = 'Src1002', updated_at = '2099-01-01T00:00:00Z'")
    small.admin.update_contact(links["1002"], firstName="Hl1002")
    # highlevel rule
    upd(1003, "last_name = 'Src1003'")
    small.admin.update_contact(links["1003"], lastName="Hl1003")
    # source rule, phones in two formats of two different numbers
    upd(1004, "phone = '(415) 555-0444'")
    small.admin.update_contact(links["1004"], phone="+1 415 555 0445")
    # one side only
    small.admin.update_contact(links["1005"], lastName="OnlyInHighLevel")
    upd(1006, "last_name = 'OnlyInSource'")
    # both sides to the same value: agreed, no conflict
    upd(1008, "first_name = 'Same'")
    small.admin.update_contact(links["1008"], firstName="Same")

    report = side.sync()
    conflicts = {(c["lead_id"], c["column"]): c for c in report.conflicts}
    assert set(conflicts) == {("1001", "first_name"), ("1002", "first_name"), ("1003", "last_name"), ("1004", "phone")}, report.format_table()
    assert conflicts[("1001", "first_name")] | {} == {**conflicts[("1001", "first_name")], "source_value": "Src1001", "highlevel_value": "Hl1001", "rule": "newest", "winner": "highlevel"}
    assert conflicts[("1002", "first_name")]["winner"] == "source"
    assert conflicts[("1003", "last_name")]["winner"] == "highlevel"
    c4 = conflicts[("1004", "phone")]
    assert (c4["source_value"], c4["highlevel_value"], c4["winner"]) == ("+14155550444", "+14155550445", "source")
    assert c4["source_changed_at"] and c4["highlevel_changed_at"]
    assert report.pulled == {"first_name": 1, "last_name": 2}  # 1001, 1003 + 1005
    assert report.fields_written == {"firstName": 1, "phone": 1, "lastName": 1}  # 1002, 1004, 1006

    contacts = {c["id"]: c for c in small.admin.dump()["contacts"]}
    assert side.lead(1001)["first_name"] == "Hl1001" and contacts[links["1001"]]["firstName"] == "Hl1001"
    assert side.lead(1002)["first_name"] == "Src1002" and contacts[links["1002"]]["firstName"] == "Src1002"
    assert side.lead(1003)["last_name"] == "Hl1003" and contacts[links["1003"]]["lastName"] == "Hl1003"
    assert contacts[links["1004"]]["phone"] == "+14155550444"
    assert side.lead(1005)["last_name"] == "OnlyInHighLevel" and contacts[links["1006"]]["lastName"] == "OnlyInSource"
    assert str(side.lead(1005)["updated_at"]) > "2026-01-15"  # touched when written back

    # No echo: the values each side received are not read back as changes of the other side.
    small.admin.reset_counters()
    quiet = side.sync()
    assert (quiet.conflicts, quiet.pulled, quiet.fields_written, quiet.updated) == ([], {}, {}, 0), quiet.format_table()
    writes = {op: n for op, n in small.admin.counters()["by_operation"].items() if op in ("update-contact", "create-contact", "add-tags", "remove-tags")}
    assert writes == {}


def test_deletions_cross_over_only_when_asked(small, tmp_path) -> None:
    with sqlite_source(tmp_path / "crm.sqlite") as source:
        side = Side(source, EmbeddedSqliteHook(tmp_path / "target.sqlite"))
        run_leads(source, mapping())
        side.sync()
        links = links_of(source, small.location_id)
        small.admin.delete_contact(links["1001"])
        kept = side.sync()
        assert (kept.contact_deleted, kept.leads_deleted, kept.created) == (1, 0, 0)
        assert side.lead(1001)  # the lead stays
        again = side.sync()
        assert (again.created, again.contact_deleted) == (0, 0)  # and its contact is not re-created
        small.admin.delete_contact(links["1002"])
        gone = side.sync(propagate_deletions=True)
        assert (gone.contact_deleted, gone.leads_deleted) == (1, 1) and side.lead(1002) == {}
        execute(source, "DELETE FROM crm_leads WHERE id = 1003")
        dropped = side.sync(propagate_deletions=True)
        assert dropped.contacts_deleted == 1
        assert links["1003"] not in {c["id"] for c in small.admin.dump()["contacts"]}
        row = execute(source, "SELECT written_json, contact_deleted_at, lead_deleted_at FROM ghl_lead_links WHERE lead_id = '1003'")[0]
        assert json.loads(row[0])["email"] == "casey.patel@example.org" and row[1] and row[2]


def test_the_newest_rule_reads_change_times_of_any_shape() -> None:
    assert decide("newest", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00.000Z") == "highlevel"
    assert decide("newest", "2026-01-03 00:00:00", "2026-01-02T00:00:00Z") == "source"
    assert decide("newest", None, "2026-01-02T00:00:00Z") == "highlevel"  # a missing time is older
    assert decide("newest", "2026-01-02T00:00:00Z", None) == "source"
    assert decide("newest", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z") == "source"  # a tie: the source
    assert decide("highlevel", "2099-01-01", None) == "highlevel" and decide("source", None, "2099-01-01") == "source"
