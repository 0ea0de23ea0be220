"""Typed models of the HighLevel Contacts API (pydantic v2).

Two kinds of models live here:

* **API objects** (:class:`Contact`, :class:`Task`, :class:`Note`, :class:`CustomField`,
  :class:`Appointment`, pages and results) parse what HighLevel returns. They accept unknown fields
  (``extra="allow"``) so a new field in the API never breaks a run; unknown fields stay reachable
  through ``model.model_extra`` / ``model.model_dump()``. Field names are the API's (camelCase).
* **Request bodies** (:class:`CreateContact`, :class:`UpdateContact`, :class:`UpsertContact`,
  :class:`CreateTask`, :class:`UpdateTask`, :class:`CreateNote`, :class:`UpdateNote`,
  :class:`SearchFilter`, ...) validate what we send. They reject unknown fields
  (``extra="forbid"``) and check values, so a bad body fails *before* any request with a
  :class:`~airflow_provider_contacts.errors.GHLValidationError` naming the field and the fix. Use
  :func:`validate_body` to validate a dict or a model the same way the hook does.

Dates: every date-time field is a timezone-aware :class:`datetime.datetime`. ISO 8601 strings
(``2021-07-08T02:30:00.000Z``), ``YYYY-MM-DD HH:MM:SS`` strings and epoch milliseconds are
accepted. **A naive value (no offset) is taken as UTC** - HighLevel stores and returns UTC. Dates
in request bodies are sent as ISO 8601 in UTC with milliseconds (``2021-07-08T02:30:00.000Z``).
Digit strings count as epoch milliseconds only with 12 or 13 digits (``"20240501"`` is refused).

**A malformed date in an API answer does not fail the answer.** Request bodies stay strict, but a
date-time field of an API object (``dateAdded``, ``dateUpdated``, ``dueDate``, ``startTime``,
``endTime``; typed :data:`GHLDatetime`) that holds a string which is not a date-time keeps that
raw string instead of raising, and a warning names the record id, the field and the value (once
per record and field). One bad record thus cannot fail a whole page of ``iter_search_contacts``
or ``list_tasks``; downstream (e.g. the reconciliation's mapping) decides what to do with it.
Code reading these fields must therefore be ready for a ``str`` where it expects a ``datetime``.
Values of another type (``True``, a list) are still rejected.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_provider_contacts.errors import GHLValidationError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


#: Lengths of a digit string taken as epoch milliseconds (1973-03-03 .. 2286-11-20).
_EPOCH_MS_DIGITS = (12, 13)


def parse_datetime(value: Any) -> Any:
    """Turn an API date-time into an aware :class:`datetime` (naive values are taken as UTC).

    Accepts datetimes, ISO 8601 strings (``Z`` or offset, ``T`` or space separator), dates
    (midnight UTC) and epoch timestamps in milliseconds (int/float, or digit strings of 12 or 13
    digits: 1973-03-03 to 2286-11-20). Returns ``None`` for ``None``/empty strings; other values
    are passed on for pydantic to reject.

    :raises ValueError: for a string that is not ISO 8601, including a digit string of another
        length (``"20240501"`` or epoch seconds would otherwise be read as a 1970 date).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            if len(text) in _EPOCH_MS_DIGITS:
                return datetime.fromtimestamp(int(text) / 1000.0, tz=timezone.utc)
            raise ValueError(
                f"{value!r} is not a date-time: digit strings are read as epoch milliseconds only "
                "with 12 or 13 digits; use ISO 8601 (e.g. '2024-05-01T09:30:00Z') or epoch "
                "milliseconds (e.g. '1714555800000')"
            )
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 date-time; use e.g. '2024-05-01T09:30:00Z'"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return value


