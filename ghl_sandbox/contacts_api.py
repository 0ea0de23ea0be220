"""The 32 operations of contacts.json (paths, operationIds, bodies and response fields as specified).

Response codes follow the spec (201 for the POSTs it says 201 for). Errors use HighLevel's body
``{"statusCode", "message", "traceId"}``. Unknown or deleted contacts, tasks and notes answer as
the live API does, 400 ``Contact not found`` (``Task not found``, ``Note not found``), or 404 in
strict spec mode. Contacts are shown as ``shapes.py`` says: the live search shape in
``POST /contacts/search`` (``address``, ``dateOfBirth`` in epoch ms, search-only fields), the stored
(GET) shape everywhere else, including the deprecated ``GET /contacts/`` and the business listing
(both documented with ``ContactsSearchSchema``, which names no address or birth date).
"""

from __future__ import annotations

import bisect
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .api_common import answer, contact_in_scope, sandbox_state, token_location
from .dates import parse_datetime_ms
from .errors import APIError, unprocessable
from .gate import Operation
from .schemas import (
    AddContactToCampaignDto,
    ContactsBusinessUpdate,
    CreateContactDto,
    CreateTaskParams,
    CreateWorkflowDto,
    FollowersDTO,
    NotesDTO,
    SearchBodyV2DTO,
    TagsDTO,
    UpdateContactDto,
    UpdateNoteDTO,
    UpdateTagsDTO,
    UpdateTaskBody,
    UpdateTaskStatusParams,
    UpsertContactDto,
    parse_body,
)
from .search import parse_sort

READ = ("contacts.readonly",)
WRITE = ("contacts.write",)
LEGACY_MAX_LIMIT = 100
BUSINESS_MAX_LIMIT = 100

OPERATIONS: dict[str, Operation] = {
    op: Operation(op, scopes)
    for op, scopes in {
        "search-contacts-advanced": READ,
        "get-duplicate-contact": READ,
        "get-all-tasks": READ,
        "create-task": WRITE,
        "get-task": READ,
        "update-task": WRITE,
        "delete-task": WRITE,
        "update-task-completed": WRITE,
        "get-appointments-for-contact": READ,
        "add-tags": WRITE,
        "remove-tags": WRITE,
        "get-all-notes": READ,
        "create-note": WRITE,
        "get-note": READ,
        "update-note": WRITE,
        "delete-note": WRITE,
        "create-association": WRITE,
        "add-remove-contact-from-business": WRITE,
        "get-contact": READ,
        "update-contact": WRITE,
        "delete-contact": WRITE,
        "upsert-contact": WRITE,
        "get-contacts-by-businessId": READ,
        "add-followers-contact": WRITE,
        "remove-followers-contact": WRITE,
        "add-contact-to-campaign": WRITE,
        "remove-contact-from-campaign": WRITE,
        "remove-contact-from-every-campaign": WRITE,
        "add-contact-to-workflow": WRITE,
        "delete-contact-from-workflow": WRITE,
        "create-contact": WRITE,
        "get-contacts": READ,
    }.items()
}

router = APIRouter()


