"""A DAG reads a contact's booked appointments before a sales call."""

from __future__ import annotations

from test_operators_base import calls, run_operator

from airflow_provider_contacts.operators.appointments import GHLGetAppointmentsOperator


def test_appointments_of_a_contact_are_listed_with_their_key_fields(sandbox, ghl_conn, tmp_path, monkeypatch) -> None:
    import json
    import sqlite3

    contact = sandbox.admin.dump()["contacts"][0]  # every fifth seeded contact has a demo booked
    result = run_operator(GHLGetAppointmentsOperator(task_id="appointments", contact_id=contact["id"]))
    assert result["count"] >= 1
    first = result["records"][0]
    assert first["contactId"] == contact["id"] and first["title"] == f"Demo with {contact['firstName']}"
    assert first["startTime"] < first["endTime"]

    db = tmp_path / "appointments.db"
    monkeypatch.setenv("AIRFLOW_CONN_APPTS", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    run_operator(GHLGetAppointmentsOperator(task_id="a", contact_id=contact["id"], output_table="appts", output_conn_id="appts"))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, contact_id, calendar_id, start_time FROM appts").fetchall()
    assert [r[0] for r in rows] == [r["id"] for r in result["records"]]
    assert rows[0][1] == contact["id"]
    assert calls(sandbox, "get-appointments-for-contact") == 2
