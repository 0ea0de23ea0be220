"""Typed models of the HighLevel Contacts API (pydantic v2).

Two kinds of models live here:

* **API objects** (:class:`Contact`, :class:`Task`, :class:`Note`, :class:`CustomField`,
  :class:`Appointment`, pages and results) parse what HighLevel returns. They accept unknown fields
  (``extra="allow"``) so a new field in the API never breaks a run; unknown fields stay reachable
  through ``model.model_extra`` and stay in ``model.model_dump(exclude_unset=True)`` (the raw
  record the sync stores). Field names are the API's (camelCase).
* **Request bodies** (:class:`CreateContact`, :class:`UpdateContact`, :class:`UpsertContact`,
  :class:`CreateTask`, :class:`UpdateTask`, :class:`CreateNote`, :class:`UpdateNote`,
  :class:`SearchFilter`, ...) validate what we send. They reject unknown fields
  (``extra="forbid"``) and check values, so a bad body fails *before* any request with a
  :class:`~airflow_provider_contacts.errors.GHLValidationError` naming the field, the fix and the
  keys accepted at that place. Use :func:`validate_body` to validate a dict or a model the same way
  the hook does. They are as liberal as the **live** API (``ghl-live-notes.md``, "What the live API
  accepts that the spec's DTOs refuse"): custom field values as ``fieldValue`` / ``field_value`` /
  ``value``, by ``id`` or ``key``; ``dateOfBirth`` in every form the spec's description lists;
  phones as HighLevel stores them.

**One contact model for every endpoint.** ``GET /contacts/{id}`` (``GetContectByIdSchema``) and
``POST /contacts/search`` (no documented 200 schema; live shape in ``ghl-live-notes.md``, "Contact
shapes differ by endpoint") name some things differently; :class:`Contact` accepts both:

* the street address: ``address1`` (GET) or ``address`` (search) -> :attr:`Contact.address1`
  (filled from ``address`` when only that came; ``address`` stays in the dump too);
* ``dateOfBirth``: a string (``1990-09-25`` / ``1990-09-25T00:00:00.000Z``, GET) or epoch
  milliseconds, negative before 1970 (search) -> a :class:`datetime.date`, dumped ``YYYY-MM-DD``;
* custom field values: ``value`` (GET) or ``fieldValue`` / ``field_value`` -> ``value``;
* search-only fields (``businessName``, ``phoneLabel``, ``additionalEmails``, ``additionalPhones``,
  ``validEmail``, ``followers``, ``dndSettings``, ``firstNameLowerCase``, ``lastNameLowerCase`` ...)
  are kept as they came.

Dates: parsed by :mod:`airflow_provider_contacts.dates` (the one date parser): every date-time field
is a timezone-aware UTC :class:`datetime.datetime`. ISO 8601 strings (``2021-07-08T02:30:00.000Z``,
offsets, ``YYYY-MM-DD HH:MM:SS``; **a naive value is taken as UTC**), dates (midnight UTC) and
epoch **milliseconds** (numbers or digit strings, negative ones included; exactly eight digits are
the ISO basic date ``YYYYMMDD``) are accepted. Dates in request bodies are sent as ISO 8601 in UTC
with milliseconds (``2021-07-08T02:30:00.000Z``); ``dateOfBirth`` is sent as ``YYYY-MM-DD``.

**A malformed date in an API answer does not fail the answer.** A date or date-time field of an API
object (``dateAdded``, ``dateUpdated``, ``dueDate``, ``startTime``, ``endTime``, typed
:data:`GHLDatetime`; ``dateOfBirth``, typed :data:`GHLDate`) that holds a string or number which is
not a date keeps that raw value instead of raising, and a warning names the record id, the field and
the value. One bad record thus cannot fail a whole page of ``iter_search_contacts`` or
``list_tasks``; downstream (e.g. the reconciliation's mapping) decides what to do with it. Code
reading these fields must therefore be ready for a ``str`` (or a number) where it expects a
``datetime``/``date``. Values of another type (``True``, a list, an object) are still rejected.
"""

from __future__ import annotations

