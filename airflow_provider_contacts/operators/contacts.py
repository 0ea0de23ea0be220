"""Operators for contacts: search, duplicate lookup, get, create, update, upsert, delete, legacy list.

Each operator wraps one contacts.json operation (its ``operation_id``) and one hook call. Bodies
are validated with the hook's request models before any request; errors name the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.models import CreateContact, SearchSort, UpdateContact, UpsertContact
from airflow_provider_contacts.operators.base import (
    GHLBaseOperator,
    GHLBodyMixin,
    GHLContactOperator,
    GHLDeleteMixin,
    GHLRecordsOperator,
)
from airflow_provider_contacts.params import coerce_list, input_error, validate_filters, validate_request
from airflow_provider_contacts.results import pick, to_jsonable

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: Key fields of a contact in XCom results and in output tables.
CONTACT_KEY_FIELDS: tuple[str, ...] = (
    "id",
    "locationId",
    "email",
    "phone",
    "firstName",
    "lastName",
    "companyName",
    "tags",
    "businessId",
    "dateAdded",
    "dateUpdated",
)


class GHLSearchContactsOperator(GHLRecordsOperator):
    """Search the location's contacts with advanced filters (``POST /contacts/search``).

    Pages through every match (``searchAfter`` cursor) and streams them to ``output_table`` /
    ``output_path``, or returns them in XCom (at most ``max_xcom_records``).

    :param filters: list of search filters ``{"field", "operator", "value"}`` or groups
        ``{"group": "AND"|"OR", "filters": [...]}``; e.g.
        ``[{"field": "tags", "operator": "eq", "value": "vip"}]``. Templated (dict or JSON).
    :param sort: list of ``{"field", "direction": "asc"|"desc"}``. Templated.
    :param query: free-text query (name, email, phone, ...). Templated.
    :param page_limit: contacts per request (1-500).

    Reading only: idempotent.
    """

    operation_id = "search-contacts-advanced"
    hook_method = "iter_search_contacts"
    key_fields = CONTACT_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLRecordsOperator.template_fields, "filters", "sort", "query")

    def __init__(
        self,
        *,
        filters: list[dict[str, Any]] | str | None = None,
        sort: list[dict[str, Any]] | str | None = None,
        query: str | None = None,
        page_limit: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.sort = sort
        self.query = query
        self.page_limit = page_limit

    def _search(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The rendered filters and sort, validated with the hook's models."""
        filters = validate_filters(self._owner, "filters", self.filters, self.operation_id)
        sort = [
            validate_request(self._owner, f"sort[{i}]", SearchSort, item, self.operation_id).payload()
            for i, item in enumerate(coerce_list(self._owner, "sort", self.sort, self.operation_id))
        ]
        return filters, sort

    def validate(self) -> None:
        super().validate()
        if isinstance(self.page_limit, bool) or not isinstance(self.page_limit, int) or not 1 <= self.page_limit <= 500:
            raise input_error(self._owner, "page_limit", f"must be an integer from 1 to 500, got {self.page_limit!r}", self.operation_id)
        self._search()

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        filters, sort = self._search()
        return hook.iter_search_contacts(filters=filters, sort=sort, query=self.query or None, page_limit=self.page_limit)


