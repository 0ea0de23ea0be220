"""Request bodies of the API, as pydantic models named after the spec's DTOs (contacts.json,
locations.json). Like HighLevel (NestJS class-validator with ``forbidNonWhitelisted``), unknown
properties are rejected and types are strict; ``parse_body`` turns failures into 422 messages
naming each field (``email must be a string``, ``property foo should not exist``).
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from starlette.requests import Request

from .dates import parse_datetime_ms
from .errors import APIError, validation_messages


class DTO(BaseModel):
    """Strict, closed request model."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DndSetting(DTO):
    status: Literal["active", "inactive", "permanent"]
    message: str | None = None
    code: str | None = None


class DndSettings(DTO):
    Call: DndSetting | None = None
    Email: DndSetting | None = None
    SMS: DndSetting | None = None
    WhatsApp: DndSetting | None = None
    GMB: DndSetting | None = None
    FB: DndSetting | None = None


class InboundDndSetting(DTO):
    status: Literal["active", "inactive"]
    message: str | None = None


class InboundDndSettings(DTO):
    all: InboundDndSetting | None = None


class CustomFieldInput(DTO):
    """One of the spec's ``customFields`` item schemas (``id`` or ``key``, plus ``field_value``).

    As on the live API, the value may also come as ``fieldValue`` (now preferred by HighLevel;
    refused in strict spec mode by the store) or ``value``.
    """

    id: str | None = None
    key: str | None = None
    field_value: Any = None
    fieldValue: Any = None
    value: Any = None


class _ContactFields(DTO):
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
    dateOfBirth: Any = None  # any of the spec's date formats; checked and normalised by the store
    country: str | None = None
    assignedTo: str | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, v: str | None) -> str | None:
        if v is not None and v != "" and ("@" not in v or v.startswith("@") or v.endswith("@") or " " in v.strip()):
            raise ValueError("email must be an email")
        return v.strip() if v else v


class CreateContactDto(_ContactFields):
    locationId: str
    gender: str | None = None
    companyName: str | None = None


class UpdateContactDto(_ContactFields):
    pass


class AdminContactDto(_ContactFields):
    """What a CRM user can set on a contact through the admin surface (no ``locationId``)."""

    gender: str | None = None
    companyName: str | None = None


class UpsertContactDto(CreateContactDto):
    createNewIfDuplicateAllowed: bool | None = None


class SearchSort(DTO):
    field: str
    direction: Literal["asc", "desc"] = "asc"


class SearchBodyV2DTO(BaseModel):
    """``POST /contacts/search`` (filters are validated by ``search.compile_filters``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    locationId: str
    page: int | None = None
    pageLimit: int = 20
    searchAfter: list[Any] | None = None
    filters: list[Any] | None = None
    sort: list[SearchSort] | None = None
    query: str | None = None


def _due_date(v: str | None) -> str | None:
    """Reject a ``dueDate`` that is not ISO-8601."""
    if v is not None:
        parse_datetime_ms(v, "dueDate")
    return v


class CreateTaskParams(DTO):
    title: str
    body: str | None = None
    dueDate: str
    completed: bool
    assignedTo: str | None = None

    @field_validator("dueDate")
    @classmethod
    def _check_due(cls, v: str | None) -> str | None:
        return _due_date(v)


class UpdateTaskBody(DTO):
    title: str | None = None
    body: str | None = None
    dueDate: str | None = None
    completed: bool | None = None
    assignedTo: str | None = None

    @field_validator("dueDate")
    @classmethod
    def _check_due(cls, v: str | None) -> str | None:
        return _due_date(v)


class UpdateTaskStatusParams(DTO):
    completed: bool


class NotesDTO(DTO):
    userId: str | None = None
    body: str
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


class UpdateNoteDTO(DTO):
    userId: str | None = None
    body: str | None = None
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


class TagsDTO(DTO):
    tags: list[str]


class UpdateTagsDTO(DTO):
    contacts: list[str]
    tags: list[str]
    locationId: str
    removeAllTags: bool | None = None


class ContactsBusinessUpdate(DTO):
    locationId: str
    ids: list[str]
    businessId: str | None


class FollowersDTO(DTO):
    followers: list[str]


class AddContactToCampaignDto(DTO):
    pass


class CreateWorkflowDto(DTO):
    eventStartTime: str | None = None

    @field_validator("eventStartTime")
    @classmethod
    def _check_start(cls, v: str | None) -> str | None:
        if v is not None:
            parse_datetime_ms(v, "eventStartTime")
        return v


class TaskSearchParamsDto(DTO):
    """``POST /locations/{locationId}/tasks/search`` (locations.json)."""

    contactId: list[str] | None = None
    completed: bool | None = None
    assignedTo: list[str] | None = None
    query: str | None = None
    limit: int = 25
    skip: int = 0
    businessId: str | None = None


M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body; 400 naming the problem when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise APIError(400, "Request body is missing; send a JSON object with Content-Type: application/json")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"Request body is not valid JSON: {exc}") from None


async def parse_body(request: Request, model: type[M], *, required: bool = True) -> tuple[M, dict[str, Any]]:
    """Validate the JSON body against ``model``: the model and a dict of the fields the client set."""
    return validate_data(model, await read_json(request, required=required))


def validate_data(model: type[M], data: Any) -> tuple[M, dict[str, Any]]:
    """Validate a decoded body against ``model`` (422 naming each bad field)."""
    if not isinstance(data, dict):
        raise APIError(422, ["body must be a JSON object"])
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        raise APIError(422, validation_messages(exc)) from None
    return obj, obj.model_dump(exclude_unset=True)