import logging
import re
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_provider_contacts import dates
from airflow_provider_contacts.errors import GHLValidationError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Dates (all parsing is done by airflow_provider_contacts.dates)
# --------------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """An API or user date-time as an aware UTC :class:`datetime` (``None`` for ``None``/blank).

    Kept importable from ``models`` for compatibility; the rules are those of
    :func:`airflow_provider_contacts.dates.parse_datetime` (ISO 8601, the ``dateOfBirth`` forms,
    dates, epoch milliseconds - numbers or digit strings, negative ones included; a naive value is
    UTC).

    :raises ValueError: (a :class:`~airflow_provider_contacts.dates.DateParseError`) naming the value
        and the accepted forms, for anything else (booleans, lists, unparseable strings).
    """
    return dates.parse_datetime(value)


def format_datetime(value: datetime) -> str:
    """HighLevel's date-time form: UTC, milliseconds, ``Z`` (see :func:`dates.format_datetime`)."""
    return dates.format_datetime(value)


def _record_id(info: ValidationInfo) -> Any:
    return info.data.get("id") if isinstance(info.data, dict) else None


def _keep_raw(value: Any, info: ValidationInfo, exc: Exception) -> Any:
    """The raw value of a bad date in an answer, after one warning naming record, field and value."""
    log.warning("record %s: field %r: %s; kept as the raw value", _record_id(info) or "(no id)", info.field_name, exc)
    return value


