"""A marketing DAG tags contacts one by one and in bulk."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts.errors import GHLAPIError
from airflow_provider_contacts.operators.tags import GHLAddTagsOperator, GHLBulkUpdateTagsOperator, GHLRemoveTagsOperator
from airflow_provider_contacts.params import GHLInputError


def _tags(sandbox, contact_id: str) -> set[str]:
    return set({c["id"]: c for c in sandbox.admin.dump()["contacts"]}[contact_id]["tags"])


def test_add_and_remove_tags_on_one_contact(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox, tags=lambda t: "vip" not in t)
    added = run_operator(GHLAddTagsOperator(task_id="tag", contact_id=contact["id"], tags="vip, spring-promo"))
    assert {"vip", "spring-promo"} <= set(added["tags"]) and added["contact_id"] == contact["id"]
    assert {"vip", "spring-promo"} <= _tags(sandbox, contact["id"])
    removed = run_operator(GHLRemoveTagsOperator(task_id="untag", contact_id=contact["id"], tags=["spring-promo"]))
    assert "spring-promo" not in removed["tags"] and "spring-promo" not in _tags(sandbox, contact["id"])
    assert calls(sandbox, "add-tags") == calls(sandbox, "remove-tags") == 1


def test_bulk_tagging_reports_per_contact_errors(sandbox, ghl_conn) -> None:
    contacts = sandbox.admin.dump()["contacts"][:3]
    ids = [c["id"] for c in contacts]
    result = run_operator(
        GHLBulkUpdateTagsOperator(task_id="bulk", action="add", contact_ids=[*ids, "unknownContact01"], tags=["q3-campaign"])
    )
    assert result["action"] == "add" and result["error_count"] == 1
    assert len(result["errors"]) == 1 and "unknownContact01" in result["errors"][0]["message"]
    assert all("q3-campaign" in _tags(sandbox, cid) for cid in ids)
    removed = run_operator(
        GHLBulkUpdateTagsOperator(task_id="bulk", action="{{ params.action }}", contact_ids=ids, tags=["q3-campaign"]),
        params={"action": "remove"},
    )
    assert removed["error_count"] == 0 and removed["succeeded"] is True
    assert not any("q3-campaign" in _tags(sandbox, cid) for cid in ids)
    assert calls(sandbox, "create-association") == 2


def test_bulk_tag_errors_reported_by_the_api_fail_with_a_retryable_error_naming_them(sandbox, ghl_conn) -> None:
    # Per-contact errors are answers of the API, not bad parameters: the task must fail with an
    # ordinary error (its retries apply), not GHLInputError (an AirflowFailException, no retries).
    good = sandbox.admin.dump()["contacts"][0]["id"]
    with pytest.raises(GHLAPIError, match="1 contact\\(s\\) were not updated") as err:
        run_operator(
            GHLBulkUpdateTagsOperator(
                task_id="b", action="add", contact_ids=[good, "unknownContact01"], tags=["x"], fail_on_errors=True
            )
        )
    assert not isinstance(err.value, (GHLInputError, AirflowFailException))
    assert "unknownContact01" in str(err.value) and err.value.operation == "create-association"
    assert "x" in _tags(sandbox, good) and calls(sandbox, "create-association") == 1


def test_bulk_tag_inputs_are_checked(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match="parameter 'action'"):
        run_operator(GHLBulkUpdateTagsOperator(task_id="b", action="toggle", contact_ids=["a1"], tags=["x"]))
    with pytest.raises(GHLInputError, match="remove_all_tags"):
        run_operator(GHLBulkUpdateTagsOperator(task_id="b", action="add", contact_ids=["a1"], remove_all_tags=True))
    with pytest.raises(GHLInputError, match="parameter 'contact_ids'"):
        run_operator(GHLBulkUpdateTagsOperator(task_id="b", action="add", contact_ids=[], tags=["x"]))
    with pytest.raises(GHLInputError, match=r"field 'tags'.*non-empty"):
        run_operator(GHLAddTagsOperator(task_id="t", contact_id="a1", tags=["ok", " "]))
    assert sandbox.admin.counters()["total"] == 0
