"""A nurture DAG enrols contacts in a drip campaign and takes them out again."""

from __future__ import annotations

import pytest
from test_operators_base import a_contact, calls, run_operator

from airflow_provider_contacts.errors import GHLNotFoundError
from airflow_provider_contacts.operators.campaigns import (
    GHLAddContactToCampaignOperator,
    GHLRemoveContactFromAllCampaignsOperator,
    GHLRemoveContactFromCampaignOperator,
)
from airflow_provider_contacts.params import GHLInputError


def test_a_contact_joins_and_leaves_campaigns(sandbox, ghl_conn) -> None:
    contact = a_contact(sandbox)
    ids = {"contact_id": contact["id"]}
    assert run_operator(GHLAddContactToCampaignOperator(task_id="join", **ids, campaign_id="drip-2024")) == {
        "contact_id": contact["id"], "campaign_id": "drip-2024", "succeeded": True,
    }
    left = run_operator(GHLRemoveContactFromCampaignOperator(task_id="leave", **ids, campaign_id="drip-2024"))
    assert left["succeeded"] is True
    everything = run_operator(GHLRemoveContactFromAllCampaignsOperator(task_id="leave_all", **ids))
    assert everything == {"contact_id": contact["id"], "succeeded": True, "missing": False}
    for op_id in ("add-contact-to-campaign", "remove-contact-from-campaign", "remove-contact-from-every-campaign"):
        assert calls(sandbox, op_id) == 1, op_id


def test_campaign_calls_fail_for_an_unknown_contact_or_an_empty_campaign(sandbox, ghl_conn) -> None:
    with pytest.raises(GHLNotFoundError):
        run_operator(GHLAddContactToCampaignOperator(task_id="join", contact_id="unknownContact01", campaign_id="c1"))
    with pytest.raises(GHLInputError, match="parameter 'campaign_id'"):
        run_operator(GHLRemoveContactFromCampaignOperator(task_id="leave", contact_id="abc", campaign_id=""))
