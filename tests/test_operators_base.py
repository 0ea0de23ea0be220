"""What every HighLevel operator promises: one operator per contacts.json operation, inputs checked
before any request (errors name the parameter and the field), templated ids and bodies, and many
records written to a table or a file instead of XCom.

Also home of the small helpers the other operator tests import (``run_operator``, ``calls``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_contacts.operators.base import GHLBaseOperator
from airflow_provider_contacts.params import GHLInputError

SPEC = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ghl-openapi" / "contacts.json"
OPERATOR_MODULES = [
    "contacts", "tasks", "notes", "tags", "appointments", "followers", "campaigns", "workflows", "businesses",
]


# -- helpers used by the other operator test modules ----------------------------------------------
def run_operator(op: GHLBaseOperator, **context: Any) -> Any:
    """Render the operator's templates with ``context`` (as Airflow does), then execute it."""
    op.render_template_fields(context)
    return op.execute(context)


def calls(sandbox: Any, operation_id: str) -> int:
    """How many requests of ``operation_id`` the sandbox has answered."""
    return int(sandbox.admin.counters()["by_operation"].get(operation_id, 0))


def a_contact(sandbox: Any, **where: Any) -> dict[str, Any]:
    """A seeded contact matching ``where`` (field -> value, or field -> callable predicate)."""
    for contact in sandbox.admin.dump()["contacts"]:
        if all(v(contact.get(k)) if callable(v) else contact.get(k) == v for k, v in where.items()):
            return contact
    raise AssertionError(f"no seeded contact matches {where}")


def operator_classes() -> list[type[GHLBaseOperator]]:
    """Every concrete operator class of the provider's operator modules."""
    found: dict[str, type[GHLBaseOperator]] = {}
    for name in OPERATOR_MODULES:
        module = importlib.import_module(f"airflow_provider_contacts.operators.{name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, GHLBaseOperator) and "operation_id" in cls.__dict__ and cls.__module__ == module.__name__:
                found[cls.__name__] = cls
    return list(found.values())


# -- coverage ------------------------------------------------------------------------------------
def test_every_contacts_operation_has_exactly_one_operator() -> None:
    if not SPEC.exists():
        pytest.skip(f"the HighLevel OpenAPI spec is not at {SPEC}; coverage cannot be checked")
    spec = json.loads(SPEC.read_text())
    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values() if isinstance(op, dict)}
    by_operation: dict[str, list[str]] = {}
    for cls in operator_classes():
        by_operation.setdefault(cls.operation_id, []).append(cls.__name__)
    missing = sorted(operation_ids - set(by_operation))
    unknown = sorted(set(by_operation) - operation_ids)
    doubled = {op: names for op, names in by_operation.items() if len(names) > 1}
    assert not missing, f"operations without an operator: {missing}"
    assert not unknown, f"operators naming operations not in contacts.json: {unknown}"
    assert not doubled, f"operations with more than one operator: {doubled}"
    assert len(by_operation) == len(operation_ids) == 32


def test_each_operator_calls_the_hook_method_of_its_operation() -> None:
    from airflow_provider_contacts.hooks.contacts import ContactsHook

    paged = {"iter_search_contacts": "search_contacts", "iter_contacts_legacy": "get_contacts",
             "iter_contacts_by_business": "get_contacts_by_business"}
    for cls in operator_classes():
        method = getattr(ContactsHook, cls.hook_method)
        wrapped = getattr(ContactsHook, paged.get(cls.hook_method, cls.hook_method))
        assert getattr(wrapped, "operation_id", None) == cls.operation_id, (cls.__name__, method)
        assert "Idempotent" in (cls.__doc__ or "") or "idempotent" in (cls.__doc__ or ""), (
            f"{cls.__name__} must say in its docstring whether it is idempotent"
        )


