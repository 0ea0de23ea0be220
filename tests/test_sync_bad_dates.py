"""A record with a malformed date from HighLevel is set aside by the reconciliation, not fatal.

The hook keeps an unparseable API date as the raw string (see ``models``); the sync's mapping then
fails that record's ``timestamp`` transform and quarantines it with the reason, while every other
record loads. The sandbox validates dates, so the hook's answers are corrupted on their way in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.hooks.contacts import ContactsHook, forget_process_state
from airflow_provider_contacts.sync import FieldMapping, ReconcileEngine, SqlSink, SyncConfig
from airflow_provider_contacts.sync.target import EmbeddedSqliteHook

MAPPING_FILE = Path(__file__).resolve().parent.parent / "dags" / "ghl_contacts_mapping.yaml"
BAD_UPDATED = "last tuesday"
BAD_DUE = "31/12/2024"


@pytest.fixture(autouse=True)
def _fresh_process_state():
    forget_process_state()
    yield
    forget_process_state()


def _corrupting_hook(monkeypatch: pytest.MonkeyPatch, contact_id: str, task_id: str) -> ContactsHook:
    """A hook whose answers carry a bad ``dateUpdated`` on ``contact_id`` and a bad ``dueDate``
    on ``task_id``, wherever they appear (search, task search, per-contact task lists)."""
    hook = ContactsHook()
    real_call = hook._call

    def corrupt(method: str, path: str, **kwargs: Any) -> Any:
        data = real_call(method, path, **kwargs)
        if isinstance(data, dict):
            for contact in data.get("contacts") or []:
                if contact.get("id") == contact_id:
                    contact["dateUpdated"] = BAD_UPDATED
            for task in data.get("tasks") or []:
                for item in task if isinstance(task, list) else [task]:
                    if item.get("id") == task_id:
                        item["dueDate"] = BAD_DUE
        return data

    monkeypatch.setattr(hook, "_call", corrupt)
    return hook


def test_bad_dates_from_the_api_are_quarantined_and_the_rest_loads(
    sandbox: Any, ghl_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.admin.reset(contacts=30)
    truth = sandbox.admin.dump()
    bad_contact = truth["contacts"][3]["id"]
    bad_task = next(t for t in truth["tasks"] if t["contactId"] != bad_contact)
    mapping = FieldMapping.load(MAPPING_FILE)
    sink = SqlSink(EmbeddedSqliteHook(tmp_path / "target.sqlite"), mapping)
    try:
        report = ReconcileEngine(_corrupting_hook(monkeypatch, bad_contact, bad_task["id"]), sink, mapping, SyncConfig()).run()

        assert report.counts("contacts").quarantined == 1
        assert report.counts("contacts").inserted == len(truth["contacts"]) - 1
        assert report.counts("tasks").quarantined == 1
        assert report.counts("tasks").inserted == len(truth["tasks"]) - 1
        assert report.counts("notes").inserted == len(truth["notes"])
        with sink.transaction() as tx:
            reasons = {(table, rid): reason for table, rid, reason in tx.query(
                "SELECT source_table, record_id, reason FROM ghl_quarantine")}
            contact_rows = {r[0] for r in tx.query("SELECT id FROM ghl_contacts")}
            task_rows = {r[0] for r in tx.query("SELECT id FROM ghl_tasks")}
        assert set(reasons) == {("ghl_contacts", bad_contact), ("ghl_tasks", bad_task["id"])}
        contact_reason = reasons["ghl_contacts", bad_contact]
        task_reason = reasons["ghl_tasks", bad_task["id"]]
        assert "dateUpdated" in contact_reason and BAD_UPDATED in contact_reason
        assert "dueDate" in task_reason and BAD_DUE in task_reason
        assert bad_contact not in contact_rows and len(contact_rows) == len(truth["contacts"]) - 1
        assert bad_task["id"] not in task_rows and len(task_rows) == len(truth["tasks"]) - 1
    finally:
        sink.close()
