"""Apache Airflow provider for the HighLevel (LeadConnector) Contacts API.

Airflow discovers this package through the ``apache_airflow_provider`` entry point, which
points at :func:`get_provider_info`. Nothing here imports Airflow or the hook: provider
discovery and the connection form are served from this dictionary alone.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Connection type of a HighLevel connection and the default connection id.
CONN_TYPE = "ghl"
DEFAULT_CONN_ID = "ghl_default"
DEFAULT_BASE_URL = "https://services.leadconnectorhq.com"
DEFAULT_API_VERSION = "2021-07-28"

_OPERATOR_MODULES = [
    "contacts",
    "tasks",
    "notes",
    "tags",
    "appointments",
    "followers",
    "campaigns",
    "workflows",
    "businesses",
]
_SENSOR_MODULES = ["contacts", "tasks", "notes"]
_TRIGGER_MODULES = ["changes", "events", "webhook_events"]

#: Connection form: custom fields stored in ``Connection.extra`` (read by the hook under both the
#: short name and the prefixed ``extra__ghl__<name>`` name).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "location_id": {
        "label": "Location ID",
        "description": "HighLevel sub-account (location) id the connection works in.",
        "schema": {"type": ["string", "null"]},
    },
    "auth_type": {
        "label": "Auth type",
        "description": "private_token: a Private Integration token in 'Access token'. "
        "oauth: an OAuth 2.0 app; tokens are refreshed and rotated through the token store.",
        "schema": {"type": ["string", "null"], "default": "private_token", "enum": ["private_token", "oauth"]},
    },
    "client_id": {
        "label": "OAuth client ID",
        "schema": {"type": ["string", "null"]},
    },
    "client_secret": {
        "label": "OAuth client secret",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "refresh_token": {
        "label": "OAuth initial refresh token",
        "description": "Used once, to seed an empty token store; after that the store holds the "
        "rotated refresh token.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "user_type": {
        "label": "OAuth token user type",
        "description": "Location for a sub-account token; Company for an agency token that the hook "
        "exchanges for each location's token (without a Location ID, the reconcile syncs every "
        "location the app is installed on).",
        "schema": {"type": ["string", "null"], "default": "Location", "enum": ["Location", "Company"]},
    },
    "company_id": {
        "label": "Company (agency) ID",
        "description": "Needed with an agency (Company) token, for /oauth/locationToken.",
        "schema": {"type": ["string", "null"]},
    },
    "app_id": {
        "label": "Marketplace app ID",
        "description": "Agency connections: the app whose installed locations the reconcile discovers "
        "(GET /oauth/installedLocations) when no location_id is set. Empty: the part of the OAuth "
        "client ID before its '-'.",
        "schema": {"type": ["string", "null"]},
    },
    # Not "token_store": Airflow masks every extra whose name contains "token" (shown and saved as
    # "***"). The hook still reads a "token_store" extra when this one is not set.
    "rotation_store": {
        "label": "OAuth rotation store",
        "description": "Where rotated OAuth tokens are kept (this field names a place, it holds no "
        "secret): 'variable' (default, one Airflow Variable per connection), 'variable:<key>', "
        "'file:<path>', 'sql:<conn_id>', 'redis:<conn_id>', or a dotted path to a TokenStore class. "
        "Replaces the former 'token_store' extra.",
        "schema": {"type": ["string", "null"], "default": "variable"},
    },
    "api_version": {
        "label": "API version",
        "description": "Value of the Version header.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_API_VERSION},
    },
    # Read by the hook (hooks/settings.py); empty: 10 s and 60 s.
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to wait for a TCP connection to the API (empty: 10).",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for an answer (empty: 60).",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "rate_limit_redis_conn_id": {
        "label": "Shared rate limit: Redis connection ID",
        "description": "A Redis connection through which every worker calling this location draws from "
        "one rate limiter and daily budget (docs/distributed.md). Empty: each process paces itself.",
        "schema": {"type": ["string", "null"]},
    },
    "rate_limit_key_prefix": {
        "label": "Shared rate limit: Redis key prefix",
        "description": "Prefix of the shared limiter's Redis keys (empty: ghl:ratelimit).",
        "schema": {"type": ["string", "null"]},
    },
}


def _webhook_option(description: str, type_: str, default: Any, example: Any = None) -> dict[str, Any]:
    return {"description": description, "version_added": "0.1.0", "type": type_, "example": example, "default": default}


#: ``[ghl_webhooks]``: settings of the webhook receiver mounted on the API server
#: (``airflow_provider_contacts.webhooks``; docs/webhooks.md). Public keys are not secrets.
WEBHOOK_CONFIG: dict[str, Any] = {
    "ghl_webhooks": {
        "description": "HighLevel webhook receiver mounted on the API server at /ghl-webhooks "
        "(POST /ghl-webhooks/events, GET /ghl-webhooks/health).",
        "options": {
            "enabled": _webhook_option("Mount the receiver on the API server.", "boolean", "True"),
            "target_conn_id": _webhook_option(
                "common-sql connection of the target that holds the table ghl_webhook_events; when the "
                "default ghl_target does not exist, the embedded SQLite file of the reconcile.",
                "string", "ghl_target", "warehouse",
            ),
            "schema": _webhook_option("Schema of ghl_webhook_events in the target (empty: the "
                                      "connection's default).", "string", None, "ghl"),
            "rsa_public_key": _webhook_option(
                "PEM text or PEM file path of the RSA key that checks x-wh-signature (several keys in one "
                "PEM text are all accepted). Empty: HighLevel's published key; 'none': not checked.",
                "string", None, "/etc/airflow/ghl_webhook_rsa.pem",
            ),
            "ed25519_public_key": _webhook_option(
                "PEM text, PEM file path or raw base64 of the Ed25519 key that checks x-ghl-signature. "
                "Empty: that header is not checked.", "string", None, "/etc/airflow/ghl_webhook_ed25519.pem",
            ),
            "max_body_bytes": _webhook_option("Bodies larger than this are refused with 413.", "integer", "1048576"),
            "retry_after_seconds": _webhook_option("Retry-After of a 429 (storage unavailable).", "integer", "600"),
            "storage_timeout_seconds": _webhook_option(
                "Longest wait for the target database before answering 429.", "float", "10"
            ),
        },
    }
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow reads at discovery (see ``provider.yaml.schema.json``)."""
    pkg = "airflow_provider_contacts"
    return {
        "package-name": "airflow-provider-contacts",
        "name": "HighLevel Contacts",
        "description": "HighLevel (LeadConnector) Contacts API: hook, operators, sensors, triggers "
        "and reconciliation into SQL targets.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "HighLevel Contacts",
                "external-doc-url": "https://highlevel.stoplight.io/docs/integrations/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "HighLevel Contacts", "python-modules": [f"{pkg}.hooks.contacts"]}
        ],
        "operators": [
            {
                "integration-name": "HighLevel Contacts",
                "python-modules": [f"{pkg}.operators.{m}" for m in _OPERATOR_MODULES],
            }
        ],
        "sensors": [
            {
                "integration-name": "HighLevel Contacts",
                "python-modules": [f"{pkg}.sensors.{m}" for m in _SENSOR_MODULES],
            }
        ],
        "triggers": [
            {
                "integration-name": "HighLevel Contacts",
                "python-modules": [f"{pkg}.triggers.{m}" for m in _TRIGGER_MODULES],
            }
        ],
        "config": WEBHOOK_CONFIG,
        # OpenLineage: the HighLevel datasets and the reconciliation's SQL outputs (lineage.py).
        "asset-uris": [
            {
                "schemes": ["highlevel", "highlevel-target"],
                "handler": f"{pkg}.lineage.sanitize_uri",
                "to_openlineage_converter": f"{pkg}.lineage.convert_asset_to_openlineage",
            }
        ],
        "connection-types": [
            {
                "hook-class-name": f"{pkg}.hooks.contacts.GHLContactsHook",
                "hook-name": "HighLevel Contacts",
                "connection-type": CONN_TYPE,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "Access token"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "password": "Private Integration token, or the current OAuth access token",
                        "location_id": "ve9EPM428h8vShlRW1KT",
                    },
                },
            }
        ],
    }
