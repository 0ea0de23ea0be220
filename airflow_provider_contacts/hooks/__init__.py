"""Hooks of the HighLevel Contacts provider (:class:`~.contacts.ContactsHook`)."""

from __future__ import annotations

from typing import Any

__all__ = ["ContactsHook"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not import Airflow
    if name == "ContactsHook":
        from airflow_provider_contacts.hooks.contacts import ContactsHook

        return ContactsHook
    raise AttributeError(name)
