"""HighLevel webhooks: a receiver that verifies signed events and stores them durably in the target.

* :mod:`.verify` - ``x-wh-signature`` (RSA-SHA256, HighLevel's published key by default) and
  ``x-ghl-signature`` (Ed25519, where a key is configured) over the exact body bytes;
* :mod:`.events` - event bodies -> :class:`WebhookEvent` (type, webhook id, location, ids, timestamp);
* :mod:`.store` - table ``ghl_webhook_events`` in the target (common-sql + SQLAlchemy Core):
  insert-if-absent by webhook id, and ``pending`` / ``mark_consumed`` for the reconcile;
* :mod:`.app` - the FastAPI receiver (``POST /events``, ``GET /health``);
* :mod:`.plugin` - mounts it on the Airflow API server at ``/ghl-webhooks``;
* ``python -m airflow_provider_contacts.webhooks`` - the same app standalone.

See ``docs/webhooks.md``.
"""

from __future__ import annotations

from airflow_provider_contacts.webhooks.events import DOCUMENTED_EVENT_TYPES, EventParseError, WebhookEvent, parse_event
from airflow_provider_contacts.webhooks.store import (
    TABLE_NAME,
    StorageUnavailable,
    StoredEvent,
    WebhookEventStore,
)
from airflow_provider_contacts.webhooks.verify import (
    ED25519_SIGNATURE_HEADER,
    HIGHLEVEL_RSA_PUBLIC_KEY_PEM,
    RSA_SIGNATURE_HEADER,
    Verification,
    WebhookVerifier,
)

__all__ = [
    "DOCUMENTED_EVENT_TYPES",
    "ED25519_SIGNATURE_HEADER",
    "HIGHLEVEL_RSA_PUBLIC_KEY_PEM",
    "RSA_SIGNATURE_HEADER",
    "TABLE_NAME",
    "EventParseError",
    "StorageUnavailable",
    "StoredEvent",
    "Verification",
    "WebhookEvent",
    "WebhookEventStore",
    "WebhookVerifier",
    "parse_event",
]
