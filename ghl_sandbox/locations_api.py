"""The two locations.json operations the provider uses: task search and custom fields."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api_common import answer, sandbox_state, token_location
from .errors import unprocessable
from .gate import Operation
from .schemas import TaskSearchParamsDto, parse_body

TASK_SEARCH_MAX_LIMIT = 1000
CUSTOM_FIELD_MODELS = ("contact", "opportunity", "all")

OPERATIONS: dict[str, Operation] = {
    "task-search": Operation("task-search", ("locations/tasks.readonly",)),
    "get-custom-fields": Operation("get-custom-fields", ("locations/customFields.readonly",)),
}

router = APIRouter()


@router.post("/locations/{locationId}/tasks/search", operation_id="task-search")
async def task_search(request: Request, locationId: str) -> JSONResponse:
    """Tasks of the location filtered by ``contactId`` list, ``completed``, ``assignedTo``, ``query``
    (title/body text) and ``businessId``; paged by ``skip``/``limit`` (default 25, max 1000) in a
    stable order (creation time, then id). Each task carries ``contactId``.
    """
    st = sandbox_state(request)
    loc = token_location(request, locationId)
    body, _ = await parse_body(request, TaskSearchParamsDto, required=False)
    if not 1 <= body.limit <= TASK_SEARCH_MAX_LIMIT:
        raise unprocessable(f"limit must be between 1 and {TASK_SEARCH_MAX_LIMIT}")
    if body.skip < 0:
        raise unprocessable("skip must not be less than 0")
    if body.contactId is not None:
        task_ids = [t for cid in dict.fromkeys(body.contactId) for t in loc.tasks.by_contact.get(cid, [])]
    else:
        task_ids = list(loc.tasks.items)
    assigned = set(body.assignedTo or [])
    query = (body.query or "").lower()
    business_contacts = None
    if body.businessId:
        business_contacts = {cid for cid, c in loc.contacts.items() if c.get("businessId") == body.businessId}
    matches = []
    for tid in task_ids:
        task = loc.tasks.items[tid]
        if body.completed is not None and task["completed"] != body.completed:
            continue
        if assigned and task.get("assignedTo") not in assigned:
            continue
        if query and query not in f"{task.get('title') or ''} {task.get('body') or ''}".lower():
            continue
        if business_contacts is not None and task["contactId"] not in business_contacts:
            continue
        matches.append(tid)
    matches.sort(key=lambda t: (loc.tasks.times[t][0], t))
    page = matches[body.skip:body.skip + body.limit]
    return answer({"tasks": [st.store.render_task(loc, loc.tasks.items[t]) for t in page]})


@router.get("/locations/{locationId}/customFields", operation_id="get-custom-fields")
async def get_custom_fields(request: Request, locationId: str) -> JSONResponse:
    """The location's custom fields; ``model`` = contact | opportunity | all (default all)."""
    loc = token_location(request, locationId)
    model = request.query_params.get("model") or "all"
    if model not in CUSTOM_FIELD_MODELS:
        raise unprocessable(f"model must be one of the following values: {', '.join(CUSTOM_FIELD_MODELS)}")
    fields = [dict(cf) for cf in loc.custom_fields if model == "all" or cf["model"] == model]
    return answer({"customFields": fields})