def _is_raw_date_value(value: Any) -> bool:
    """A value HighLevel could have meant as a date: a string or a number (not a bool)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _api_datetime(value: Any, info: ValidationInfo) -> Any:
    """:func:`dates.parse_datetime` for API answers: a string or number that is not a date-time is
    kept as it is (and logged); other types (bool, list, object) are rejected.

    The warning names the record's ``id`` (the models declare it first, so it is validated by
    then), the field and the value.
    """
    if value is None or isinstance(value, datetime):
        return dates.parse_datetime(value)
    if not _is_raw_date_value(value) and not isinstance(value, date):
        raise ValueError(f"{value!r} ({type(value).__name__}) is not a date-time")
    try:
        return dates.parse_datetime(value)
    except ValueError as exc:
        return _keep_raw(value, info, exc)


def _api_date(value: Any, info: ValidationInfo) -> Any:
    """:func:`dates.parse_date` for API answers (``dateOfBirth``): epoch milliseconds (search),
    ``YYYY-MM-DD`` or a date-time string (GET) -> :class:`date`; a bad string/number is kept raw
    (and logged); other types are rejected."""
    if value is None or isinstance(value, date):
        return dates.parse_date(value)
    if not _is_raw_date_value(value):
        raise ValueError(f"{value!r} ({type(value).__name__}) is not a date")
    try:
        return dates.parse_date(value)
    except ValueError as exc:
        return _keep_raw(value, info, exc)


def _dump_date(value: Any) -> Any:
    return dates.format_date(value) if isinstance(value, date) and not isinstance(value, datetime) else value


#: An aware UTC datetime parsed from what HighLevel returns (naive -> UTC), or - if HighLevel sent a
#: string or number that is not a date-time - that raw value (logged; see the module docstring).
GHLDatetime = Annotated[datetime | str | int | float, PlainValidator(_api_datetime)]
#: A calendar date parsed from what HighLevel returns (``dateOfBirth``: epoch milliseconds from the
#: search, a string from ``GET /contacts/{id}``), dumped as ``YYYY-MM-DD`` in every dump mode; or the
#: raw string/number HighLevel sent when it is not a date (logged).
GHLDate = Annotated[date | str | int | float, PlainValidator(_api_date), PlainSerializer(_dump_date)]
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


#: Keys under which the live API and the spec carry a custom field's value (``value`` in answers of
#: ``GET /contacts/{id}``; ``fieldValue`` (now preferred) and ``field_value`` (older) in writes,
#: ghl-live-notes.md), in order of preference when reading.
CUSTOM_FIELD_VALUE_KEYS = ("value", "fieldValue", "field_value")


class CustomFieldValue(APIModel):
    """A custom field value on a contact (``customFields`` item of an answer): ``id`` and ``value``.

    ``value`` is filled from ``fieldValue`` or ``field_value`` when the answer used one of those
    names instead (the original key stays in the dump).
    """

    id: str | None = None
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _value_from_other_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" not in data:
            for key in CUSTOM_FIELD_VALUE_KEYS[1:]:
                if key in data:
                    return {**data, "value": data[key]}
        return data


class Contact(APIModel):
    """A contact, read through any endpoint: ``GET /contacts/{id}`` (``GetContectByIdSchema``),
    ``POST /contacts/search`` (live shape: ghl-live-notes.md, "Contact shapes differ by endpoint"),
    the legacy listing, upsert and create answers. Every endpoint's answer parses into the same
    fields (see the module docstring):

    * ``address1``: the street address; filled from the search's ``address`` when only that came
      (both keys are then in ``model_dump(exclude_unset=True)``, so the raw record keeps ``address``);
    * ``dateOfBirth``: a :class:`datetime.date` (epoch milliseconds from the search, negative before
      1970: ``-89596800000`` is 1967-03-01; a string from GET), dumped ``YYYY-MM-DD``; a value that
      is not a date is kept raw with a warning;
    * ``searchAfter``: the cursor the advanced search returns on each contact;
    * every other field HighLevel sends (``businessName``, ``additionalEmails``, ``dndSettings`` ...)
      is kept as it came (``model_extra``).
    """

    id: str
    locationId: str | None = None
    name: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    phone: str | None = None
    companyName: str | None = None
    address1: str | None = None
    timezone: str | None = None
    country: str | None = None
    source: str | None = None
    type: str | None = None
    assignedTo: str | None = None
    businessId: str | None = None
    dnd: bool | None = None
    dateOfBirth: GHLDate | None = None
    tags: StrList = Field(default_factory=list)
    customFields: Annotated[list[CustomFieldValue], BeforeValidator(_none_to_list)] = Field(
        default_factory=list
    )
    followers: StrList = Field(default_factory=list)
    dateAdded: GHLDatetime | None = None
    dateUpdated: GHLDatetime | None = None
    searchAfter: NullableList | None = None

    @model_validator(mode="before")
    @classmethod
    def _address_from_search(cls, data: Any) -> Any:
        # POST /contacts/search names the street address ``address``; GET names it ``address1``.
        if isinstance(data, dict) and "address1" not in data and isinstance(data.get("address"), str):
            return {**data, "address1": data["address"]}
        return data

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
    """Tasks and notes of one contact, as yielded by ``GHLContactsHook.fetch_tasks_and_notes``."""

    contact_id: str
    tasks: list[Task] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Request bodies (strict)
# --------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
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
    """A custom field value to write (``customFields`` item of a create/update/upsert body).

    The field is named by ``id`` or by ``key`` (its ``fieldKey``, e.g. ``contact.pincode``); the
    value may be given as ``fieldValue`` (what the live API now prefers), ``field_value`` (the
    spec's ``customFieldsInput*Schema``, older but still accepted) or ``value`` (the name answers
    use). Sources: contacts.json ``UpdateContactDto.customFields``; ghl-live-notes.md ("What the
    live API accepts").

    Sent as given, except ``value``, which is not a name the API reads on writes: it is sent as
    ``fieldValue``. Give the value under one name only.
    """

    id: str | None = None
    key: str | None = None
    fieldValue: Any = None
    field_value: Any = None
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _value_as_field_value(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data and "fieldValue" not in data and "field_value" not in data:
            data = dict(data)
            data["fieldValue"] = data.pop("value")
        return data

    @model_validator(mode="after")
    def _id_or_key(self) -> CustomFieldInput:
        if not self.id and not self.key:
            raise ValueError("a custom field needs its 'id' (or its 'key', e.g. 'contact.pincode')")
        given = [k for k in CUSTOM_FIELD_VALUE_KEYS if k in self.model_fields_set]
        if len(given) > 1:
            raise ValueError(
                f"the value is given twice ({' and '.join(repr(k) for k in given)}); give it once, "
                "as 'fieldValue' (preferred), 'field_value' or 'value'"
            )
        return self


def _check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return value
    if not _EMAIL_RE.match(value):
        raise ValueError(f"{value!r} is not a valid email address; fix the value or leave it out")
    return value


#: What a phone may look like: digits with the usual separators, an optional leading ``+`` and an
#: optional extension (``ext. 12``, ``x12``, ``#12``).
_PHONE_RE = re.compile(r"^\+?[0-9\s().\-/]+(?:\s*(?:ext\.?|x|#)\s*[0-9]+)?$", re.IGNORECASE)
#: Fewest / most digits of a phone (short codes ... E.164's 15 plus a trunk prefix and extension).
_PHONE_DIGITS = (3, 20)


def _check_phone(value: str | None) -> str | None:
    """Liberal on purpose: HighLevel stores phones as given, without numbering-plan validation
    (``+12010710892``, whose exchange starts with 0, is a real stored value: ghl-live-notes.md), so
    only what cannot be a phone at all is refused (letters, no or too few digits)."""
    if value is None or value == "":
        return value
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_RE.match(value) or not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
        raise ValueError(
            f"{value!r} is not a valid phone number; use digits, e.g. E.164 like '+14155550123', or leave it out"
        )
    return value


def _date_of_birth(value: Any) -> Any:
    """``dateOfBirth`` of a request body as ``YYYY-MM-DD`` (``None``/blank pass through).

    Accepts the forms contacts.json's own description lists (``YYYY/MM/DD, MM/DD/YYYY,
    YYYY-MM-DD, MM-DD-YYYY, YYYY.MM.DD, MM.DD.YYYY, YYYY_MM_DD, MM_DD_YYYY``; month before day in
    the US forms), ISO date-times (their date part), :class:`date`/:class:`datetime` and epoch
    milliseconds, all via :func:`dates.parse_date`.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float, date)):
        raise ValueError(
            f"{value!r} ({type(value).__name__}) is not a date of birth; use one of "
            f"{', '.join(dates.DATE_OF_BIRTH_FORMATS)}, a date, or epoch milliseconds"
        )
    try:
        parsed = dates.parse_date(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date of birth; use one of {', '.join(dates.DATE_OF_BIRTH_FORMATS)} "
            "(e.g. '1990-09-25' or '09/25/1990'), a date, or epoch milliseconds"
        ) from None
    return dates.format_date(parsed) if parsed else None


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
    dateOfBirth: str | None = None
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

    @field_validator("dateOfBirth", mode="before")
    @classmethod
    def _birth_date(cls, value: Any) -> Any:
        return _date_of_birth(value)

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


