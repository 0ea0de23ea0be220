"""Hooks of the HighLevel Contacts provider (:class:`~.contacts.GHLContactsHook`, formerly
``ContactsHook``, which stays importable under that name)."""

from __future__ import annotations

from typing import Any

__all__ = ["ContactsHook", "GHLContactsHook"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not import Airflow
    if name in __all__:
        from airflow_provider_contacts.hooks import contacts

        return getattr(contacts, name)
    raise AttributeError(name)
