"""OAuth 2.0 operations of oauth.json: ``POST /oauth/token`` and ``POST /oauth/locationToken``.

Both take ``application/x-www-form-urlencoded`` bodies (JSON is accepted too).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api_common import answer, caller, sandbox_state
from .errors import APIError, auth_class_error
from .gate import Operation
from .schemas import read_json

OPERATIONS: dict[str, Operation] = {
    "get-access-token": Operation("get-access-token", (), auth=False, version=False, location=False),
    "get-location-access-token": Operation("get-location-access-token", ("oauth.write",), location=False),
}

router = APIRouter()


async def _form(request: Request) -> dict[str, str]:
    """The form fields (url-encoded, or a JSON object)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        data: Any = await read_json(request)
        if not isinstance(data, dict):
            raise APIError(422, ["body must be an object"])
        return {k: str(v) for k, v in data.items() if v is not None}
    raw = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


@router.post("/oauth/token", operation_id="get-access-token")
async def get_access_token(request: Request) -> JSONResponse:
    """Exchange an authorization code or a refresh token (which is then spent) for tokens."""
    return answer(sandbox_state(request).tokens.exchange(await _form(request)))


@router.post("/oauth/locationToken", operation_id="get-location-access-token")
async def get_location_access_token(request: Request) -> JSONResponse:
    """An agency (Company) token's location token for ``companyId`` + ``locationId``.

    Live mode answers 201 (as HighLevel has been seen to) and refuses a location token with the
    live 401 "This authClass type is not allowed ..."; strict spec mode answers 200.
    """
    st = sandbox_state(request)
    strict = st.config.strict_spec
    info = caller(request)
    if info.user_type != "Company" and not strict:
        st.counters.status_401 += 1
        raise auth_class_error()
    form = await _form(request)
    missing = [n for n in ("companyId", "locationId") if not form.get(n)]
    if missing:
        raise APIError(422, [f"{n} should not be empty" for n in missing])
    locations = [lid for lid, loc in st.store.locations.items() if loc.company_id == form["companyId"]]
    body = st.tokens.location_token(info, form["companyId"], form["locationId"], locations)
    return answer(body, 200 if strict else 201)
