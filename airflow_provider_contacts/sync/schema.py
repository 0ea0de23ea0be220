"""Target table names and column types: what the sink creates, per database dialect."""

from __future__ import annotations

__all__ = [
    "CHILD_SYSTEM_COLUMNS",
    "COLUMN_TYPES",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_TABLE",
    "STATE_COLUMNS",
    "STATE_TABLE",
    "SYSTEM_COLUMNS",
    "TABLES",
]

#: Logical entity -> target table name.
TABLES: dict[str, str] = {"contacts": "ghl_contacts", "tasks": "ghl_tasks", "notes": "ghl_notes"}
QUARANTINE_TABLE = "ghl_quarantine"
STATE_TABLE = "ghl_sync_state"

#: Columns every data table has, with their logical types; tasks and notes add ``contact_id``.
SYSTEM_COLUMNS: dict[str, str] = {
    "id": "key",
    "location_id": "text",
    "raw_json": "json",
    "content_hash": "text",
    "first_seen_at": "timestamp",
    "last_synced_at": "timestamp",
    "deleted_at": "timestamp",
}
CHILD_SYSTEM_COLUMNS: dict[str, str] = {"contact_id": "text"}

#: Logical column type -> SQL type, per SQLAlchemy dialect name ("default" for any other database).
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {
        "key": "VARCHAR(200) NOT NULL PRIMARY KEY",
        "text": "TEXT",
        "timestamp": "TEXT",
        "boolean": "BOOLEAN",
        "number": "NUMERIC",
        "json": "TEXT",
    },
    "postgresql": {
        "key": "VARCHAR(200) NOT NULL PRIMARY KEY",
        "text": "TEXT",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "boolean": "BOOLEAN",
        "number": "DOUBLE PRECISION",
        "json": "JSONB",
    },
    "default": {
        "key": "VARCHAR(200) NOT NULL PRIMARY KEY",
        "text": "TEXT",
        "timestamp": "TIMESTAMP",
        "boolean": "BOOLEAN",
        "number": "DOUBLE PRECISION",
        "json": "TEXT",
    },
}

QUARANTINE_COLUMNS: dict[str, str] = {
    "id": "key",
    "location_id": "text",
    "source_table": "text",
    "record_id": "text",
    "contact_id": "text",
    "reason": "text",
    "raw_json": "text",
    "first_seen_at": "timestamp",
    "last_seen_at": "timestamp",
}
STATE_COLUMNS: dict[str, str] = {
    "id": "key",
    "location_id": "text",
    "name": "text",
    "value_json": "text",
    "updated_at": "timestamp",
}
