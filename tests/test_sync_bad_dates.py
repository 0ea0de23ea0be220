"""A malformed date from HighLevel costs one column of one record, never the record or the run.

The hook keeps an unparseable API date as the raw string (see ``models``); the sync's mapping then
stores NULL in that column (the raw value stays in ``raw_json``) and counts it per column in the
run report, while the record itself loads. The sandbox validates dates, so the hook's answers are
corrupted on their way in.
"""

from __future__ import annotations

import json
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


def test_bad_dates_from_the_api_are_null_and_counted_and_every_record_loads(
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

        assert report.counts("contacts").inserted == len(truth["contacts"])
        assert report.counts("tasks").inserted == len(truth["tasks"])
        assert report.counts("notes").inserted == len(truth["notes"])
        assert (report.counts("contacts").quarantined, report.counts("tasks").quarantined) == (0, 0)
        assert report.column_errors["ghl_contacts"]["date_updated"] == 1
        assert report.column_errors["ghl_tasks"]["due_date"] == 1
        assert BAD_UPDATED in report.column_error_examples["ghl_contacts"]["date_updated"]
        assert report.column_error_examples["ghl_tasks"]["due_date"].startswith(bad_task["id"])
        with sink.transaction() as tx:
            assert tx.query("SELECT count(*) FROM ghl_quarantine") == [(0,)]
            (updated, raw), = tx.query("SELECT date_updated, raw_json FROM ghl_contacts WHERE id = ?", (bad_contact,))
            (due, task_raw), = tx.query("SELECT due_date, raw_json FROM ghl_tasks WHERE id = ?", (bad_task["id"],))
        assert updated is None and json.loads(raw)["dateUpdated"] == BAD_UPDATED
        assert due is None and json.loads(task_raw)["dueDate"] == BAD_DUE
    finally:
        sink.close()
