"""Membership operations of ``ContactsHook``: tags, followers, campaigns, workflows, and the
contact's appointments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from airflow_provider_contacts.hooks.operations import (
    READ,
    WRITE,
    OperationsBase,
    confirmed,
    current_operation,
    operation,
    segment,
)
from airflow_provider_contacts.models import (
    Appointment,
    FollowersBody,
    FollowersResult,
    TagsBody,
    WorkflowBody,
    validate_body,
)


class MembershipOperations(OperationsBase):
    """What a contact belongs to: tags, followers, campaigns, workflows; and its appointments."""

    # ------------------------------------------------------------------------------------------
    # Tags, appointments, followers, campaigns, workflows
    # ------------------------------------------------------------------------------------------

    def _contact_sub(self, contact_id: str, *parts: tuple[str, str] | str) -> str:
        segments = [f"/contacts/{segment(contact_id, 'contact_id')}"]
        for part in parts:
            segments.append(part if isinstance(part, str) else segment(part[0], part[1]))
        return "/".join(segments)

    @operation("add-tags", WRITE)
    def add_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a contact; returns the contact's tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "add-tags").payload()
        data = self._call("POST", self._contact_sub(contact_id, "tags"), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("remove-tags", WRITE)
    def remove_tags(self, contact_id: str, tags: Sequence[str]) -> list[str]:
        """Remove tags from a contact; returns the contact's remaining tags."""
        payload = validate_body(TagsBody, {"tags": list(tags)}, "remove-tags").payload()
        data = self._call("DELETE", self._contact_sub(contact_id, "tags"), json_body=payload, scope=WRITE)
        return list(data.get("tags") or [])

    @operation("get-appointments-for-contact", READ)
    def get_appointments(self, contact_id: str) -> list[Appointment]:
        """The contact's appointments (calendar events)."""
        data = self._call("GET", self._contact_sub(contact_id, "appointments"))
        return [Appointment.model_validate(e) for e in data.get("events") or []]

    @operation("add-followers-contact", WRITE)
    def add_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Add followers (user ids) to a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "add-followers-contact").payload()
        data = self._call("POST", self._contact_sub(contact_id, "followers"), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("remove-followers-contact", WRITE)
    def remove_followers(self, contact_id: str, followers: Sequence[str]) -> FollowersResult:
        """Remove followers (user ids) from a contact."""
        payload = validate_body(FollowersBody, {"followers": list(followers)}, "remove-followers-contact").payload()
        data = self._call("DELETE", self._contact_sub(contact_id, "followers"), json_body=payload, scope=WRITE)
        return FollowersResult.model_validate(data)

    @operation("add-contact-to-campaign", WRITE)
    def add_contact_to_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Add a contact to a campaign; ``True`` if confirmed."""
        data = self._call(
            "POST", self._contact_sub(contact_id, "campaigns", (campaign_id, "campaign_id")), json_body={}, scope=WRITE
        )
        return confirmed(data)

    @operation("remove-contact-from-campaign", WRITE)
    def remove_contact_from_campaign(self, contact_id: str, campaign_id: str) -> bool:
        """Remove a contact from a campaign; ``True`` if confirmed."""
        data = self._call("DELETE", self._contact_sub(contact_id, "campaigns", (campaign_id, "campaign_id")), scope=WRITE)
        return confirmed(data)

    @operation("remove-contact-from-every-campaign", WRITE)
    def remove_contact_from_all_campaigns(self, contact_id: str) -> bool:
        """Remove a contact from every campaign; ``True`` if confirmed."""
        data = self._call("DELETE", self._contact_sub(contact_id, "campaigns", "removeAll"), scope=WRITE)
        return confirmed(data)

    def _workflow(self, method: str, contact_id: str, workflow_id: str, event_start_time: datetime | str | None) -> bool:
        body = {} if event_start_time is None else {"eventStartTime": event_start_time}
        payload = validate_body(WorkflowBody, body, current_operation.get()).payload()
        path = self._contact_sub(contact_id, "workflow", (workflow_id, "workflow_id"))
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
