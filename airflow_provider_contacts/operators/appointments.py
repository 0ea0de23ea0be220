"""Operator for the appointments (calendar events) of a contact."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.operators.base import GHLContactRecordsOperator

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: Key fields of an appointment in XCom results and output tables.
APPOINTMENT_KEY_FIELDS: tuple[str, ...] = (
    "id",
    "contactId",
    "calendarId",
    "title",
    "status",
    "appointmentStatus",
    "startTime",
    "endTime",
)


class GHLGetAppointmentsOperator(GHLContactRecordsOperator):
    """List the appointments of a contact (``GET /contacts/{contactId}/appointments``).

    :param contact_id: the contact's id. Templated.

    Output: XCom (at most ``max_xcom_records``), ``output_table`` or ``output_path``.
    Reading only: idempotent.
    """

    operation_id = "get-appointments-for-contact"
    hook_method = "get_appointments"
    key_fields = APPOINTMENT_KEY_FIELDS

    def iter_records(self, hook: GHLContactsHook) -> Iterable[Any]:
        return hook.get_appointments(self._id("contact_id"))


__all__ = ["APPOINTMENT_KEY_FIELDS", "GHLGetAppointmentsOperator"]