def _types_of(annotation: Any) -> list[Any]:
    """The alternatives of an annotation: ``X | None`` / ``Union`` / ``Annotated`` unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _types_of(typing.get_args(annotation)[0])
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return [t for arg in typing.get_args(annotation) for t in _types_of(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _models_of(types: list[Any]) -> list[type[BaseModel]]:
    return [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]


def _member_name(part: str) -> str:
    """The model a union-member location part names (``SearchFilterGroup`` or a validator wrapper
    such as ``function-after[_value_needed(), SearchFilter]``)."""
    match = re.search(r"(\w+)\]$", part) if part.startswith("function-") else None
    return match[1] if match else part


def accepted_keys(model: type[BaseModel]) -> list[str]:
    """The keys a request model accepts: its field names and their aliases, in declaration order."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        names = [name]
        if isinstance(info.validation_alias, AliasChoices):
            names += [c for c in info.validation_alias.choices if isinstance(c, str)]
        elif isinstance(info.validation_alias, str):
            names.append(info.validation_alias)
        if info.alias:
            names.append(info.alias)
        keys += [n for n in names if n not in keys]
    return keys


@dataclass
class _Place:
    """Where in a body an error is: the location as shown, the union members taken on the way,
    and the request models that can hold the last location part."""

    shown: list[str]
    members: list[tuple[int, str]]
    models: list[type[BaseModel]]


