"""Appointment operations of ``GHLContactsHook``: a contact's appointments (calendar events).

The request is built from its :class:`~.operations.Endpoint`; the contact id goes through
:func:`~.paths.api_path` (a value that is not a HighLevel id raises
:class:`~airflow_provider_contacts.errors.GHLValidationError` naming it, before any request).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_contacts.hooks.operations import READ, Endpoint, OperationsBase, operation
from airflow_provider_contacts.models import Appointment

GET_APPOINTMENTS = Endpoint("GET", "/contacts/{contact_id}/appointments", "get-appointments-for-contact", READ)


def _appointments(data: Any) -> list[Appointment]:
    """The appointments of an answer (its ``events``)."""
    return [Appointment.model_validate(e) for e in data.get("events") or []]


class AppointmentOperations(OperationsBase):
    """A contact's appointments: contacts.json ``get-appointments-for-contact``."""

    @operation(GET_APPOINTMENTS)
    def get_appointments(self, contact_id: str) -> list[Appointment]:
        """The contact's appointments (calendar events)."""
        return self._send(GET_APPOINTMENTS.spec(_appointments, contact_id=contact_id))


__all__ = ["AppointmentOperations"]
