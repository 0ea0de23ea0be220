"""An account-based-marketing DAG attaches contacts to a business and lists the business's contacts."""

from __future__ import annotations

import pytest
from test_operators_base import calls, run_operator

from airflow_provider_contacts.operators.businesses import (
    GHLBulkUpdateContactsBusinessOperator,
    GHLGetContactsByBusinessOperator,
)
from airflow_provider_contacts.params import GHLInputError

BUSINESS = "63b7ec34ea409a9a8bd2a4ff"


def test_attach_contacts_to_a_business_list_them_and_detach_them(sandbox, ghl_conn, tmp_path) -> None:
    ids = [c["id"] for c in sandbox.admin.dump()["contacts"][:130]]
    attached = run_operator(GHLBulkUpdateContactsBusinessOperator(task_id="attach", contact_ids=ids, business_id=BUSINESS))
    assert attached == {"business_id": BUSINESS, "succeeded": True, "ids": ids, "count": 130}

    listed = run_operator(GHLGetContactsByBusinessOperator(task_id="list", business_id=BUSINESS, max_xcom_records=200))
    assert listed["count"] == 130 and {r["id"] for r in listed["records"]} == set(ids)
    assert calls(sandbox, "get-contacts-by-businessId") == 2  # pages of 100

    target = tmp_path / "business.jsonl"
    exported = run_operator(GHLGetContactsByBusinessOperator(task_id="export", business_id=BUSINESS, output_path=str(target)))
    assert exported["count"] == 130 and len(target.read_text().splitlines()) == 130

    detached = run_operator(
        GHLBulkUpdateContactsBusinessOperator(task_id="detach", contact_ids=ids[:30], business_id="{{ params.none }}"),
        params={"none": None},
    )
    assert detached["business_id"] is None and detached["count"] == 30
    still = {c["id"] for c in sandbox.admin.dump()["contacts"] if c.get("businessId") == BUSINESS}
    assert still == set(ids[30:])


def test_business_inputs_are_checked(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match="parameter 'business_id'"):
        run_operator(GHLGetContactsByBusinessOperator(task_id="l", business_id=""))
    with pytest.raises(GHLInputError, match="parameter 'contact_ids'"):
        run_operator(GHLBulkUpdateContactsBusinessOperator(task_id="a", contact_ids="", business_id=BUSINESS))
    assert sandbox.admin.counters()["total"] == 0