class GHLGetDuplicateContactOperator(GHLBaseOperator):
    """Find the contact that an email and/or phone number would duplicate
    (``GET /contacts/search/duplicate``), following the location's duplicate settings.

    :param email: email to look up. Templated.
    :param number: phone number to look up. Templated.

    XCom: ``{"found": bool, "id": ..., <key fields>}``. Reading only: idempotent.
    """

    operation_id = "get-duplicate-contact"
    hook_method = "get_duplicate_contact"
    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "email", "number")

    def __init__(self, *, email: str | None = None, number: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.number = number

    def validate(self) -> None:
        if not (self.email or "").strip() and not (self.number or "").strip():
            raise input_error(self._owner, "email", "set email or number (or both) to look a duplicate up", self.operation_id)

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.get_duplicate_contact(email=(self.email or "").strip() or None, number=(self.number or "").strip() or None)

    def shape(self, result: Any) -> dict[str, Any]:
        if result is None:
            return {"found": False}
        return {"found": True, **pick(to_jsonable(result), CONTACT_KEY_FIELDS)}


class GHLGetContactOperator(GHLContactOperator):
    """Get one contact (``GET /contacts/{contactId}``).

    XCom: the whole contact (one record, API field names). Reading only: idempotent.
    """

    operation_id = "get-contact"
    hook_method = "get_contact"

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.get_contact(self._id("contact_id"))


class GHLCreateContactOperator(GHLBodyMixin, GHLBaseOperator):
    """Create a contact (``POST /contacts/``).

    :param body: the contact (``CreateContactDto`` fields, e.g. ``{"email": ..., "firstName": ...,
        "tags": [...]}``); ``locationId`` defaults to the connection's. Templated.

    XCom: the new contact's id and key fields. **Not idempotent**: a retry or a re-run can create a
    second contact (or fail on the duplicate check); use :class:`GHLUpsertContactOperator` for
    repeatable loads.
    """

    operation_id = "create-contact"
    hook_method = "create_contact"
    body_model = CreateContact
    result_fields = CONTACT_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.create_contact(self.validated_body())


class GHLUpdateContactOperator(GHLBodyMixin, GHLContactOperator):
    """Update fields of a contact (``PUT /contacts/{contactId}``).

    :param body: only the fields to change (``UpdateContactDto``); ``tags`` replaces every tag
        (use the tag operators to add or remove some). Templated.

    XCom: the contact's id and key fields. Idempotent: the same body gives the same contact.
    """

    operation_id = "update-contact"
    hook_method = "update_contact"
    body_model = UpdateContact
    result_fields = CONTACT_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLContactOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.update_contact(self._id("contact_id"), self.validated_body())


class GHLUpsertContactOperator(GHLBodyMixin, GHLBaseOperator):
    """Create a contact, or update the one with the same email/phone (``POST /contacts/upsert``),
    following the location's "Allow Duplicate Contact" settings.

    :param body: the contact (``UpsertContactDto``). Templated.

    XCom: ``{"id": ..., "new": bool, <key fields>}``. Idempotent: re-running updates the same contact.
    """

    operation_id = "upsert-contact"
    hook_method = "upsert_contact"
    body_model = UpsertContact
    template_fields: Sequence[str] = (*GHLBaseOperator.template_fields, "body")

    def call(self, hook: GHLContactsHook) -> Any:
        return hook.upsert_contact(self.validated_body())

    def shape(self, result: Any) -> dict[str, Any]:
        return {"new": bool(result.new), **pick(to_jsonable(result.contact), CONTACT_KEY_FIELDS)}


class GHLDeleteContactOperator(GHLDeleteMixin, GHLContactOperator):
    """Delete a contact (``DELETE /contacts/{contactId}``).

    :param missing_ok: treat a contact that does not exist - 404, or the live API's 400 ``Contact
        not found`` - as deleted (default True), which makes the operator idempotent; with False the
        task fails at once on a missing contact (no retries).

    XCom: ``{"contact_id": ..., "deleted": bool, "missing": bool}`` (``deleted`` False and
    ``missing`` True: it was already gone). Idempotent with ``missing_ok=True``.
    """

    operation_id = "delete-contact"
    hook_method = "delete_contact"

    def call(self, hook: GHLContactsHook) -> bool:
        return hook.delete_contact(self._id("contact_id"))

    def shape(self, result: Any) -> dict[str, Any]:
        return {"contact_id": self._id("contact_id"), "deleted": bool(result)}


class GHLGetContactsOperator(GHLRecordsOperator):
    """List contacts with the legacy endpoint (``GET /contacts/``, deprecated by HighLevel).

    Prefer :class:`GHLSearchContactsOperator`; this one exists for parity with the API.

    :param query: free-text query. Templated.
    :param limit: contacts per request (1-100).

    Reading only: idempotent.
    """

    operation_id = "get-contacts"
    hook_method = "iter_contacts_legacy"
    key_fields = CONTACT_KEY_FIELDS
    template_fields: Sequence[str] = (*GHLRecordsOperator.template_fields, "query")

    def __init__(self, *, query: str | None = None, limit: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.limit = limit

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.limit, int) or not 1 <= self.limit <= 100:
            raise input_error(self._owner, "limit", f"must be an integer from 1 to 100, got {self.limit!r}", self.operation_id)

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        self.log.warning("GET /contacts/ (get-contacts) is deprecated by HighLevel; prefer GHLSearchContactsOperator")
        return hook.iter_contacts_legacy(query=self.query or None, limit=self.limit)


__all__ = [
    "CONTACT_KEY_FIELDS",
    "GHLCreateContactOperator",
    "GHLDeleteContactOperator",
    "GHLGetContactOperator",
    "GHLGetContactsOperator",
    "GHLGetDuplicateContactOperator",
    "GHLSearchContactsOperator",
    "GHLUpdateContactOperator",
    "GHLUpsertContactOperator",
]
