"""A DAG makes the account owner follow their new leads, and unfollow lost ones."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow_provider_contacts.operators.followers import GHLAddFollowersOperator, GHLRemoveFollowersOperator
from airflow_provider_contacts.params import GHLInputError

OWNER, ASSISTANT = "sx6wyHhbFdRXh302Lunr", "Mx6wyHhbFdRXh302Luer"


def test_followers_are_added_and_removed(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    added = run_operator(GHLAddFollowersOperator(task_id="follow", contact_id=contact["id"], followers=[OWNER, ASSISTANT]))
    assert added == {"contact_id": contact["id"], "followers": [OWNER, ASSISTANT], "followersAdded": [OWNER, ASSISTANT]}
    again = run_operator(GHLAddFollowersOperator(task_id="follow", contact_id=contact["id"], followers=[OWNER]))
    assert again["followers"] == [OWNER, ASSISTANT] and again["followersAdded"] == []  # nothing new: idempotent
    removed = run_operator(GHLRemoveFollowersOperator(task_id="unfollow", contact_id=contact["id"], followers=f'["{ASSISTANT}"]'))
    assert removed["followers"] == [OWNER] and removed["followersRemoved"] == [ASSISTANT]
    stored = {c["id"]: c for c in sandbox.admin.dump()["contacts"]}[contact["id"]]
    assert stored["followers"] == [OWNER]
    assert calls(sandbox, "add-followers-contact") == 2 and calls(sandbox, "remove-followers-contact") == 1


def test_followers_must_be_given(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLInputError, match=r"parameter 'followers'.*'followers'"):
        run_operator(GHLAddFollowersOperator(task_id="f", contact_id="abc", followers=[]))
    assert sandbox.admin.counters()["total"] == 0