def format_datetime(value: datetime) -> str:
    """Format an aware datetime the way HighLevel writes them: UTC, milliseconds, ``Z``."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _api_datetime(value: Any, info: ValidationInfo) -> Any:
    """``parse_datetime`` for API answers: an unparseable string is kept as it is (and logged).

    The warning names the record's ``id`` (the models declare it first, so it is validated by
    then), the field and the value; it is logged once per record and field.
    """
    try:
        return parse_datetime(value)
    except ValueError as exc:
        record_id = info.data.get("id") if isinstance(info.data, dict) else None
        log.warning(
            "record %s: field %r: %s; kept as the raw string", record_id or "(no id)", info.field_name, exc
        )
        return value


#: An aware datetime parsed from what HighLevel returns (naive -> UTC), or - if HighLevel sent a
#: string that is not a date-time - that raw string (logged; see the module docstring).
GHLDatetime = Annotated[datetime | str, BeforeValidator(_api_datetime)]
#: An aware datetime in a request body, sent as ISO 8601 UTC.
RequestDatetime = Annotated[
    datetime,
    BeforeValidator(parse_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
]


def added_since(record: Any, since: datetime) -> bool:
    """Whether ``record.dateAdded`` is at or after ``since``, or unknown (missing, or a raw string
    HighLevel sent that is not a date-time): callers looking for a record they may have just
    created keep such records as candidates rather than compare a string with a datetime."""
    added = getattr(record, "dateAdded", None)
    return not isinstance(added, datetime) or added >= since


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


#: A list that the API may send as ``null``.
NullableList = Annotated[list[Any], BeforeValidator(_none_to_list)]
StrList = Annotated[list[str], BeforeValidator(_none_to_list)]


# --------------------------------------------------------------------------------------------
# API objects (forward compatible)
# --------------------------------------------------------------------------------------------


class APIModel(BaseModel):
    """Base of API objects: unknown fields are kept, names are the API's camelCase names."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CustomFieldValue(APIModel):
    """A custom field value on a contact (``customFields`` item): ``id`` and ``value``."""

    id: str | None = None
    value: Any = None


class Contact(APIModel):
    """A contact (``GetContectByIdSchema`` / ``ContactsSearchSchema`` of contacts.json).

    ``searchAfter`` is the cursor the advanced search returns on each contact.
    """

    id: str
    locationId: str | None = None
    name: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    phone: str | None = None
    companyName: str | None = None
    timezone: str | None = None
    country: str | None = None
    source: str | None = None
    type: str | None = None
    assignedTo: str | None = None
    businessId: str | None = None
    dnd: bool | None = None
    tags: StrList = Field(default_factory=list)
    customFields: Annotated[list[CustomFieldValue], BeforeValidator(_none_to_list)] = Field(
        default_factory=list
    )
    followers: StrList = Field(default_factory=list)
    dateAdded: GHLDatetime | None = None
    dateUpdated: GHLDatetime | None = None
    searchAfter: NullableList | None = None

    @field_validator("followers", mode="before")
    @classmethod
    def _single_follower(cls, value: Any) -> Any:
        # contacts.json documents followers as an array but its example is a bare string.
        return [value] if isinstance(value, str) else value


class Task(APIModel):
    """A task of a contact (``TaskSchema``); ``contactId`` names the contact it belongs to."""

    id: str
    title: str | None = None
    body: str | None = None
    assignedTo: str | None = None
    dueDate: GHLDatetime | None = None
    completed: bool = False
    contactId: str | None = None
    dateAdded: GHLDatetime | None = None
    dateUpdated: GHLDatetime | None = None


class Note(APIModel):
    """A note of a contact (``GetNoteSchema``); ``contactId`` names the contact it belongs to."""

    id: str
    body: str | None = None
    title: str | None = None
    userId: str | None = None
    color: str | None = None
    pinned: bool | None = None
    contactId: str | None = None
    dateAdded: GHLDatetime | None = None
    dateUpdated: GHLDatetime | None = None


class CustomField(APIModel):
    """A custom field definition of a location (locations.json ``CustomFieldSchema``)."""

    id: str
    name: str | None = None
    fieldKey: str | None = None
    placeholder: str | None = None
    dataType: str | None = None
    position: float | None = None
    picklistOptions: NullableList = Field(default_factory=list)
    model: str | None = None
    locationId: str | None = None


