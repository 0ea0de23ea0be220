"""Sensor: contacts created or updated since a watermark, optionally filtered (tag, custom field)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from airflow_provider_contacts.params import coerce_list, coerce_mapping, validate_filters
from airflow_provider_contacts.sensors.base import GHLBaseSensor
from airflow_provider_contacts.sensors.conditions import GHLContactsChangedCondition


class GHLContactsChangedSensor(GHLBaseSensor):
    """Wait until contacts are created or updated after ``since`` (advanced search on
    ``dateUpdated``/``dateAdded``), optionally only those with a tag or a custom field value.

    :param since: the watermark: ISO 8601 date-time or datetime; contacts changed strictly after
        it match. Templated (e.g. ``"{{ data_interval_start }}"``); default: when the sensor
        starts waiting.
    :param change: ``"updated"`` (created or updated, by ``dateUpdated``; default) or
        ``"created"`` (by ``dateAdded``).
    :param tags: only contacts with every one of these tags. Templated.
    :param custom_fields: only contacts whose custom fields have these values,
        ``{"<custom field id>": value}``. Templated.
    :param filters: more advanced-search filters (``{"field", "operator", "value"}``). Templated.
    :param min_count: how many matching contacts make the sensor succeed (default 1).
    :param max_ids: at most this many ids in the result (oldest changes first).
    :param seen_ids: the ``watermark_ids`` of a previous run's XCom, with ``since`` set to its
        ``watermark``: contacts changed at exactly ``since`` match too, except these (already
        reported), so a follow-up continues exactly where a truncated run stopped. Default
        ``None``: only changes strictly after ``since`` match. Templated.

    XCom: ``{"contact_ids": [...], "count", "truncated", "since", "watermark", "watermark_ids"}``;
    ``watermark`` is the latest change reported and ``watermark_ids`` the ids reported at exactly
    it: the ``since`` and ``seen_ids`` of a follow-up run. Works in poke, reschedule and
    deferrable modes.
    """

    template_fields: Sequence[str] = (
        *GHLBaseSensor.template_fields, "since", "tags", "custom_fields", "filters", "seen_ids"
    )
    template_fields_renderers = {"filters": "json", "custom_fields": "json"}

    def __init__(
        self,
        *,
        since: str | datetime | None = None,
        change: Literal["updated", "created"] = "updated",
        tags: list[str] | str | None = None,
        custom_fields: dict[str, Any] | str | None = None,
        filters: list[dict[str, Any]] | str | None = None,
        min_count: int = 1,
        max_ids: int = 1000,
        seen_ids: list[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if change not in ("updated", "created"):
            raise ValueError(f"{type(self).__name__}: parameter 'change' must be 'updated' or 'created', got {change!r}")
        self.since = since
        self.change = change
        self.tags = tags
        self.custom_fields = custom_fields
        self.filters = filters
        self.min_count = min_count
        self.max_ids = max_ids
        self.seen_ids = seen_ids

    def search_filters(self) -> list[dict[str, Any]]:
        """The rendered tag, custom field and extra filters as advanced-search filters."""
        out: list[dict[str, Any]] = [
            {"field": "tags", "operator": "eq", "value": str(tag)} for tag in coerce_list(self._owner, "tags", self.tags)
        ]
        for field_id, value in coerce_mapping(self._owner, "custom_fields", self.custom_fields).items():
            out.append({"field": f"customFields.{field_id}", "operator": "eq", "value": value})
        return [*validate_filters(self._owner, "tags/custom_fields", out), *validate_filters(self._owner, "filters", self.filters)]

    def _seen_ids(self) -> list[str] | None:
        """The rendered ``seen_ids`` as a list of ids, or ``None`` when not set."""
        if self.seen_ids is None:
            return None
        return [str(i) for i in coerce_list(self._owner, "seen_ids", self.seen_ids)]

    def build_condition(self, started_at: datetime) -> GHLContactsChangedCondition:
        return GHLContactsChangedCondition(
            since=self._since(self.since, started_at),
            date_field="dateAdded" if self.change == "created" else "dateUpdated",
            filters=self.search_filters(),
            min_count=self.min_count,
            max_ids=self.max_ids,
            seen_ids=self._seen_ids(),
        )


__all__ = ["GHLContactsChangedSensor"]
