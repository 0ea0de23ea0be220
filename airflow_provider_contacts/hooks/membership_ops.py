"""Membership operations of ``ContactsHook``: tags, followers, campaigns, workflows, and the
contact's appointments.

Every id placed in a request path (``contact_id``, ``campaign_id``, ``workflow_id``) goes through
:func:`~.operations.api_path`: a value that is not a HighLevel id raises
:class:`~airflow_provider_contacts.errors.GHLValidationError` naming it, before any request.
Follower ids and tags travel in the JSON body, not in the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from airflow_provider_contacts.hooks.operations import (
    READ,
    WRITE,
    OperationsBase,
    api_path,
    confirmed,
    current_operation,
    operation,
)
from airflow_provider_contacts.models import (
    Appointment,
    FollowersBody,
    FollowersResult,
    TagsBody,
    WorkflowBody,
    validate_body,
)


#: Request paths of contacts.json's membership operations (placeholders: the hook's parameters).
TAGS_PATH = "/contacts/{contact_id}/tags"
FOLLOWERS_PATH = "/contacts/{contact_id}/followers"
CAMPAIGN_PATH = "/contacts/{contact_id}/campaigns/{campaign_id}"
ALL_CAMPAIGNS_PATH = "/contacts/{contact_id}/campaigns/removeAll"
WORKFLOW_PATH = "/contacts/{contact_id}/workflow/{workflow_id}"


class MembershipOperations(OperationsBase):
    """What a contact belongs to: tags, followers, campaigns, workflows; and its appointments."""

    # ------------------------------------------------------------------------------------------
    # Tags, appointments, followers, campaigns, workflows
    # ------------------------------------------------------------------------------------------

    @operation("add-tags", WRITE)
    def add_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a contact; returns the contact's tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "add-tags").payload()
        data = self._call("POST", api_path(TAGS_PATH, contact_id=contact_id), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("remove-tags", WRITE)
    def remove_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Remove tags from a contact; returns the contact's remaining tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "remove-tags").payload()
        data = self._call("DELETE", api_path(TAGS_PATH, contact_id=contact_id), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("get-appointments-for-contact", READ)
    def get_appointments(self, contact_id: str) -> list[Appointment]:
        """The contact's appointments (calendar events)."""
        data = self._call("GET", api_path("/contacts/{contact_id}/appointments", contact_id=contact_id))
        return [Appointment.model_validate(e) for e in data.get("events") or []]

    @operation("add-followers-contact", WRITE)
    def add_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Add followers (user ids) to a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "add-followers-contact").payload()
        data = self._call("POST", api_path(FOLLOWERS_PATH, contact_id=contact_id), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("remove-followers-contact", WRITE)
    def remove_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Remove followers (user ids) from a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "remove-followers-contact").payload()
        data = self._call("DELETE", api_path(FOLLOWERS_PATH, contact_id=contact_id), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("add-contact-to-campaign", WRITE)
    def add_contact_to_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Add a contact to a campaign; ``True`` if confirmed."""
        path = api_path(CAMPAIGN_PATH, contact_id=contact_id, campaign_id=campaign_id)
        data = self._call("POST", path, json_body={}, scope=WRITE)
        return confirmed(data)

    @operation("remove-contact-from-campaign", WRITE)
    def remove_contact_from_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Remove a contact from a campaign; ``True`` if confirmed."""
        path = api_path(CAMPAIGN_PATH, contact_id=contact_id, campaign_id=campaign_id)
        data = self._call("DELETE", path, scope=WRITE)
        return confirmed(data)

    @operation("remove-contact-from-every-campaign", WRITE)
    def remove_contact_from_all_campaigns(self, contact_id: str) -> bool:
        """Remove a contact from every campaign; ``True`` if confirmed."""
        data = self._call("DELETE", api_path(ALL_CAMPAIGNS_PATH, contact_id=contact_id), scope=WRITE)
        return confirmed(data)

    def _workflow(self, method: str, contact_id: str, workflow_id: str, event_start_time: datetime | str | None) -> bool:
        path = api_path(WORKFLOW_PATH, contact_id=contact_id, workflow_id=workflow_id)
        body = {} if event_start_time is None else {"eventStartTime": event_start_time}
        payload = validate_body(WorkflowBody, body, current_operation.get()).payload()
        data = self._call(method, path, json_body=payload, scope=WRITE)
        return confirmed(data)

    @operation("add-contact-to-workflow", WRITE)
    def add_contact_to_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Add a contact to a workflow (optionally at ``event_start_time``); ``True`` if confirmed."""
        return self._workflow("POST", contact_id, workflow_id, event_start_time)

    @operation("delete-contact-from-workflow", WRITE)
    def remove_contact_from_workflow(
        self, contact_id: str, workflow_id: str, event_start_time: datetime | str | None = None
    ) -> bool:
        """Remove a contact from a workflow; ``True`` if confirmed."""
        return self._workflow("DELETE", contact_id, workflow_id, event_start_time)