# -- inputs are checked before any request --------------------------------------------------------
def test_a_bad_body_fails_naming_the_field_before_any_request(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.tasks import GHLCreateTaskOperator

    contact = a_contact(sandbox)
    before = sandbox.admin.counters()["total"]
    op = GHLCreateTaskOperator(task_id="follow_up", contact_id=contact["id"], body={"title": "Call back"})
    with pytest.raises(GHLInputError) as err:
        run_operator(op)
    assert "parameter 'body'" in str(err.value) and "'dueDate'" in str(err.value)
    assert err.value.status is None and err.value.operation == "create-task"
    assert sandbox.admin.counters()["total"] == before


def test_an_unknown_body_field_is_rejected_with_the_accepted_ones(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.contacts import GHLUpdateContactOperator

    contact = a_contact(sandbox)
    op = GHLUpdateContactOperator(task_id="rename", contact_id=contact["id"], body={"first_name": "Ana"})
    with pytest.raises(GHLInputError, match=r"'first_name' is not accepted.*firstName"):
        run_operator(op)


def test_an_empty_templated_id_fails_naming_the_parameter(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.contacts import GHLGetContactOperator

    before = sandbox.admin.counters()["total"]
    op = GHLGetContactOperator(task_id="get", contact_id="{{ params.contact_id }}")
    with pytest.raises(GHLInputError, match="parameter 'contact_id'"):
        run_operator(op, params={"contact_id": ""})
    with pytest.raises(GHLInputError, match="contains '/'"):
        run_operator(GHLGetContactOperator(task_id="get", contact_id="abc/../x"))
    assert sandbox.admin.counters()["total"] == before


def test_ids_and_bodies_are_templated_and_json_bodies_accepted(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.notes import GHLCreateNoteOperator

    contact = a_contact(sandbox)
    op = GHLCreateNoteOperator(
        task_id="note",
        contact_id="{{ params.contact_id }}",
        body='{"body": "Met {{ params.who }} at the fair", "title": "Fair"}',
    )
    note = run_operator(op, params={"contact_id": contact["id"], "who": "Zoë"})
    stored = [n for n in sandbox.admin.dump()["notes"] if n["id"] == note["id"]]
    assert stored and stored[0]["body"] == "Met Zoë at the fair" and stored[0]["contactId"] == contact["id"]
    assert note["contactId"] == contact["id"] and note["title"] == "Fair"


# -- many records: XCom cap, table and file targets ---------------------------------------------------
def test_more_records_than_the_xcom_cap_fail_with_the_fix(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator

    op = GHLSearchContactsOperator(task_id="everyone", max_xcom_records=50, page_limit=20)
    with pytest.raises(GHLInputError, match="more than 50 records.*output_table.*output_path"):
        run_operator(op)
    # Fetching stopped right after the cap: 51 records are 3 pages of 20.
    assert calls(sandbox, "search-contacts-advanced") == 3


def test_search_results_stream_into_a_sqlite_table_and_a_rerun_updates_them(sandbox, ghl_conn, tmp_path, monkeypatch) -> None:
    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator

    db = tmp_path / "crm.db"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    vip = [c for c in sandbox.admin.dump()["contacts"] if "vip" in c["tags"]]
    op = GHLSearchContactsOperator(
        task_id="vips",
        filters=[{"field": "tags", "operator": "eq", "value": "vip"}],
        output_table="ghl_vip_contacts",
        output_conn_id="crm_db",
        batch_size=7,
        page_limit=10,
    )
    result = run_operator(op)
    assert result == {"count": len(vip), "output_table": "ghl_vip_contacts", "output_conn_id": "crm_db"}
    sandbox.admin.update_contact(vip[0]["id"], firstName="Renamed")
    run_operator(op)
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT id, first_name FROM ghl_vip_contacts").fetchall())
        record = json.loads(conn.execute("SELECT record FROM ghl_vip_contacts WHERE id=?", (vip[1]["id"],)).fetchone()[0])
    assert set(rows) == {c["id"] for c in vip}
    assert rows[vip[0]["id"]] == "Renamed"
    assert record["id"] == vip[1]["id"] and record.get("email") == vip[1]["email"] and "searchAfter" not in record


def test_list_results_go_to_a_jsonl_file_through_object_storage(sandbox, ghl_conn, tmp_path) -> None:
    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator

    target = tmp_path / "exports" / "contacts.jsonl"
    op = GHLSearchContactsOperator(task_id="export", output_path=f"file://{target}", max_records=120, batch_size=50)
    result = run_operator(op)
    lines = target.read_text().splitlines()
    assert result["count"] == 120 and len(lines) == 120
    assert result["output_path"].endswith("contacts.jsonl")
    assert len({json.loads(line)["id"] for line in lines}) == 120


def test_output_parameters_are_checked_before_any_request(sandbox, ghl_conn) -> None:
    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator
    from airflow_provider_contacts.operators.tasks import GHLListTasksOperator

    with pytest.raises(GHLInputError, match="output_conn_id"):
        run_operator(GHLSearchContactsOperator(task_id="x", output_table="t"))
    with pytest.raises(GHLInputError, match="not both"):
        run_operator(GHLSearchContactsOperator(task_id="x", output_table="t", output_conn_id="c", output_path="/tmp/x"))
    with pytest.raises(GHLInputError, match="not a table name"):
        run_operator(GHLSearchContactsOperator(task_id="x", output_table="t; drop table x", output_conn_id="c"))
    with pytest.raises(GHLInputError, match="not a SQL"):
        run_operator(GHLListTasksOperator(task_id="x", contact_id="abc", output_table="tasks", output_conn_id=ghl_conn))
    assert sandbox.admin.counters()["total"] == 0


@pytest.mark.postgres
def test_search_results_upsert_into_postgres(sandbox, ghl_conn, postgres_url, monkeypatch) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from airflow_provider_contacts.operators.contacts import GHLSearchContactsOperator

    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", postgres_url)
    table = f"ghl_ops_test_{sandbox.location_id.lower()[:8]}"
    pg = PostgresHook(postgres_conn_id="crm_pg")
    pg.run(f"DROP TABLE IF EXISTS {table}")
    try:
        op = GHLSearchContactsOperator(
            task_id="to_pg",
            filters=[{"field": "tags", "operator": "eq", "value": "customer"}],
            output_table=table,
            output_conn_id="crm_pg",
        )
        first = run_operator(op)
        second = run_operator(op)
        count = pg.get_first(f"SELECT count(*) FROM {table}")[0]
        assert first["count"] == second["count"] == count > 0
    finally:
        pg.run(f"DROP TABLE IF EXISTS {table}")