class Appointment(APIModel):
    """An appointment (calendar event) of a contact (``GetEventSchema``)."""

    id: str
    calendarId: str | None = None
    status: str | None = None
    appointmentStatus: str | None = None
    title: str | None = None
    assignedUserId: str | None = None
    notes: str | None = None
    address: str | None = None
    locationId: str | None = None
    contactId: str | None = None
    groupId: str | None = None
    startTime: GHLDatetime | None = None
    endTime: GHLDatetime | None = None
    dateAdded: GHLDatetime | None = None
    dateUpdated: GHLDatetime | None = None
    users: StrList = Field(default_factory=list)
    assignedResources: StrList = Field(default_factory=list)


class ContactSearchPage(APIModel):
    """One page of ``POST /contacts/search``: the contacts and the total number of matches."""

    contacts: Annotated[list[Contact], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    total: int | None = None


class ContactsMeta(APIModel):
    """``meta`` of the legacy ``GET /contacts/`` (``ContactsMetaSchema``): the next-page cursor."""

    total: int | None = None
    nextPageUrl: str | None = None
    startAfterId: str | None = None
    startAfter: int | float | str | None = None
    currentPage: int | None = None
    nextPage: int | None = None
    prevPage: int | None = None


class ContactsPage(APIModel):
    """A page of the legacy ``GET /contacts/`` or of ``GET /contacts/business/{businessId}``."""

    contacts: Annotated[list[Contact], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    count: int | None = None
    total: int | None = None
    meta: ContactsMeta | None = None


class TaskSearchPage(APIModel):
    """One page of ``POST /locations/{locationId}/tasks/search``."""

    tasks: Annotated[list[Task], BeforeValidator(_none_to_list)] = Field(default_factory=list)
    total: int | None = None


class UpsertResult(APIModel):
    """Result of ``POST /contacts/upsert``: the contact and whether it was created (``new``)."""

    contact: Contact
    new: bool = False
    traceId: str | None = None


class FollowersResult(APIModel):
    """Result of adding/removing followers: the contact's followers and the ones changed."""

    followers: StrList = Field(default_factory=list)
    followersAdded: StrList = Field(default_factory=list)
    followersRemoved: StrList = Field(default_factory=list)


class BulkTagsResult(APIModel):
    """Result of ``POST /contacts/bulk/tags/update/{type}`` (``UpdateTagsResponseDTO``)."""

    succeded: bool = False
    errorCount: int = 0
    responses: NullableList = Field(default_factory=list)


class BulkBusinessResult(APIModel):
    """Result of ``POST /contacts/bulk/business`` (``ContactsBulkUpateResponse``)."""

    success: bool = False
    ids: StrList = Field(default_factory=list)


@dataclass(frozen=True)
class ContactActivity:
    """Tasks and notes of one contact, as yielded by ``ContactsHook.fetch_tasks_and_notes``."""

    contact_id: str
    tasks: list[Task] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Request bodies (strict)
# --------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_CHARS_RE = re.compile(r"^\+?[0-9\s().\-]+$")
_HEX_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are rejected, values are checked."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    def payload(self) -> dict[str, Any]:
        """The JSON body to send: the fields that were set (explicit ``None`` included)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class DndSetting(RequestModel):
    """Do-not-disturb state of one channel (``DndSettingSchema``)."""

    status: Literal["active", "inactive", "permanent"]
    message: str | None = None
    code: str | None = None


class DndSettings(RequestModel):
    """Per-channel do-not-disturb settings (``DndSettingsSchema``)."""

    Call: DndSetting | None = None
    Email: DndSetting | None = None
    SMS: DndSetting | None = None
    WhatsApp: DndSetting | None = None
    GMB: DndSetting | None = None
    FB: DndSetting | None = None


class InboundDndSetting(RequestModel):
    """Inbound do-not-disturb state (``InboundDndSettingSchema``)."""

    status: Literal["active", "inactive"]
    message: str | None = None


class InboundDndSettings(RequestModel):
    """Inbound do-not-disturb settings (``InboundDndSettingsSchema``)."""

    all: InboundDndSetting | None = None


class CustomFieldInput(RequestModel):
    """A custom field value to write: ``id`` (or ``key``) and ``field_value``."""

    id: str | None = None
    key: str | None = None
    field_value: Any = None

    @model_validator(mode="after")
    def _id_or_key(self) -> CustomFieldInput:
        if not self.id and not self.key:
            raise ValueError("a custom field needs its 'id' (or its 'key', e.g. 'contact.pincode')")
        return self


def _check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return value
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not a valid email address; fix the value or leave it out")
    return value


def _check_phone(value: str | None) -> str | None:
    if value is None or value == "":
        return value
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_CHARS_RE.match(value) or not 7 <= digits <= 15:
        raise ValueError(
            f"{value!r} is not a valid phone number; use E.164 like '+14155550123' or leave it out"
        )
    return value


def _check_tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    for tag in value:
        if not tag.strip():
            raise ValueError("tags must be non-empty strings; remove the empty tag")
    return value


class _ContactFields(RequestModel):
    """Fields shared by the contact create, update and upsert bodies."""

    firstName: str | None = None
    lastName: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postalCode: str | None = None
    website: str | None = None
    timezone: str | None = None
    dnd: bool | None = None
    dndSettings: DndSettings | None = None
    inboundDndSettings: InboundDndSettings | None = None
    tags: list[str] | None = None
    customFields: list[CustomFieldInput] | None = None
    source: str | None = None
    dateOfBirth: str | date | None = None
    country: str | None = None
    assignedTo: str | None = None

    _email = field_validator("email")(_check_email)
    _phone = field_validator("phone")(_check_phone)
    _tags = field_validator("tags")(_check_tags)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value and value not in _timezones():
            raise ValueError(f"{value!r} is not an IANA time zone; use e.g. 'America/New_York'")
        return value

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter ISO 3166 country code; use e.g. 'US'")
        return value.upper() if value else value

    @field_validator("dateOfBirth")
    @classmethod
    def _birth_date(cls, value: str | date | None) -> str | date | None:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str) and value:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                raise ValueError(f"{value!r} is not a date; use 'YYYY-MM-DD'") from None
        return value

    def _require_identity(self) -> None:
        if not any((self.firstName, self.lastName, self.name, self.email, self.phone)):
            raise ValueError(
                "a contact needs at least one of 'email', 'phone', 'firstName', 'lastName' or 'name'"
            )


class CreateContact(_ContactFields):
    """Body of ``POST /contacts/`` (``CreateContactDto``); ``locationId`` defaults to the hook's."""

    locationId: str | None = None
    gender: str | None = None
    companyName: str | None = None

    @model_validator(mode="after")
    def _identity(self) -> CreateContact:
        self._require_identity()
        return self


class UpdateContact(_ContactFields):
    """Body of ``PUT /contacts/{contactId}`` (``UpdateContactDto``): only the fields to change."""

    @model_validator(mode="after")
    def _not_empty(self) -> UpdateContact:
        if not self.model_fields_set:
            raise ValueError("an update needs at least one field to change")
        return self


class UpsertContact(CreateContact):
    """Body of ``POST /contacts/upsert`` (``UpsertContactDto``)."""

    createNewIfDuplicateAllowed: bool | None = None


class CreateTask(RequestModel):
    """Body of ``POST /contacts/{contactId}/tasks`` (``CreateTaskParams``)."""

    title: str = Field(min_length=1)
    body: str | None = None
    dueDate: RequestDatetime
    completed: bool = False
    assignedTo: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body; ``completed`` is always sent (the API requires it)."""
        data = super().payload()
        data.setdefault("completed", self.completed)
        return data


class UpdateTask(RequestModel):
    """Body of ``PUT /contacts/{contactId}/tasks/{taskId}`` (``UpdateTaskBody``)."""

    title: str | None = Field(default=None, min_length=1)
    body: str | None = None
    dueDate: RequestDatetime | None = None
    completed: bool | None = None
    assignedTo: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> UpdateTask:
        if not self.model_fields_set:
            raise ValueError("an update needs at least one field to change")
        return self


class TaskCompleted(RequestModel):
    """Body of ``PUT /contacts/{contactId}/tasks/{taskId}/completed``."""

    completed: bool


class _NoteFields(RequestModel):
    userId: str | None = None
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None

    @field_validator("color")
    @classmethod
    def _hex_color(cls, value: str | None) -> str | None:
        if value and not _HEX_COLOR_RE.match(value):
            raise ValueError(f"{value!r} is not a hex colour; use e.g. '#FFAA00'")
        return value


class CreateNote(_NoteFields):
    """Body of ``POST /contacts/{contactId}/notes`` (``NotesDTO``)."""

    body: str = Field(min_length=1)


class UpdateNote(_NoteFields):
    """Body of ``PUT /contacts/{contactId}/notes/{id}`` (``UpdateNoteDTO``)."""

    body: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> UpdateNote:
        if not self.model_fields_set:
            raise ValueError("an update needs at least one field to change")
        return self


class TagsBody(RequestModel):
    """Body of add/remove tags (``TagsDTO``)."""

    tags: list[str] = Field(min_length=1)
    _tags = field_validator("tags")(_check_tags)


class FollowersBody(RequestModel):
    """Body of add/remove followers (``FollowersDTO``): user ids."""

    followers: list[str] = Field(min_length=1)


class BulkTagsBody(RequestModel):
    """Body of ``POST /contacts/bulk/tags/update/{type}`` (``UpdateTagsDTO``)."""

    contacts: list[str] = Field(min_length=1)
    tags: list[str]
    locationId: str
    removeAllTags: bool | None = None
    _tags = field_validator("tags")(_check_tags)


class BulkBusinessBody(RequestModel):
    """Body of ``POST /contacts/bulk/business`` (``ContactsBusinessUpdate``); ``businessId`` null removes."""

    locationId: str
    ids: list[str] = Field(min_length=1)
    businessId: str | None


class WorkflowBody(RequestModel):
    """Body of add/remove a contact to/from a workflow (``CreateWorkflowDto``)."""

    eventStartTime: RequestDatetime | None = None


#: Operators of HighLevel's advanced contact search.
SearchOperator = Literal["eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range"]
_RANGE_KEYS = frozenset({"gt", "gte", "lt", "lte"})


class SearchFilter(RequestModel):
    """One filter of the advanced search: ``{"field", "operator", "value"}``.

    ``value`` may be a datetime (sent as ISO 8601 UTC); ``range`` takes a dict of ``gt``/``gte``/
    ``lt``/``lte`` bounds, e.g. ``{"gte": datetime(2024, 1, 1, tzinfo=timezone.utc)}``;
    ``exists``/``not_exists`` need no value. On arrays (``tags``), ``eq`` means "has".
    """

    field: str = Field(min_length=1)
    operator: SearchOperator
    value: Any = None

    @field_validator("value")
    @classmethod
    def _dates_to_iso(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return format_datetime(parse_datetime(value))
        if isinstance(value, dict):
            return {k: format_datetime(parse_datetime(v)) if isinstance(v, datetime) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _value_needed(self) -> SearchFilter:
        if self.operator not in ("exists", "not_exists") and self.value is None:
            raise ValueError(f"operator {self.operator!r} needs a 'value'")
        if self.operator == "range" and (
            not isinstance(self.value, dict) or not self.value or not set(self.value) <= _RANGE_KEYS
        ):
            raise ValueError(
                "operator 'range' needs a 'value' like {'gte': <date or number>, 'lt': ...} "
                "using only the keys gt, gte, lt, lte"
            )
        return self


class SearchFilterGroup(RequestModel):
    """A group of filters joined by ``AND``/``OR``: ``{"group": "OR", "filters": [...]}``."""

    group: Literal["AND", "OR"]
    filters: list[SearchFilter | SearchFilterGroup] = Field(min_length=1)


class SearchSort(RequestModel):
    """One sort key of the advanced search: ``{"field", "direction"}``."""

    field: str = Field(min_length=1)
    direction: Literal["asc", "desc"] = "asc"


class SearchContactsBody(RequestModel):
    """Body of ``POST /contacts/search`` (``SearchBodyV2DTO``).

    Use ``page`` + ``pageLimit`` (at most 500) for the first pages, and ``searchAfter`` (the
    ``searchAfter`` of the last contact of the previous page) beyond them: page-based access
    stops at 10,000 results.
    """

    locationId: str
    page: int | None = Field(default=None, ge=1)
    pageLimit: int = Field(default=500, ge=1, le=500)
    searchAfter: list[Any] | None = None
    filters: list[SearchFilter | SearchFilterGroup] | None = None
    sort: list[SearchSort] | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _page_window(self) -> SearchContactsBody:
        if self.page is not None and self.searchAfter is None and self.page * self.pageLimit > 10_000:
            raise ValueError(
                f"page {self.page} x pageLimit {self.pageLimit} is beyond the 10,000 results "
                "page-based search can reach; pass 'searchAfter' instead"
            )
        return self


#: Largest ``limit`` of the location task search (the sandbox's cap; locations.json states none).
TASK_SEARCH_MAX_LIMIT = 1000


class TaskSearchBody(RequestModel):
    """Body of ``POST /locations/{locationId}/tasks/search`` (``TaskSearchParamsDto``).

    ``limit`` is the page size, 1..:data:`TASK_SEARCH_MAX_LIMIT`; ``skip`` the tasks to skip.
    """

    contactId: list[str] | None = None
    completed: bool | None = None
    assignedTo: list[str] | None = None
    query: str | None = None
    limit: int = Field(default=100, ge=1)
    skip: int = Field(default=0, ge=0)
    businessId: str | None = None

    @field_validator("limit")
    @classmethod
    def _page_cap(cls, value: int) -> int:
        if value > TASK_SEARCH_MAX_LIMIT:
            raise ValueError(
                f"limit {value} is above the task search's largest page ({TASK_SEARCH_MAX_LIMIT}); "
                f"use at most {TASK_SEARCH_MAX_LIMIT} and page on with 'skip'"
            )
        return value


# --------------------------------------------------------------------------------------------
# Validation helper
# --------------------------------------------------------------------------------------------

M = TypeVar("M", bound=RequestModel)


def _describe_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if not str(p).startswith("function-"))
    kind = err.get("type", "")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    where = f"field '{loc}'" if loc else "body"
    if kind == "missing":
        return f"{where} is required; add it"
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields))
        return f"{where} is not accepted here; remove it (accepted fields: {allowed})"
    if kind in ("value_error", "assertion_error"):
        return f"{where}: {msg}"
    value = err.get("input")
    return f"{where}: {value!r} is invalid ({msg}); fix the value"


def validate_body(model: type[M], body: M | dict[str, Any] | None, operation: str) -> M:
    """Validate a request body (a dict or an instance of ``model``) before sending it.

    :raises GHLValidationError: naming the operation, each bad field and how to fix it.
    """
    if isinstance(body, model):
        return body
    if isinstance(body, BaseModel):
        body = body.model_dump(exclude_unset=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise GHLValidationError(
            f"the body must be a dict or a {model.__name__}, not {type(body).__name__}",
            operation=operation,
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(_describe_error(e, model) for e in exc.errors(include_url=False))
        raise GHLValidationError(problems, operation=operation) from None


__all__ = [
    "APIModel",
    "Appointment",
    "BulkBusinessBody",
    "BulkBusinessResult",
    "BulkTagsBody",
    "BulkTagsResult",
    "Contact",
    "ContactActivity",
    "ContactSearchPage",
    "ContactsMeta",
    "ContactsPage",
    "CreateContact",
    "CreateNote",
    "CreateTask",
    "CustomField",
    "CustomFieldInput",
    "CustomFieldValue",
    "DndSetting",
    "DndSettings",
    "FollowersBody",
    "FollowersResult",
    "GHLDatetime",
    "InboundDndSettings",
    "Note",
    "RequestModel",
    "SearchContactsBody",
    "SearchFilter",
    "SearchFilterGroup",
    "SearchSort",
    "TASK_SEARCH_MAX_LIMIT",
    "TagsBody",
    "Task",
    "TaskCompleted",
    "TaskSearchBody",
    "TaskSearchPage",
    "UpdateContact",
    "UpdateNote",
    "UpdateTask",
    "UpsertContact",
    "UpsertResult",
    "WorkflowBody",
    "added_since",
    "format_datetime",
    "parse_datetime",
    "validate_body",
]
