"""Follow-up task templates of new leads (a YAML file; the packaged default is
``leads_followup_templates.yaml``).

Shape::

    note_title: Lead notes            # title of the note made from the lead's notes column
    tasks:
      - title: "Call {first_name}"    # required; {column} is the lead's value of that column
        body: "..."                   # optional
        due_in_business_days: 1       # >= 0; Saturdays and Sundays are skipped (no holiday calendar)
        due_time: "09:00"             # HH:MM in `timezone` (default 09:00)
        timezone: Europe/Berlin       # IANA name (default UTC)
        assignee: <HighLevel user id> # optional

:func:`load_templates` validates the file and names the key and the fix for every problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airflow_provider_contacts.sync.mapping_model import format_errors

__all__ = ["DEFAULT_TEMPLATES_FILE", "FollowUpTemplates", "TaskTemplate", "TemplateError", "add_business_days", "load_templates"]

DEFAULT_TEMPLATES_FILE = Path(__file__).with_name("leads_followup_templates.yaml")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """The template file is invalid (names the key and the fix)."""


def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` working days (Monday to Friday). ``days=0`` on a weekend gives the
    next Monday; no holiday calendar is applied."""
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def render(text: str | None, row: Mapping[str, Any]) -> str | None:
    """``text`` with each ``{column}`` replaced by the lead's value (empty when NULL or unknown)."""
    if text is None:
        return None

    def value(match: re.Match[str]) -> str:
        got = row.get(match.group(1))
        return "" if got is None else str(got).strip()

    return re.sub(r"\s{2,}", " ", _PLACEHOLDER.sub(value, text)).strip()


class TaskTemplate(BaseModel):
    """One follow-up task of a new lead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    body: str | None = None
    due_in_business_days: int = Field(default=1, ge=0, le=365)
    due_time: str = "09:00"
    timezone: str = "UTC"
    assignee: str | None = None

    @field_validator("due_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"due_time {value!r} must be HH:MM (24 h), e.g. '09:00'")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {value!r} is not an IANA time zone; use e.g. 'America/New_York'") from None
        return value

    def due(self, now: datetime) -> datetime:
        """The due moment (UTC) for a lead handled at ``now``."""
        zone = ZoneInfo(self.timezone)
        local_day = now.astimezone(zone).date()
        day = add_business_days(local_day, self.due_in_business_days)
        hour, minute = (int(x) for x in self.due_time.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(timezone.utc)

    def task_body(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The ``create-task`` body for a lead (``row``: its columns) handled at ``now``."""
        body: dict[str, Any] = {
            "title": render(self.title, row) or self.title,
            "dueDate": self.due(now).isoformat().replace("+00:00", "Z"),
            "completed": False,
        }
        text = render(self.body, row)
        if text:
            body["body"] = text
        if self.assignee:
            body["assignedTo"] = self.assignee
        return body


class FollowUpTemplates(BaseModel):
    """The template file: ``tasks`` and ``note_title``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[TaskTemplate] = []
    note_title: str | None = "Lead notes"


def load_templates(path: str | Path | None = None) -> FollowUpTemplates:
    """Read and validate a template file (``None``: the packaged :data:`DEFAULT_TEMPLATES_FILE`).

    :raises TemplateError: the file is missing, not YAML, or a key is wrong (key and fix named).
    """
    path = Path(path or DEFAULT_TEMPLATES_FILE)
    if not path.is_file():
        raise TemplateError(f"task template file {str(path)!r} does not exist; give an existing YAML file or leave it empty for the default")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"task template file {path} is not valid YAML: {exc}") from None
    try:
        return FollowUpTemplates.model_validate(data)
    except ValidationError as exc:
        raise TemplateError(f"task template file {path}: " + "; ".join(format_errors(exc))) from None
