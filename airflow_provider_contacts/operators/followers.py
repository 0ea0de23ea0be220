"""Operators for the followers (users following a contact): add, remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_contacts.models import FollowersBody
from airflow_provider_contacts.operators.base import GHLContactOperator, GHLDeleteMixin
from airflow_provider_contacts.results import to_jsonable

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook


class _FollowersOperator(GHLContactOperator):
    """Base of the follower operators: adds ``followers`` (templated list of user ids)."""

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "followers")
    #: Result field listing the followers this call changed.
    changed_field: ClassVar[str]

    def __init__(self, *, followers: list[str] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.followers = followers

    def validate(self) -> None:
        super().validate()
        self._list_body(FollowersBody, "followers")

    def call(self, hook: GHLContactsHook) -> Any:
        """``hook.add_followers`` / ``hook.remove_followers`` (the class's ``hook_method``)."""
        followers = self._list_body(FollowersBody, "followers").followers
        return getattr(hook, self.hook_method)(self._id("contact_id"), followers)

    def shape(self, result: Any) -> dict[str, Any]:
        data = to_jsonable(result)
        return {
            "contact_id": self._id("contact_id"),
            "followers": list(data.get("followers") or []),
            self.changed_field: list(data.get(self.changed_field) or []),
        }


class GHLAddFollowersOperator(_FollowersOperator):
    """Add followers (user ids) to a contact (``POST /contacts/{contactId}/followers``).

    :param followers: user ids (list, JSON list or comma-separated string). Templated.

    XCom: ``{"contact_id", "followers", "followersAdded"}``. Idempotent.
    """

    operation_id = "add-followers-contact"
    hook_method = "add_followers"
    changed_field = "followersAdded"


class GHLRemoveFollowersOperator(GHLDeleteMixin, _FollowersOperator):
    """Remove followers from a contact (``DELETE /contacts/{contactId}/followers``).

    :param followers: user ids. Templated.
    :param missing_ok: a contact that does not exist (404, or the live API's 400 ``Contact not
        found``) counts as done (default True); with False the task fails at once.

    XCom: ``{"contact_id", "followers", "followersRemoved", "missing": bool}``. Idempotent.
    """

    operation_id = "remove-followers-contact"
    hook_method = "remove_followers"
    changed_field = "followersRemoved"
    missing_result: ClassVar[Any] = {}


__all__ = ["GHLAddFollowersOperator", "GHLRemoveFollowersOperator"]
