"""Operators for tags: add to / remove from one contact, and bulk add/remove over many contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow_provider_contacts.errors import GHLAPIError
from airflow_provider_contacts.models import BulkTagsBody, TagsBody
from airflow_provider_contacts.operators.base import GHLBaseOperator, GHLContactOperator, GHLDeleteMixin
from airflow_provider_contacts.params import coerce_list, input_error
from airflow_provider_contacts.results import to_jsonable

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook


class _TagsOperator(GHLContactOperator):
    """Base of the single-contact tag operators: adds ``tags`` (templated list)."""

    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "tags")

    def __init__(self, *, tags: list[str] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tags = tags

    def validate(self) -> None:
        super().validate()
        self._list_body(TagsBody, "tags")

    def call(self, hook: GHLContactsHook) -> Any:
        """``hook.add_tags`` / ``hook.remove_tags`` (the class's ``hook_method``) with the tags."""
        return getattr(hook, self.hook_method)(self._id("contact_id"), self._list_body(TagsBody, "tags").tags)

    def shape(self, result: Any) -> dict[str, Any]:
        return {"contact_id": self._id("contact_id"), "tags": to_jsonable(result)}


class GHLAddTagsOperator(_TagsOperator):
    """Add tags to a contact (``POST /contacts/{contactId}/tags``).

    :param tags: tags to add (list, JSON list or comma-separated string). Templated.

    XCom: ``{"contact_id", "tags": <the contact's tags after the call>}``. Idempotent.
    """

    operation_id = "add-tags"
    hook_method = "add_tags"


class GHLRemoveTagsOperator(GHLDeleteMixin, _TagsOperator):
    """Remove tags from a contact (``DELETE /contacts/{contactId}/tags``).

    :param tags: tags to remove. Templated.
    :param missing_ok: a contact that does not exist (404, or the live API's 400 ``Contact not
        found``) counts as done (default True; ``tags`` is then ``[]``); with False the task fails
        at once.

    XCom: ``{"contact_id", "tags": <the contact's tags after the call>, "missing": bool}``. Idempotent.
    """

    operation_id = "remove-tags"
    hook_method = "remove_tags"
    missing_result: ClassVar[Any] = []


class GHLBulkUpdateTagsOperator(GHLBaseOperator):
    """Add or remove tags on many contacts at once (``POST /contacts/bulk/tags/update/{type}``).

    :param action: ``"add"`` or ``"remove"`` (the ``{type}`` of the path). Templated.
    :param contact_ids: the contacts (list, JSON list or comma-separated string). Templated.
    :param tags: the tags. Templated.
    :param remove_all_tags: with ``action="remove"``, remove every tag of the contacts.
    :param fail_on_errors: fail the task when HighLevel reports per-contact errors (default
        False: they are returned in XCom and logged). The failure is a
        :class:`~airflow_provider_contacts.errors.GHLAPIError` naming the contacts and the API's
        reasons, so the task's retries apply; bad parameters raise ``GHLInputError`` (no retries).

    XCom: ``{"action", "succeeded": bool, "error_count": n, "errors": [{"contactId"?, "message"}]}``.
    Idempotent.
    """

    operation_id = "create-association"
    hook_method = "bulk_update_tags"
    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "action", "contact_ids", "tags")

    def __init__(
        self,
        *,
        action: Literal["add", "remove"] | str,
        contact_ids: list[str] | str,
        tags: list[str] | str | None = None,
        remove_all_tags: bool = False,
        fail_on_errors: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.contact_ids = contact_ids
        self.tags = tags
        self.remove_all_tags = remove_all_tags
        self.fail_on_errors = fail_on_errors

    def _checked(self) -> BulkTagsBody:
        action = str(self.action).strip().lower()
        if action not in ("add", "remove"):
            raise input_error(self._owner, "action", f"must be 'add' or 'remove', got {self.action!r}", self.operation_id)
        if self.remove_all_tags and action != "remove":
            raise input_error(self._owner, "remove_all_tags", "can only be used with action='remove'", self.operation_id)
        tags = coerce_list(self._owner, "tags", self.tags, self.operation_id)
        if not tags and not self.remove_all_tags:
            raise input_error(self._owner, "tags", "needs at least one tag (or remove_all_tags=True)", self.operation_id)
        body = {
            "contacts": self._ids("contact_ids"),
            "tags": tags,
            "locationId": self.hook.location_id or "",
            "removeAllTags": bool(self.remove_all_tags),
        }
        return self._body(BulkTagsBody, "contact_ids/tags", body)

    def validate(self) -> None:
        self._checked()

    def call(self, hook: GHLContactsHook) -> Any:
        body = self._checked()
        return hook.bulk_update_tags(
            str(self.action).strip().lower(), body.contacts, body.tags, remove_all_tags=bool(body.removeAllTags)
        )

    def shape(self, result: Any) -> dict[str, Any]:
        data = to_jsonable(result)
        errors = _errors(data.get("responses", []))
        if errors:
            self.log.warning("%d contact(s) were not updated: %s", len(errors), errors[:20])
            if self.fail_on_errors:
                raise GHLAPIError(
                    f"{self._owner}: {len(errors)} contact(s) were not updated: {_describe(errors)}",
                    operation=self.operation_id,
                )
        return {
            "action": str(self.action).strip().lower(),
            "succeeded": bool(data.get("succeded", not errors)),
            "error_count": int(data.get("errorCount", len(errors))),
            "errors": errors,
        }


def _describe(errors: list[dict[str, Any]], limit: int = 20) -> str:
    """``"<contactId>: <reason>; ..."`` for the first ``limit`` per-contact errors."""
    shown = "; ".join(
        f"{e['contactId']}: {e.get('message') or 'no reason given'}" if e.get("contactId") else str(e.get("message"))
        for e in errors[:limit]
    )
    return shown + (f"; ... and {len(errors) - limit} more" if len(errors) > limit else "")


def _errors(responses: list[Any]) -> list[dict[str, Any]]:
    """Per-contact errors of a bulk tag answer.

    contacts.json types ``responses`` as strings but its example shows objects
    (``{"contactId", "message", "type": "success" | "error"}``); both are understood: strings
    are error messages, objects count when their ``type`` is ``error``.
    """
    out: list[dict[str, Any]] = []
    for item in responses:
        if isinstance(item, str):
            out.append({"message": item})
        elif isinstance(item, dict) and item.get("type", "error") == "error":
            out.append({"contactId": item.get("contactId"), "message": item.get("message")})
    return out


__all__ = ["GHLAddTagsOperator", "GHLBulkUpdateTagsOperator", "GHLRemoveTagsOperator"]
