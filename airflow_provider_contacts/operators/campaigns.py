"""Operators for campaigns: add a contact to a campaign, remove it from one or from all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.operators.base import GHLContactOperator, GHLDeleteMixin
from airflow_provider_contacts.results import succeeded

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook


class _CampaignOperator(GHLContactOperator):
    """Base of the campaign operators: XCom ``{"contact_id", ["campaign_id",] "succeeded"}``."""

    def shape(self, result: Any) -> dict[str, Any]:
        shaped: dict[str, Any] = {"contact_id": self._id("contact_id")}
        if hasattr(self, "campaign_id"):
            shaped["campaign_id"] = self._id("campaign_id")
        shaped["succeeded"] = succeeded(result)
        return shaped


class _OneCampaignOperator(_CampaignOperator):
    """Adds ``campaign_id`` (templated)."""

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "campaign_id")
    id_params = ("contact_id", "campaign_id")

    def __init__(self, *, campaign_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id


class GHLAddContactToCampaignOperator(_OneCampaignOperator):
    """Add a contact to a campaign (``POST /contacts/{contactId}/campaigns/{campaignId}``).

    :param campaign_id: the campaign. Templated.

    Idempotent on HighLevel's side (a contact is in a campaign once).
    """

    operation_id = "add-contact-to-campaign"
    hook_method = "add_contact_to_campaign"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.add_contact_to_campaign(self._id("contact_id"), self._id("campaign_id"))


class GHLRemoveContactFromCampaignOperator(GHLDeleteMixin, _OneCampaignOperator):
    """Remove a contact from a campaign (``DELETE /contacts/{contactId}/campaigns/{campaignId}``).

    :param campaign_id: the campaign. Templated.
    :param missing_ok: a contact (or campaign) that does not exist - 404, or the live API's 400
        ``... not found`` - counts as removed (default True); with False the task fails at once.

    XCom: ``{"contact_id", "campaign_id", "succeeded": bool, "missing": bool}``. Idempotent.
    """

    operation_id = "remove-contact-from-campaign"
    hook_method = "remove_contact_from_campaign"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.remove_contact_from_campaign(self._id("contact_id"), self._id("campaign_id"))


class GHLRemoveContactFromAllCampaignsOperator(GHLDeleteMixin, _CampaignOperator):
    """Remove a contact from every campaign (``DELETE /contacts/{contactId}/campaigns/removeAll``).

    :param missing_ok: a contact that does not exist (404, or the live API's 400 ``Contact not
        found``) counts as removed (default True); with False the task fails at once.

    XCom: ``{"contact_id", "succeeded": bool, "missing": bool}``. Idempotent.
    """

    operation_id = "remove-contact-from-every-campaign"
    hook_method = "remove_contact_from_all_campaigns"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.remove_contact_from_all_campaigns(self._id("contact_id"))


__all__ = [
    "GHLAddContactToCampaignOperator",
    "GHLRemoveContactFromAllCampaignsOperator",
    "GHLRemoveContactFromCampaignOperator",
]
