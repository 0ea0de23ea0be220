"""Membership operations of ``GHLContactsHook``: what a contact belongs to - its tags, followers,
campaigns and workflows.

Every request is built from its :class:`~.operations.Endpoint`: each id placed in the path
(``contact_id``, ``campaign_id``, ``workflow_id``) goes through :func:`~.paths.api_path`, so a
value that is not a HighLevel id raises
:class:`~airflow_provider_contacts.errors.GHLValidationError` naming it, before any request.
Follower ids and tags travel in the JSON body, not in the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from airflow_provider_contacts.hooks.operations import WRITE, Endpoint, OperationsBase, confirmed, operation
from airflow_provider_contacts.models import FollowersBody, FollowersResult, TagsBody, WorkflowBody, validate_body

#: Request paths of contacts.json's membership operations (placeholders: the hook's parameters).
TAGS_PATH = "/contacts/{contact_id}/tags"
FOLLOWERS_PATH = "/contacts/{contact_id}/followers"
CAMPAIGN_PATH = "/contacts/{contact_id}/campaigns/{campaign_id}"
WORKFLOW_PATH = "/contacts/{contact_id}/workflow/{workflow_id}"

ADD_TAGS = Endpoint("POST", TAGS_PATH, "add-tags", WRITE)
REMOVE_TAGS = Endpoint("DELETE", TAGS_PATH, "remove-tags", WRITE)
ADD_FOLLOWERS = Endpoint("POST", FOLLOWERS_PATH, "add-followers-contact", WRITE)
REMOVE_FOLLOWERS = Endpoint("DELETE", FOLLOWERS_PATH, "remove-followers-contact", WRITE)
ADD_TO_CAMPAIGN = Endpoint("POST", CAMPAIGN_PATH, "add-contact-to-campaign", WRITE)
REMOVE_FROM_CAMPAIGN = Endpoint("DELETE", CAMPAIGN_PATH, "remove-contact-from-campaign", WRITE)
REMOVE_FROM_ALL_CAMPAIGNS = Endpoint(
    "DELETE", "/contacts/{contact_id}/campaigns/removeAll", "remove-contact-from-every-campaign", WRITE
)
ADD_TO_WORKFLOW = Endpoint("POST", WORKFLOW_PATH, "add-contact-to-workflow", WRITE)
REMOVE_FROM_WORKFLOW = Endpoint("DELETE", WORKFLOW_PATH, "delete-contact-from-workflow", WRITE)


def _tags_of(data: object) -> list[str]:
    """The contact's tags in a tags answer."""
    return list(data.get("tags") or []) if isinstance(data, dict) else []


class MembershipOperations(OperationsBase):
    """What a contact belongs to: tags, followers, campaigns, workflows."""

    def _tags(self, endpoint: Endpoint, contact_id: str, tags: Sequence[str]) -> list[str]:
        payload = validate_body(TagsBody, {"tags": list(tags)}, endpoint.operation_id).payload()
        return self._send(endpoint.spec(_tags_of, body=payload, contact_id=contact_id))

    @operation(ADD_TAGS)
    def add_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a contact; returns the contact's tags."""
        return self._tags(ADD_TAGS, contact_id, tags)

    @operation(REMOVE_TAGS)
    def remove_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Remove tags from a contact; returns the contact's remaining tags."""
        return self._tags(REMOVE_TAGS, contact_id, tags)

    def _followers(self, endpoint: Endpoint, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        payload = validate_body(FollowersBody, {"followers": list(followers)}, endpoint.operation_id).payload()
        return self._send(endpoint.spec(FollowersResult.model_validate, body=payload, contact_id=contact_id))

    @operation(ADD_FOLLOWERS)
    def add_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Add followers (user ids) to a contact."""
        return self._followers(ADD_FOLLOWERS, contact_id, followers)

    @operation(REMOVE_FOLLOWERS)
    def remove_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Remove followers (user ids) from a contact."""
        return self._followers(REMOVE_FOLLOWERS, contact_id, followers)

    @operation(ADD_TO_CAMPAIGN)
    def add_contact_to_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Add a contact to a campaign; ``True`` if confirmed."""
        return self._send(ADD_TO_CAMPAIGN.spec(confirmed, body={}, contact_id=contact_id, campaign_id=campaign_id))

    @operation(REMOVE_FROM_CAMPAIGN)
    def remove_contact_from_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Remove a contact from a campaign; ``True`` if confirmed."""
        return self._send(REMOVE_FROM_CAMPAIGN.spec(confirmed, contact_id=contact_id, campaign_id=campaign_id))

    @operation(REMOVE_FROM_ALL_CAMPAIGNS)
    def remove_contact_from_all_campaigns(self, contact_id: str) -> bool:
        """Remove a contact from every campaign; ``True`` if confirmed."""
        return self._send(REMOVE_FROM_ALL_CAMPAIGNS.spec(confirmed, contact_id=contact_id))

    def _workflow(
        self, endpoint: Endpoint, contact_id: str, workflow_id: str, event_start_time: datetime | str | None
    ) -> bool:
        body = {} if event_start_time is None else {"eventStartTime": event_start_time}
        payload = validate_body(WorkflowBody, body, endpoint.operation_id).payload()
        return self._send(endpoint.spec(confirmed, body=payload, contact_id=contact_id, workflow_id=workflow_id))

    @operation(ADD_TO_WORKFLOW)
    def add_contact_to_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Add a contact to a workflow (optionally at ``event_start_time``); ``True`` if confirmed."""
        return self._workflow(ADD_TO_WORKFLOW, contact_id, workflow_id, event_start_time)

    @operation(REMOVE_FROM_WORKFLOW)
    def remove_contact_from_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Remove a contact from a workflow; ``True`` if confirmed."""
        return self._workflow(REMOVE_FROM_WORKFLOW, contact_id, workflow_id, event_start_time)


__all__ = ["MembershipOperations"]