def _place(model: type[BaseModel], loc: tuple[Any, ...]) -> _Place:
    """Walk ``loc`` (a pydantic error location) through ``model``'s fields."""
    candidates: list[Any] = [model]
    shown: list[str] = []
    members: list[tuple[int, str]] = []
    for part in loc:
        types = [t for c in candidates for t in _types_of(c)]
        if isinstance(part, int):
            candidates = [
                typing.get_args(t)[0] for t in types if typing.get_origin(t) in (list, tuple, set) and typing.get_args(t)
            ]
            shown.append(str(part))
            continue
        part = str(part)
        models = _models_of(types)
        name = _member_name(part)
        member = [m for m in models if m.__name__ == name]
        if member and (len(models) > 1 or part.startswith("function-")):
            if len(models) > 1:
                members.append((len(shown), name))
            candidates = member
            continue
        if part.startswith("function-"):  # a validator wrapper, not a place in the body
            continue
        shown.append(part)
        candidates = [m.model_fields[part].annotation for m in models if part in m.model_fields]
    return _Place(shown, members, _models_of([t for c in candidates for t in _types_of(c)]))


def _keep_likeliest_members(errors: list[dict[str, Any]], places: list[_Place]) -> list[int]:
    """Indexes of the errors to report: where a value matched no member of a union (e.g. a search
    filter that is neither a filter nor a group), only the member the value was most likely meant
    as is reported: the one with the fewest errors on its own keys (missing or unknown ones), then
    the fewest errors in all."""
    scores: dict[tuple[Any, ...], dict[str, list[int]]] = {}
    for place in places:
        for position, name in place.members:
            score = scores.setdefault(tuple(place.shown[:position]), {}).setdefault(name, [0, 0])
            score[0] += len(place.shown) <= position + 1
            score[1] += 1
    chosen = {key: min(names, key=lambda n: names[n]) for key, names in scores.items()}
    return [
        i
        for i, place in enumerate(places)
        if all(chosen[tuple(place.shown[:pos])] == name for pos, name in place.members)
    ]


def _describe_error(err: dict[str, Any], model: type[BaseModel], place: _Place | None = None) -> str:
    """One error of a refused body: where, what, and the fix (the keys accepted *at that place*)."""
    place = place or _place(model, tuple(err.get("loc", ())))
    loc = ".".join(place.shown)
    kind = err.get("type", "")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    where = f"field '{loc}'" if loc else "body"
    if kind == "missing":
        return f"{where} is required; add it"
    if kind == "extra_forbidden":
        parent = _place(model, tuple(err.get("loc", ()))[:-1])
        keys = [k for m in parent.models for k in accepted_keys(m)]
        allowed = ", ".join(dict.fromkeys(keys)) or "none"
        at = f" at '{'.'.join(parent.shown)}'" if parent.shown else ""
        return f"{where} is not accepted here; remove it (accepted fields{at}: {allowed})"
    if kind in ("value_error", "assertion_error"):
        return f"{where}: {msg}"
    value = err.get("input")
    return f"{where}: {value!r} is invalid ({msg}); fix the value"


def validate_body(model: type[M], body: M | dict[str, Any] | None, operation: str) -> M:
    """Validate a request body (a dict or an instance of ``model``) before sending it.

    :raises GHLValidationError: naming the operation, each bad field (its dotted place, e.g.
        ``customFields.0.fieldValu``) and how to fix it; for an unknown key, the keys accepted at
        that place (inside ``customFields[0]``: ``id, key, fieldValue, field_value, value``, not the
        contact's own fields). Where a value matches no member of a union (a search filter that is
        neither a filter nor a group), only the likeliest member's errors are reported.
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
        errors = exc.errors(include_url=False)
        places = [_place(model, tuple(e.get("loc", ()))) for e in errors]
        problems = "; ".join(
            dict.fromkeys(_describe_error(errors[i], model, places[i]) for i in _keep_likeliest_members(errors, places))
        )
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
    "CUSTOM_FIELD_VALUE_KEYS",
    "CustomFieldValue",
    "DndSetting",
    "DndSettings",
    "FollowersBody",
    "FollowersResult",
    "GHLDate",
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
    "accepted_keys",
    "added_since",
    "format_datetime",
    "parse_datetime",
    "validate_body",
]
