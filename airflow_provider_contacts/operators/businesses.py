"""Operators for businesses: list a business's contacts, attach/detach contacts in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.models import BulkBusinessBody
from airflow_provider_contacts.operators.base import GHLBaseOperator, GHLRecordsOperator
from airflow_provider_contacts.operators.contacts import CONTACT_KEY_FIELDS
from airflow_provider_contacts.params import check_id
from airflow_provider_contacts.results import to_jsonable

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook


class GHLGetContactsByBusinessOperator(GHLRecordsOperator):
    """List the contacts of a business (``GET /contacts/business/{businessId}``).

    :param business_id: the business. Templated.
    :param query: free-text filter. Templated.

    Output: XCom (at most ``max_xcom_records``), ``output_table`` or ``output_path``.
    Reading only: idempotent.
    """

    operation_id = "get-contacts-by-businessId"
    hook_method = "iter_contacts_by_business"
    key_fields = CONTACT_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLRecordsOperator.template_fields, "business_id", "query")
    id_params = ("business_id",)

    def __init__(self, *, business_id: str, query: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.business_id = business_id
        self.query = query

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        return hook.iter_contacts_by_business(self._id("business_id"), query=self.query or None)


class GHLBulkUpdateContactsBusinessOperator(GHLBaseOperator):
    """Attach contacts to a business, or detach them (``POST /contacts/bulk/business``).

    :param contact_ids: the contacts (list, JSON list or comma-separated string). Templated.
    :param business_id: the business to attach them to; ``None`` (or empty) detaches them from
        their business. Templated.

    XCom: ``{"business_id", "succeeded": bool, "ids": [...], "count": n}``. Idempotent.
    """

    operation_id = "add-remove-contact-from-business"
    hook_method = "bulk_update_business"
    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "contact_ids", "business_id")

    def __init__(self, *, contact_ids: list[str] | str, business_id: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contact_ids = contact_ids
        self.business_id = business_id

    def _checked(self) -> BulkBusinessBody:
        business = self.business_id.strip() if isinstance(self.business_id, str) else self.business_id
        if business in ("", "None", "null"):
            business = None
        if business is not None:
            business = check_id(self._owner, "business_id", business, self.operation_id)
        body = {"locationId": self.hook.location_id or "", "ids": self._ids("contact_ids"), "businessId": business}
        return self._body(BulkBusinessBody, "contact_ids/business_id", body)

    def validate(self) -> None:
        self._checked()

    def call(self, hook: GHLContactsHook) -> Any:
        body = self._checked()
        return hook.bulk_update_business(body.ids, body.businessId)

    def shape(self, result: Any) -> dict[str, Any]:
        data = to_jsonable(result)
        ids = list(data.get("ids", []))
        return {"business_id": self._checked().businessId, "succeeded": bool(data.get("success")), "ids": ids, "count": len(ids)}


__all__ = ["GHLBulkUpdateContactsBusinessOperator", "GHLGetContactsByBusinessOperator"]
