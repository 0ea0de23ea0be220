"""OAuth 2.0 operations of oauth.json: ``POST /oauth/token``, ``POST /oauth/locationToken`` and
``GET /oauth/installedLocations``.

The two POSTs take ``application/x-www-form-urlencoded`` bodies (JSON is accepted too).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api_common import answer, caller, sandbox_state
from .errors import APIError, auth_class_error
from .installs import app_id_of, location_address, version_id_of
from .gate import Operation
from .schemas import read_json

OPERATIONS: dict[str, Operation] = {
    "get-access-token": Operation("get-access-token", (), auth=False, version=False, location=False),
    "get-location-access-token": Operation("get-location-access-token", ("oauth.write",), location=False),
    "get-installed-location": Operation("get-installed-location", ("oauth.readonly",), location=False),
}

#: Largest ``limit`` of ``GET /oauth/installedLocations`` the sandbox grants (a larger one is cut
#: to it, silently: a client must page by what it got, not by what it asked for).
INSTALLED_LOCATIONS_MAX_LIMIT = 100

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


def _query_int(value: str | None, name: str, default: int, low: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise APIError(422, [f"{name} must be a number string"]) from None
    if number < low:
        raise APIError(422, [f"{name} must not be less than {low}"])
    return number


def _query_bool(value: str | None, name: str) -> bool | None:
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise APIError(422, [f"{name} must be a boolean value"])
    return text == "true"


@router.get("/oauth/installedLocations", operation_id="get-installed-location")
async def get_installed_locations(request: Request) -> JSONResponse:
    """The company's locations and whether ``appId`` is installed on each (agency token, scope
    ``oauth.readonly``).

    Query: ``companyId`` and ``appId`` (required; the token's company and app; ``appId`` may also
    be the app's client id), ``skip`` (default 0), ``limit`` (default 20, at most
    :data:`INSTALLED_LOCATIONS_MAX_LIMIT`), ``isInstalled`` (``true``: installed only; ``false``:
    not installed only), ``query`` (case-insensitive part of the name), ``locationId``,
    ``versionId``, ``onTrial`` (no sandbox install is a trial), ``planId`` (no sandbox install has a
    plan). Answers ``{locations: [{_id, name, address, isInstalled, versionId?, installedAt?}],
    count, installToFutureLocations}``, ``count`` being how many locations match the filters; the
    order is the company's (creation order). A location token answers 401 (live: the authClass
    message); another company or app 400.
    """
    st = sandbox_state(request)
    strict = st.config.strict_spec
    info = caller(request)
    if info.user_type != "Company":
        st.counters.status_401 += 1
        if strict:
            raise APIError(401, "This route needs an agency (Company) access token; get one with "
                                "user_type=Company from POST /oauth/token")
        raise auth_class_error()
    q = request.query_params
    missing = [n for n in ("companyId", "appId") if not q.get(n)]
    if missing:
        raise APIError(422, [f"{n} should not be empty" for n in missing])
    company_id = q["companyId"]
    app_id = app_id_of(q["appId"])
    if company_id != info.company_id:
        raise APIError(400, f"companyId {company_id} does not match the token's company")
    token_app = app_id_of(info.integration_id.removeprefix("app:"))
    if info.integration_id.startswith("app:") and app_id != token_app:
        raise APIError(400, f"appId {app_id} is not the app this token was issued to")
    skip = _query_int(q.get("skip"), "skip", 0, 0)
    limit = min(_query_int(q.get("limit"), "limit", 20, 1), INSTALLED_LOCATIONS_MAX_LIMIT)
    installed = _query_bool(q.get("isInstalled"), "isInstalled")
    on_trial = _query_bool(q.get("onTrial"), "onTrial")
    name_query = (q.get("query") or "").strip().lower()
    only_location = q.get("locationId") or None
    version_id = q.get("versionId") or None
    plan_id = q.get("planId") or None
    registry = st.tokens.installs
    matches = []
    for location_id, loc in st.store.locations.items():
        if loc.company_id != company_id or (only_location and location_id != only_location):
            continue
        if name_query and name_query not in loc.name.lower():
            continue
        installed_at = registry.installed_at(app_id, location_id)
        is_installed = installed_at is not None
        if installed is not None and is_installed != installed:
            continue
        if (version_id or on_trial or plan_id) and not (
            is_installed and not on_trial and not plan_id and version_id in (None, version_id_of(app_id))
        ):
            continue
        item: dict[str, Any] = {"_id": location_id, "name": loc.name, "address": location_address(location_id),
                                "isInstalled": is_installed}
        if is_installed:
            item["versionId"] = version_id_of(app_id)
            item["installedAt"] = installed_at
        matches.append(item)
    return answer({"locations": matches[skip:skip + limit], "count": len(matches),
                   "installToFutureLocations": registry.future_locations(app_id)})
