"""A sales manager's DAG schedules, reschedules, completes and cleans up follow-up tasks."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.operators.tasks import (
    GHLCompleteTaskOperator,
    GHLCreateTaskOperator,
    GHLDeleteTaskOperator,
    GHLGetTaskOperator,
    GHLListTasksOperator,
    GHLUpdateTaskOperator,
)
from airflow_provider_contacts.params import GHLInputError


def _tasks_of(sandbox, contact_id: str) -> dict[str, dict]:
    return {t["id"]: t for t in sandbox.admin.dump()["tasks"] if t["contactId"] == contact_id}


def test_a_follow_up_task_goes_through_its_whole_life(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    ids = {"contact_id": contact["id"]}
    created = run_operator(
        GHLCreateTaskOperator(
            task_id="create", **ids, body={"title": "Call back", "dueDate": "2031-03-01T09:00:00+01:00", "body": "About the quote"}
        )
    )
    assert created["title"] == "Call back" and created["completed"] is False
    stored = _tasks_of(sandbox, contact["id"])[created["id"]]
    assert stored["dueDate"].startswith("2031-03-01T08:00:00")  # sent in UTC

    got = run_operator(GHLGetTaskOperator(task_id="get", **ids, ghl_task_id=created["id"]))
    assert got["id"] == created["id"] and got["contactId"] == contact["id"]

    moved = run_operator(
        GHLUpdateTaskOperator(task_id="move", **ids, ghl_task_id=created["id"], body={"dueDate": "2031-03-08T08:00:00Z"})
    )
    assert moved["dueDate"].startswith("2031-03-08T08:00:00")

    done = run_operator(GHLCompleteTaskOperator(task_id="done", **ids, ghl_task_id=created["id"]))
    assert done["completed"] is True and _tasks_of(sandbox, contact["id"])[created["id"]]["completed"] is True
    reopened = run_operator(GHLCompleteTaskOperator(task_id="reopen", **ids, ghl_task_id=created["id"], completed=False))
    assert reopened["completed"] is False

    deleted = run_operator(GHLDeleteTaskOperator(task_id="delete", **ids, ghl_task_id=created["id"]))
    assert deleted == {"contact_id": contact["id"], "task_id": created["id"], "deleted": True, "missing": False}
    assert created["id"] not in _tasks_of(sandbox, contact["id"])
    again = run_operator(GHLDeleteTaskOperator(task_id="delete", **ids, ghl_task_id=created["id"]))
    assert again["deleted"] is False and again["missing"] is True
    with pytest.raises(GHLNotFoundError):
        run_operator(GHLGetTaskOperator(task_id="get", **ids, ghl_task_id=created["id"]))
    for op_id in ("create-task", "get-task", "update-task", "update-task-completed", "delete-task"):
        assert calls(sandbox, op_id) >= 1, op_id


def test_list_tasks_returns_every_task_of_the_contact(sandbox, ghl_conn) -> None:
    tasks = sandbox.admin.dump()["tasks"]
    busiest = max({t["contactId"] for t in tasks}, key=lambda cid: sum(t["contactId"] == cid for t in tasks))
    expected = _tasks_of(sandbox, busiest)
    result = run_operator(GHLListTasksOperator(task_id="list", contact_id=busiest))
    assert result["count"] == len(expected) > 10
    assert {r["id"] for r in result["records"]} == set(expected)
    with pytest.raises(GHLInputError, match="more than 10 records"):
        run_operator(GHLListTasksOperator(task_id="list", contact_id=busiest, max_xcom_records=10))


def test_bad_task_inputs_fail_before_any_request(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    with pytest.raises(GHLInputError, match=r"field 'dueDate'.*'next week'.*ISO 8601"):
        run_operator(GHLCreateTaskOperator(task_id="c", contact_id=contact["id"], body={"title": "x", "dueDate": "next week"}))
    with pytest.raises(GHLInputError, match="parameter 'ghl_task_id'"):
        run_operator(GHLCompleteTaskOperator(task_id="c", contact_id=contact["id"], ghl_task_id=" "))
    with pytest.raises(GHLInputError, match="at least one field"):
        run_operator(GHLUpdateTaskOperator(task_id="u", contact_id=contact["id"], ghl_task_id="abc", body={}))
    assert sandbox.admin.counters()["total"] == 0
