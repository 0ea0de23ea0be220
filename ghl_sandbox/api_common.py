"""Helpers shared by the API route modules: the caller's token, location access, JSON answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .auth import TokenInfo
from .errors import APIError, location_access_error, not_found
from .state import SandboxState
from .store import LocationState


def sandbox_state(request: Request) -> SandboxState:
    """The running sandbox's state."""
    return request.app.state.sandbox


def caller(request: Request) -> TokenInfo:
    """The access token the gate accepted for this request."""
    return request.state.token


def token_location(request: Request, location_id: str | None = None) -> LocationState:
    """The caller's location; 403 if ``location_id`` names another one.

    Live mode: any other ``locationId`` is 403 "The token does not have access to this location."
    (an agency token never gets here: the gate answers 401). Strict spec mode: an unknown
    ``locationId`` is 400, another location's 403, and an agency token 403.
    """
    st = sandbox_state(request)
    info = caller(request)
    strict = st.config.strict_spec
    if info.location_id is None:
        raise APIError(403, "This route needs a Sub-Account (Location) token; exchange the agency token "
                            "with POST /oauth/locationToken")
    if location_id is not None and location_id != info.location_id:
        if strict:
            st.store.location(location_id)  # 400 for an unknown id
        raise location_access_error(strict)
    return st.store.location(info.location_id)


def contact_in_scope(request: Request, contact_id: str) -> tuple[LocationState, dict[str, Any]]:
    """The contact, if it lives in the caller's location.

    Otherwise: "not found" (live: 400 ``Contact not found``; strict spec: 404), or, in live mode,
    403 "The token does not have access to this location." when another location holds it.
    """
    st = sandbox_state(request)
    loc = token_location(request)
    contact = loc.contacts.get(contact_id)
    if contact is None:
        if not st.config.strict_spec and any(contact_id in other.contacts for other in st.store.locations.values()):
            raise location_access_error()
        raise not_found("Contact", contact_id)
    return loc, contact


def answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A JSON response."""
    return JSONResponse(body, status_code=status)