def _int_param(request: Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise unprocessable(f"{name} must be a number conforming to the specified constraints") from None
    if value < minimum:
        raise unprocessable(f"{name} must not be less than {minimum}")
    if maximum is not None and value > maximum:
        raise unprocessable(f"{name} must not be greater than {maximum}")
    return value


def _required_query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise unprocessable(f"{name} should not be empty")
    return value


# ---- search ----------------------------------------------------------------------------------
@router.post("/contacts/search", operation_id="search-contacts-advanced")
async def search_contacts_advanced(request: Request) -> Response:
    """Advanced search: page/pageLimit (page x pageLimit <= 10,000) or searchAfter, filters, sort."""
    st = sandbox_state(request)
    body, _ = await parse_body(request, SearchBodyV2DTO)
    loc = token_location(request, body.locationId)
    cfg = st.config
    if body.pageLimit < 1 or body.pageLimit > cfg.max_search_page_limit:
        raise unprocessable(f"pageLimit must not be greater than {cfg.max_search_page_limit} (and at least 1)")
    page = body.page if body.page is not None else 1
    if page < 1:
        raise unprocessable("page must not be less than 1")
    if body.searchAfter is None and page * body.pageLimit > cfg.max_search_window:
        raise APIError(
            400,
            f"Pagination beyond {cfg.max_search_window} records is not supported with page and pageLimit "
            f"(page {page} x pageLimit {body.pageLimit} = {page * body.pageLimit}); use searchAfter to page further",
        )
    sort = parse_sort([s.model_dump() for s in body.sort] if body.sort else None)
    content = st.store.search_json(
        loc, filters=body.filters, sort=sort, query=body.query, page=page, page_limit=body.pageLimit,
        search_after=body.searchAfter,
    )
    return Response(content, media_type="application/json")


@router.get("/contacts/search/duplicate", operation_id="get-duplicate-contact")
async def get_duplicate_contact(request: Request) -> JSONResponse:
    """The contact the location's duplicate rule would match for this email/number, or ``null``."""
    st = sandbox_state(request)
    loc = token_location(request, _required_query(request, "locationId"))
    email, number = request.query_params.get("email"), request.query_params.get("number")
    if not email and not number:
        raise unprocessable("email or number should not be empty")
    dup = st.store.find_duplicate(loc, email, number)
    return answer({"contact": st.store.render(loc, loc.contacts[dup[0]]) if dup else None})


# ---- bulk --------------------------------------------------------------------------------------
@router.post("/contacts/bulk/tags/update/{type}", operation_id="create-association")
async def bulk_update_tags(request: Request, type: str) -> JSONResponse:
    """Add or remove tags on many contacts; ``responses`` lists one message per contact not updated."""
    st = sandbox_state(request)
    if type not in ("add", "remove"):
        raise unprocessable("type must be one of the following values: add, remove")
    body, _ = await parse_body(request, UpdateTagsDTO)
    loc = token_location(request, body.locationId)
    errors: list[str] = []
    wanted = {t.strip().lower() for t in body.tags if t.strip()}
    for cid in body.contacts:
        contact = loc.contacts.get(cid)
        if contact is None:
            errors.append(f"Contact with id {cid} not found")
            continue
        current = set(contact["tags"])
        if type == "add":
            new = current | wanted
        else:
            new = set() if body.removeAllTags else current - wanted
        st.store.update_contact(cid, {"tags": sorted(new)})
    return answer({"succeded": not errors, "errorCount": len(errors), "responses": errors}, 201)


@router.post("/contacts/bulk/business", operation_id="add-remove-contact-from-business")
async def bulk_business(request: Request) -> JSONResponse:
    """Set (or clear with ``businessId: null``) the business of many contacts; returns the ids updated."""
    st = sandbox_state(request)
    body, _ = await parse_body(request, ContactsBusinessUpdate)
    loc = token_location(request, body.locationId)
    updated = []
    for cid in body.ids:
        if cid in loc.contacts:
            loc.contacts[cid]["businessId"] = body.businessId
            st.store.touch(loc, cid)
            updated.append(cid)
    return answer({"success": True, "ids": updated})


# ---- contacts -------------------------------------------------------------------------------------
@router.post("/contacts/upsert", operation_id="upsert-contact")
async def upsert_contact(request: Request) -> JSONResponse:
    """Update the contact matching email/phone (location's order) or create one; ``new`` tells which."""
    st = sandbox_state(request)
    body, data = await parse_body(request, UpsertContactDto)
    loc = token_location(request, body.locationId)
    data.pop("locationId", None)
    contact, new = st.store.upsert_contact(loc, data)
    return answer({"new": new, "contact": st.store.render(loc, contact), "traceId": request.state.trace_id})


@router.get("/contacts/business/{businessId}", operation_id="get-contacts-by-businessId")
async def get_contacts_by_business(request: Request, businessId: str) -> JSONResponse:
    """Contacts of a business: ``limit`` (default 25, max 100), ``skip``, ``query``."""
    st = sandbox_state(request)
    loc = token_location(request, _required_query(request, "locationId"))
    limit = _int_param(request, "limit", 25, minimum=1, maximum=BUSINESS_MAX_LIMIT)
    skip = _int_param(request, "skip", 0)
    keys = loc.index.matching(loc.version, loc.contacts, loc.times,
                              [{"field": "businessId", "operator": "eq", "value": businessId}],
                              parse_sort(None), request.query_params.get("query") or None)
    contacts = [st.store.render(loc, loc.contacts[k[-1]]) for k in keys[skip:skip + limit]]
    return answer({"contacts": contacts, "count": len(keys)})


@router.post("/contacts/", operation_id="create-contact")
async def create_contact(request: Request) -> JSONResponse:
    """Create a contact (400 with ``meta`` when the location forbids the duplicate).

    Quirk ``create_422_after_create_rate``: that fraction of creates answers 422 after storing the contact.
    """
    st = sandbox_state(request)
    body, data = await parse_body(request, CreateContactDto)
    loc = token_location(request, body.locationId)
    data.pop("locationId", None)
    contact = st.store.create_contact(loc, data)
    if st.faults.chance(st.config.create_422_after_create_rate):
        raise APIError(422, ["Unable to process the request, please try again"])
    return answer({"contact": st.store.render(loc, contact)}, 201)


@router.get("/contacts/", operation_id="get-contacts")
async def get_contacts(request: Request) -> JSONResponse:
    """Deprecated listing: ``limit`` <= 100 (default 20), ``startAfter`` (epoch ms) + ``startAfterId``, ``meta``."""
    st = sandbox_state(request)
    loc = token_location(request, _required_query(request, "locationId"))
    limit = _int_param(request, "limit", 20, minimum=1, maximum=LEGACY_MAX_LIMIT)
    query = request.query_params.get("query") or None
    keys = loc.index.matching(loc.version, loc.contacts, loc.times, None, parse_sort(None), query)
    start_after, start_after_id = request.query_params.get("startAfter"), request.query_params.get("startAfterId")
    start = 0
    if start_after or start_after_id:
        if start_after:
            try:
                after_ms = parse_datetime_ms(start_after, "startAfter")
            except ValueError as exc:
                raise unprocessable(str(exc)) from None
        elif start_after_id in loc.contacts:
            after_ms = loc.times[start_after_id][0]
        else:
            raise unprocessable("startAfter should not be empty when startAfterId is not a contact of this location")
        start = bisect.bisect_right(keys, (after_ms, start_after_id or "~"))
    page = [st.store.render(loc, loc.contacts[k[-1]]) for k in keys[start:start + limit]]
    more = start + limit < len(keys)
    current = start // limit + 1
    meta: dict[str, Any] = {
        "total": len(keys), "nextPageUrl": None, "startAfterId": None, "startAfter": None,
        "currentPage": current, "nextPage": current + 1 if more else None,
        "prevPage": current - 1 if current > 1 else None,
    }
    if more and page:
        last = page[-1]
        meta["startAfterId"], meta["startAfter"] = last["id"], loc.times[last["id"]][0]
        params = {"locationId": loc.location_id, "limit": limit, "startAfter": meta["startAfter"],
                  "startAfterId": last["id"], **({"query": query} if query else {})}
        meta["nextPageUrl"] = f"{str(request.base_url).rstrip('/')}/contacts/?{urlencode(params)}"
    return answer({"contacts": page, "count": len(keys), "meta": meta})


# ---- tasks -------------------------------------------------------------------------------------
@router.get("/contacts/{contactId}/tasks", operation_id="get-all-tasks")
async def get_all_tasks(request: Request, contactId: str) -> JSONResponse:
    """All tasks of the contact."""
    contact_in_scope(request, contactId)
    return answer({"tasks": sandbox_state(request).store.list_tasks(contactId)})


@router.post("/contacts/{contactId}/tasks", operation_id="create-task")
async def create_task(request: Request, contactId: str) -> JSONResponse:
    """Create a task (title, dueDate, completed required)."""
    contact_in_scope(request, contactId)
    _, data = await parse_body(request, CreateTaskParams)
    return answer({"task": sandbox_state(request).store.create_task(contactId, data)}, 201)


@router.get("/contacts/{contactId}/tasks/{taskId}", operation_id="get-task")
async def get_task(request: Request, contactId: str, taskId: str) -> JSONResponse:
    """One task."""
    contact_in_scope(request, contactId)
    return answer({"task": sandbox_state(request).store.get_task(contactId, taskId)})


@router.put("/contacts/{contactId}/tasks/{taskId}", operation_id="update-task")
async def update_task(request: Request, contactId: str, taskId: str) -> JSONResponse:
    """Update a task."""
    contact_in_scope(request, contactId)
    _, data = await parse_body(request, UpdateTaskBody)
    return answer({"task": sandbox_state(request).store.update_task(contactId, taskId, data)})


@router.delete("/contacts/{contactId}/tasks/{taskId}", operation_id="delete-task")
async def delete_task(request: Request, contactId: str, taskId: str) -> JSONResponse:
    """Delete a task."""
    contact_in_scope(request, contactId)
    sandbox_state(request).store.delete_activity("tasks", contactId, taskId)
    return answer({"succeded": True})


@router.put("/contacts/{contactId}/tasks/{taskId}/completed", operation_id="update-task-completed")
async def update_task_completed(request: Request, contactId: str, taskId: str) -> JSONResponse:
    """Mark a task completed or pending."""
    contact_in_scope(request, contactId)
    _, data = await parse_body(request, UpdateTaskStatusParams)
    return answer({"task": sandbox_state(request).store.update_task(contactId, taskId, data)})


# ---- appointments, tags, notes ------------------------------------------------------------------
@router.get("/contacts/{contactId}/appointments", operation_id="get-appointments-for-contact")
async def get_appointments(request: Request, contactId: str) -> JSONResponse:
    """The contact's appointments (calendar events)."""
    loc, _ = contact_in_scope(request, contactId)
    return answer({"events": list(loc.appointments_by_contact.get(contactId, []))})


async def _change_tags(request: Request, contact_id: str, add: bool) -> list[str]:
    loc, contact = contact_in_scope(request, contact_id)
    body, _ = await parse_body(request, TagsDTO)
    wanted = {t.strip().lower() for t in body.tags if t.strip()}
    current = set(contact["tags"])
    new = current | wanted if add else current - wanted
    sandbox_state(request).store.update_contact(contact_id, {"tags": sorted(new)})
    return list(loc.contacts[contact_id]["tags"])


@router.post("/contacts/{contactId}/tags", operation_id="add-tags")
async def add_tags(request: Request, contactId: str) -> JSONResponse:
    """Add tags (lower-cased, like HighLevel); answers all the contact's tags."""
    return answer({"tags": await _change_tags(request, contactId, True)}, 201)


@router.delete("/contacts/{contactId}/tags", operation_id="remove-tags")
async def remove_tags(request: Request, contactId: str) -> JSONResponse:
    """Remove tags; answers the remaining tags."""
    return answer({"tags": await _change_tags(request, contactId, False)})


@router.get("/contacts/{contactId}/notes", operation_id="get-all-notes")
async def get_all_notes(request: Request, contactId: str) -> JSONResponse:
    """All notes of the contact."""
    contact_in_scope(request, contactId)
    return answer({"notes": sandbox_state(request).store.list_notes(contactId)})


@router.post("/contacts/{contactId}/notes", operation_id="create-note")
async def create_note(request: Request, contactId: str) -> JSONResponse:
    """Create a note (body required)."""
    contact_in_scope(request, contactId)
    _, data = await parse_body(request, NotesDTO)
    return answer({"note": sandbox_state(request).store.create_note(contactId, data)}, 201)


@router.get("/contacts/{contactId}/notes/{id}", operation_id="get-note")
async def get_note(request: Request, contactId: str, id: str) -> JSONResponse:
    """One note."""
    contact_in_scope(request, contactId)
    return answer({"note": sandbox_state(request).store.get_note(contactId, id)})


@router.put("/contacts/{contactId}/notes/{id}", operation_id="update-note")
async def update_note(request: Request, contactId: str, id: str) -> JSONResponse:
    """Update a note."""
    contact_in_scope(request, contactId)
    _, data = await parse_body(request, UpdateNoteDTO)
    return answer({"note": sandbox_state(request).store.update_note(contactId, id, data)})


@router.delete("/contacts/{contactId}/notes/{id}", operation_id="delete-note")
async def delete_note(request: Request, contactId: str, id: str) -> JSONResponse:
    """Delete a note."""
    contact_in_scope(request, contactId)
    sandbox_state(request).store.delete_activity("notes", contactId, id)
    return answer({"succeded": True})


# ---- followers, campaigns, workflows --------------------------------------------------------------
async def _change_followers(request: Request, contact_id: str, add: bool) -> tuple[list[str], list[str]]:
    loc, contact = contact_in_scope(request, contact_id)
    body, _ = await parse_body(request, FollowersDTO)
    current: list[str] = list(contact.get("followers") or [])
    if add:
        changed = [f for f in dict.fromkeys(body.followers) if f not in current]
        current.extend(changed)
    else:
        changed = [f for f in dict.fromkeys(body.followers) if f in current]
        current = [f for f in current if f not in changed]
    contact["followers"] = current
    sandbox_state(request).store.touch(loc, contact_id)
    return current, changed


@router.post("/contacts/{contactId}/followers", operation_id="add-followers-contact")
async def add_followers(request: Request, contactId: str) -> JSONResponse:
    """Add followers (user ids)."""
    followers, added = await _change_followers(request, contactId, True)
    return answer({"followers": followers, "followersAdded": added}, 201)


@router.delete("/contacts/{contactId}/followers", operation_id="remove-followers-contact")
async def remove_followers(request: Request, contactId: str) -> JSONResponse:
    """Remove followers."""
    followers, removed = await _change_followers(request, contactId, False)
    return answer({"followers": followers, "followersRemoved": removed})


@router.delete("/contacts/{contactId}/campaigns/removeAll", operation_id="remove-contact-from-every-campaign")
async def remove_from_all_campaigns(request: Request, contactId: str) -> JSONResponse:
    """Remove the contact from every campaign."""
    loc, _ = contact_in_scope(request, contactId)
    loc.campaigns_by_contact.pop(contactId, None)
    return answer({"succeded": True})


@router.post("/contacts/{contactId}/campaigns/{campaignId}", operation_id="add-contact-to-campaign")
async def add_to_campaign(request: Request, contactId: str, campaignId: str) -> JSONResponse:
    """Add the contact to a campaign."""
    loc, _ = contact_in_scope(request, contactId)
    await parse_body(request, AddContactToCampaignDto, required=False)
    loc.campaigns_by_contact.setdefault(contactId, set()).add(campaignId)
    return answer({"succeded": True}, 201)


@router.delete("/contacts/{contactId}/campaigns/{campaignId}", operation_id="remove-contact-from-campaign")
async def remove_from_campaign(request: Request, contactId: str, campaignId: str) -> JSONResponse:
    """Remove the contact from a campaign."""
    loc, _ = contact_in_scope(request, contactId)
    loc.campaigns_by_contact.get(contactId, set()).discard(campaignId)
    return answer({"succeded": True})


@router.post("/contacts/{contactId}/workflow/{workflowId}", operation_id="add-contact-to-workflow")
async def add_to_workflow(request: Request, contactId: str, workflowId: str) -> JSONResponse:
    """Enrol the contact in a workflow (optional ``eventStartTime``)."""
    loc, _ = contact_in_scope(request, contactId)
    body, _ = await parse_body(request, CreateWorkflowDto, required=False)
    loc.workflows_by_contact.setdefault(contactId, {})[workflowId] = body.eventStartTime
    return answer({"succeded": True})


@router.delete("/contacts/{contactId}/workflow/{workflowId}", operation_id="delete-contact-from-workflow")
async def remove_from_workflow(request: Request, contactId: str, workflowId: str) -> JSONResponse:
    """Remove the contact from a workflow."""
    loc, _ = contact_in_scope(request, contactId)
    await parse_body(request, CreateWorkflowDto, required=False)
    loc.workflows_by_contact.get(contactId, {}).pop(workflowId, None)
    return answer({"succeded": True})


# ---- one contact (registered last: its path would match the fixed paths above) -------------------
@router.get("/contacts/{contactId}", operation_id="get-contact")
async def get_contact(request: Request, contactId: str) -> JSONResponse:
    """One contact."""
    loc, contact = contact_in_scope(request, contactId)
    return answer({"contact": sandbox_state(request).store.render(loc, contact)})


@router.put("/contacts/{contactId}", operation_id="update-contact")
async def update_contact(request: Request, contactId: str) -> JSONResponse:
    """Update a contact (only the fields sent); ``dateUpdated`` moves to now."""
    loc, _ = contact_in_scope(request, contactId)
    _, data = await parse_body(request, UpdateContactDto)
    store = sandbox_state(request).store
    return answer({"succeded": True, "contact": store.render(loc, store.update_contact(contactId, data))})


@router.delete("/contacts/{contactId}", operation_id="delete-contact")
async def delete_contact(request: Request, contactId: str) -> JSONResponse:
    """Delete a contact with its tasks and notes."""
    contact_in_scope(request, contactId)
    sandbox_state(request).store.delete_contact(contactId)
    return answer({"succeded": True})
