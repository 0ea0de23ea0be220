"""The admin surface under ``/_sandbox/``: kept apart from the API, answered to loopback clients only.

No auth, no ``Version`` header, no rate limit, no faults, no latency, not counted. Routes (JSON):

====================================================  ==============================================
``GET  /_sandbox/info``                               location id, private token, company id, locations
``GET  /_sandbox/dump?locationId=&shape=``            ``{contacts, tasks, notes, customFields}`` (API-shaped)
``POST /_sandbox/contacts``                           create a contact as a CRM user would (``locationId`` optional)
``PUT|DELETE /_sandbox/contacts/{id}``                update / delete a contact
``POST /_sandbox/contacts/{id}/tasks``                create a task (title, dueDate, completed default)
``PUT|DELETE /_sandbox/contacts/{id}/tasks/{tid}``    update / delete a task
``POST /_sandbox/contacts/{id}/notes``                create a note
``PUT|DELETE /_sandbox/contacts/{id}/notes/{nid}``    update / delete a note
``GET  /_sandbox/counters``, ``POST /_sandbox/counters/reset``
``GET|POST /_sandbox/config``                         read / change ``SandboxConfig`` fields at run time
``POST /_sandbox/tokens``                             mint a token ``{scopes, missing_scopes, lifetime_s, location_id}``
``POST /_sandbox/oauth/clients``                      register an OAuth app ``{scopes}``
``POST /_sandbox/oauth/authorize``                    code for ``{client_id, location_id, user_type, company_id}``
``POST /_sandbox/oauth/install``                      app + consent + code exchange in one (never faulted)
``GET  /_sandbox/oauth/apps/{app_id}/installations``   the locations the app is installed on
``PUT|DELETE /_sandbox/oauth/apps/{app_id}/installations/{location_id}``  install / uninstall the app there
``POST /_sandbox/locations``                          add a location ``{contacts}``
``PUT  /_sandbox/locations/{id}/settings``            per-location ``{allow_duplicates}``
``POST /_sandbox/reset``                              fresh seeded state ``{seed, contacts}``
``GET  /_sandbox/webhooks/keys``                      public PEMs of the webhook signatures
``GET|POST|DELETE /_sandbox/webhooks/subscriptions``  list / add / remove ``{url, locationId}``
``GET|DELETE /_sandbox/webhooks/deliveries``          delivery log (``?since=``) / clear it
``GET  /_sandbox/webhooks/events``                    events emitted (``?since=``)
====================================================  ==============================================

Admin task/note changes follow the same quirks as the API (they leave the contact's
``dateUpdated`` alone unless ``activity_touches_contact``); contact changes move ``dateUpdated``.
Contacts are written like through the API (``dateOfBirth`` in any of the spec's formats, custom
field values as ``value``/``fieldValue``/``field_value``, by ``id`` or ``key``), except that a
``dateOfBirth`` that is not a date is stored as typed (bad data a CRM user can leave behind).
Missing objects answer 404 here whatever the mode; the dump's contacts come in the search shape
by default (``shape=get`` for the GET shape), the truth a sync target is compared with.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from .api_common import answer, sandbox_state
from .auth import check_scopes, private_token_for
from .dates import iso_from_ms, now_ms
from .errors import APIError
from .gate import ADMIN_PREFIX
from .installs import app_id_of
from .schemas import (
    AdminContactDto,
    CreateTaskParams,
    NotesDTO,
    UpdateNoteDTO,
    UpdateTaskBody,
    parse_body,
    read_json,
    validate_data,
)
from .state import SandboxState

router = APIRouter(prefix=ADMIN_PREFIX)  # loopback-only: enforced by ApiGate for everything under the prefix


async def _object(request: Request) -> dict[str, Any]:
    data = await read_json(request, required=False)
    if not isinstance(data, dict):
        raise APIError(422, ["body must be a JSON object"])
    return data


def _state(request: Request) -> SandboxState:
    return sandbox_state(request)


@router.get("/info")
async def info(request: Request) -> JSONResponse:
    """Identifiers of the running sandbox."""
    return answer(_state(request).info())


@router.get("/dump")
async def dump(request: Request) -> JSONResponse:
    """Every contact, task, note and custom field of a location (default: the primary one); contacts
    in ``shape`` ``search`` (default: as ``POST /contacts/search`` shows them) or ``get``."""
    q = request.query_params
    return answer(_state(request).store.dump(q.get("locationId"), q.get("shape") or "search"))


@router.post("/contacts")
async def create_contact(request: Request) -> JSONResponse:
    """Create a contact like a CRM user (no duplicate check); fields as in CreateContactDto."""
    st = _state(request)
    data = await _object(request)
    loc = st.store.location(data.pop("locationId", None) or st.store.primary_location_id)
    _, fields = validate_data(AdminContactDto, data)
    contact = st.store.create_contact(loc, fields, check_duplicates=False, lenient=True)
    return answer({"contact": st.store.render(loc, contact)}, 201)


@router.put("/contacts/{contact_id}")
async def update_contact(request: Request, contact_id: str) -> JSONResponse:
    """Update a contact (moves ``dateUpdated``)."""
    st = _state(request)
    _, fields = await parse_body(request, AdminContactDto, required=False)
    loc = st.store.contact_location(contact_id)
    if not fields:
        st.store.touch(loc, contact_id)
        return answer({"contact": st.store.render(loc, loc.contacts[contact_id])})
    # a CRM user may create duplicates by hand
    contact = st.store.update_contact(contact_id, fields, check_duplicates=False, lenient=True)
    return answer({"contact": st.store.render(loc, contact)})


@router.delete("/contacts/{contact_id}")
async def delete_contact(request: Request, contact_id: str) -> JSONResponse:
    """Delete a contact with its tasks and notes."""
    _state(request).store.delete_contact(contact_id)
    return answer({"succeded": True})


@router.post("/contacts/{contact_id}/tasks")
async def create_task(request: Request, contact_id: str) -> JSONResponse:
    """Create a task; ``title``, ``dueDate`` (tomorrow) and ``completed`` (false) have defaults."""
    st = _state(request)
    data = {"title": "Sandbox task", "dueDate": iso_from_ms(now_ms() + int(timedelta(days=1).total_seconds() * 1000)),
            "completed": False, **(await _object(request))}
    _, fields = validate_data(CreateTaskParams, data)
    return answer({"task": st.store.create_task(contact_id, fields)}, 201)


@router.put("/contacts/{contact_id}/tasks/{task_id}")
async def update_task(request: Request, contact_id: str, task_id: str) -> JSONResponse:
    """Update a task."""
    _, fields = await parse_body(request, UpdateTaskBody, required=False)
    return answer({"task": _state(request).store.update_task(contact_id, task_id, fields)})


@router.delete("/contacts/{contact_id}/tasks/{task_id}")
async def delete_task(request: Request, contact_id: str, task_id: str) -> JSONResponse:
    """Delete a task."""
    _state(request).store.delete_activity("tasks", contact_id, task_id)
    return answer({"succeded": True})


@router.post("/contacts/{contact_id}/notes")
async def create_note(request: Request, contact_id: str) -> JSONResponse:
    """Create a note (``body`` defaults to a placeholder text)."""
    data = {"body": "Sandbox note", **(await _object(request))}
    _, fields = validate_data(NotesDTO, data)
    return answer({"note": _state(request).store.create_note(contact_id, fields)}, 201)


@router.put("/contacts/{contact_id}/notes/{note_id}")
async def update_note(request: Request, contact_id: str, note_id: str) -> JSONResponse:
    """Update a note."""
    _, fields = await parse_body(request, UpdateNoteDTO, required=False)
    return answer({"note": _state(request).store.update_note(contact_id, note_id, fields)})


@router.delete("/contacts/{contact_id}/notes/{note_id}")
async def delete_note(request: Request, contact_id: str, note_id: str) -> JSONResponse:
    """Delete a note."""
    _state(request).store.delete_activity("notes", contact_id, note_id)
    return answer({"succeded": True})


def _counters(st: SandboxState) -> dict[str, Any]:
    return {**st.counters.as_dict(), "oauth": st.tokens.stats_dict(), "limits": st.limiter.stats()}


@router.get("/counters")
async def counters(request: Request) -> JSONResponse:
    """API request counters, faults by kind, answers lost after the request was applied, the
    OAuth accounting (``oauth``: tokens issued, grants, reused refresh tokens ...) and the rate-limit
    usage per (integration, location) (``limits``: admitted, throttled, peak per window)."""
    return answer(_counters(_state(request)))


@router.post("/counters/reset")
async def reset_counters(request: Request) -> JSONResponse:
    """Zero the counters (the OAuth accounting too; spent refresh tokens stay known as spent)."""
    st = _state(request)
    st.counters = type(st.counters)()
    st.tokens.stats.clear()
    st.limiter.reset_stats()
    return answer(_counters(st))


@router.get("/config")
async def get_config(request: Request) -> JSONResponse:
    """The current configuration."""
    return answer(_state(request).config.to_dict())


@router.post("/config")
async def configure(request: Request) -> JSONResponse:
    """Change configuration fields; answers the whole new configuration."""
    st = _state(request)
    try:
        cfg = st.configure(**(await _object(request)))
    except (ValueError, TypeError) as exc:
        raise APIError(422, [str(exc)]) from None
    return answer(cfg.to_dict())


@router.post("/tokens")
async def issue_token(request: Request) -> JSONResponse:
    """Mint an access token: ``scopes`` (default: the configured default scopes, every scope unless
    ``token_scopes``/``missing_scopes`` say otherwise) minus ``missing_scopes``, ``lifetime_s``,
    ``location_id`` (default primary); ``user_type: "Company"`` mints an agency token instead (no
    location: an agency's Private Integration token, which cannot mint location tokens)."""
    st = _state(request)
    data = await _object(request)
    user_type = data.get("user_type") or "Location"
    if user_type not in ("Location", "Company"):
        raise APIError(422, ["user_type must be one of the following values: Location, Company"])
    location_id = None
    if user_type == "Location":
        location_id = data.get("location_id") or st.store.primary_location_id
        st.store.location(location_id)
    lifetime = data.get("lifetime_s")
    scopes = check_scopes(data.get("scopes"), st.config.default_scopes(), data.get("missing_scopes"))
    token, info = st.tokens.issue(company_id=st.store.company_id, location_id=location_id, scopes=scopes,
                                  lifetime_s=float(lifetime) if lifetime is not None else None,
                                  integration_id=f"issued:{location_id or 'agency'}", user_type=user_type)
    return answer({"access_token": token, "expires_at": info.expires_at, "scopes": sorted(info.scopes),
                   "locationId": location_id})


@router.post("/oauth/clients")
async def create_oauth_client(request: Request) -> JSONResponse:
    """Register an OAuth app with ``scopes`` (default: the configured default scopes) minus ``missing_scopes``."""
    st = _state(request)
    data = await _object(request)
    client = st.tokens.create_client(check_scopes(data.get("scopes"), st.config.default_scopes(),
                                                  data.get("missing_scopes")))
    return answer({"client_id": client.client_id, "client_secret": client.client_secret,
                   "scopes": sorted(client.scopes)})


@router.post("/oauth/authorize")
async def authorize(request: Request) -> JSONResponse:
    """The consent step: an authorization code for ``client_id`` (Location or Company install)."""
    st = _state(request)
    data = await _object(request)
    user_type = data.get("user_type") or "Location"
    if user_type not in ("Location", "Company"):
        raise APIError(422, ["user_type must be one of the following values: Location, Company"])
    company_id = data.get("company_id") or st.store.company_id
    if company_id != st.store.company_id:
        raise APIError(400, f"company_id {company_id} is not the sandbox's company ({st.store.company_id})")
    location_id = None
    if user_type == "Location":
        location_id = data.get("location_id") or st.store.primary_location_id
        st.store.location(location_id)
    code = st.tokens.authorize(str(data.get("client_id") or ""), user_type=user_type, company_id=company_id,
                               location_id=location_id, approved_locations=list(st.store.locations))
    return answer({"code": code})


@router.post("/oauth/install")
async def install_oauth_app(request: Request) -> JSONResponse:
    """A marketplace install in one step, never faulted or counted as an API request: an OAuth app
    with ``scopes`` (minus ``missing_scopes``), its consent for ``location_id`` (``user_type``
    ``Location``, default) or the agency (``Company``: installed on ``location_ids``, default every
    location, and on locations added later unless ``install_to_future_locations`` is false), and
    the code exchanged for tokens. Answers the token endpoint's body plus ``client_id``,
    ``client_secret`` and ``app_id``."""
    st = _state(request)
    data = await _object(request)
    user_type = data.get("user_type") or "Location"
    if user_type not in ("Location", "Company"):
        raise APIError(422, ["user_type must be one of the following values: Location, Company"])
    client = st.tokens.create_client(check_scopes(data.get("scopes"), st.config.default_scopes(),
                                                  data.get("missing_scopes")))
    location_id = None
    if user_type == "Location":
        location_id = data.get("location_id") or st.store.primary_location_id
        st.store.location(location_id)
    approved = list(st.store.locations)
    if user_type == "Company" and data.get("location_ids") is not None:
        approved = [str(x) for x in data["location_ids"]]
        for loc_id in approved:
            st.store.location(loc_id)
    code = st.tokens.authorize(client.client_id, user_type=user_type, company_id=st.store.company_id,
                               location_id=location_id, approved_locations=approved)
    tokens = st.tokens.exchange({"client_id": client.client_id, "client_secret": client.client_secret,
                                 "grant_type": "authorization_code", "code": code, "user_type": user_type})
    app_id = app_id_of(client.client_id)
    if user_type == "Company" and data.get("install_to_future_locations") is False:
        st.tokens.installs.install(app_id, st.store.company_id, [], install_to_future_locations=False)
        tokens["installToFutureLocations"] = False
    return answer({"client_id": client.client_id, "client_secret": client.client_secret, "app_id": app_id, **tokens})


def _installations(st: SandboxState, app_id: str) -> dict[str, Any]:
    registry = st.tokens.installs
    app = registry.apps.get(app_id)
    return {"app_id": app_id, "installToFutureLocations": registry.future_locations(app_id),
            "locations": dict(app.locations) if app else {}}


@router.get("/oauth/apps/{app_id}/installations")
async def installations(request: Request, app_id: str) -> JSONResponse:
    """The locations the app (app id or client id) is installed on: ``{app_id,
    installToFutureLocations, locations: {location id: installedAt}}``."""
    return answer(_installations(_state(request), app_id_of(app_id)))


@router.put("/oauth/apps/{app_id}/installations/{location_id}")
async def install_app(request: Request, app_id: str, location_id: str) -> JSONResponse:
    """Install the app (app id or client id) on a location of the company (a location admin's
    marketplace install); nothing changes where it is installed already."""
    st = _state(request)
    st.store.location(location_id)
    app_id = app_id_of(app_id)
    st.tokens.installs.install(app_id, st.store.company_id, [location_id])
    return answer(_installations(st, app_id))


@router.delete("/oauth/apps/{app_id}/installations/{location_id}")
async def uninstall_app(request: Request, app_id: str, location_id: str) -> JSONResponse:
    """Uninstall the app from a location: its location tokens there stop working (401), and
    ``POST /oauth/locationToken`` refuses the location (400). 404 when it was not installed."""
    st = _state(request)
    app_id = app_id_of(app_id)
    if not st.tokens.uninstall(app_id, location_id):
        raise APIError(404, f"app {app_id} is not installed on location {location_id}")
    return answer(_installations(st, app_id))


@router.post("/locations")
async def add_location(request: Request) -> JSONResponse:
    """Add a seeded location with ``contacts`` contacts; answers its id and private token."""
    st = _state(request)
    contacts = int((await _object(request)).get("contacts") or 0)
    if contacts < 0:
        raise APIError(422, ["contacts must not be less than 0"])
    loc = st.add_location(contacts)
    return answer({"locationId": loc.location_id, "token": private_token_for(st.config.seed, loc.location_id)}, 201)


@router.put("/locations/{location_id}/settings")
async def location_settings(request: Request, location_id: str) -> JSONResponse:
    """Per-location settings: ``allow_duplicates`` (true/false, or null for the config default)."""
    st = _state(request)
    loc = st.store.location(location_id)
    data = await _object(request)
    if "allow_duplicates" in data:
        value = data["allow_duplicates"]
        if value is not None and not isinstance(value, bool):
            raise APIError(422, ["allow_duplicates must be a boolean value or null"])
        loc.allow_duplicates = value
    return answer({"locationId": loc.location_id, "allow_duplicates": st.store.allow_duplicates(loc)})


@router.post("/reset")
async def reset(request: Request) -> JSONResponse:
    """Fresh seeded state and initial config (optionally another ``seed``/``contacts``)."""
    st = _state(request)
    data = await _object(request)
    try:
        st.reset(seed=data.get("seed"), contacts=data.get("contacts"))
    except (ValueError, TypeError) as exc:
        raise APIError(422, [str(exc)]) from None
    return answer(st.info())


# ---- webhooks (``webhooks.py``) -------------------------------------------------------------------
@router.get("/webhooks/keys")
async def webhook_keys(request: Request) -> JSONResponse:
    """Public keys of the sandbox's webhook signatures: ``{"rsa_public_key_pem",
    "ed25519_public_key_pem"}`` (SubjectPublicKeyInfo PEM), to verify ``x-wh-signature``
    (RSA-SHA256 PKCS#1 v1.5) and ``x-ghl-signature`` (Ed25519) over the exact body bytes."""
    outbox = _state(request).webhooks
    try:
        return answer(await asyncio.to_thread(outbox.public_keys))  # the first call makes the keys
    except ImportError as exc:
        raise APIError(500, f"webhook signing needs the cryptography package ({exc}); "
                            "pip install 'airflow-provider-contacts[sandbox]'") from None


@router.get("/webhooks/subscriptions")
async def webhook_subscriptions(request: Request) -> JSONResponse:
    """Where events go: ``{"subscriptions": [{"url", "locationId", "source"}]}`` (``source``:
    ``config`` for ``webhook_urls``, ``runtime`` for those added here)."""
    return answer({"subscriptions": [s.as_dict() for s in _state(request).webhooks.subscriptions()]})


@router.post("/webhooks/subscriptions")
async def add_webhook_subscription(request: Request) -> JSONResponse:
    """Subscribe ``{"url": <the receiver's absolute URL>, "locationId": optional}`` to every event
    (of that location only, when given); removed again by ``DELETE`` or ``reset``. Answers the
    subscription (201)."""
    st = _state(request)
    data = await _object(request)
    location_id = data.get("locationId")
    if location_id is not None:
        st.store.location(location_id)
    try:
        sub = st.webhooks.subscribe(data.get("url"), location_id)
    except ValueError as exc:
        raise APIError(422, [str(exc)]) from None
    return answer(sub.as_dict(), 201)


@router.delete("/webhooks/subscriptions")
async def remove_webhook_subscription(request: Request) -> JSONResponse:
    """Unsubscribe ``{"url"}`` (or ``?url=``), added at run time; 404 if it was not subscribed."""
    data = await _object(request)
    url = data.get("url") or request.query_params.get("url")
    if not url:
        raise APIError(422, ["url should not be empty"])
    try:
        removed = _state(request).webhooks.unsubscribe(url)
    except ValueError as exc:
        raise APIError(422, [str(exc)]) from None
    if not removed:
        raise APIError(404, f"no webhook subscription for {url}")
    return answer({"succeded": True})


@router.get("/webhooks/deliveries")
async def webhook_deliveries(request: Request) -> JSONResponse:
    """The delivery log: ``{"deliveries": [{seq, webhookId, event, locationId, id, url, attempt,
    duplicate, status, error, outcome, retry_in_s, time, elapsed_s}], "pending", "emitted",
    "by_outcome", "last_seq"}``; ``?since=<seq>``, ``?event=<type>``, ``?webhookId=`` filter it."""
    q = request.query_params
    try:
        since = int(q.get("since") or 0)
    except ValueError:
        raise APIError(422, ["since must be a whole number (a seq of the log)"]) from None
    return answer(_state(request).webhooks.deliveries(since, q.get("event") or None, q.get("webhookId") or None))


@router.delete("/webhooks/deliveries")
async def clear_webhook_deliveries(request: Request) -> JSONResponse:
    """Forget the delivery and event logs and their totals (deliveries under way go on)."""
    _state(request).webhooks.clear_log()
    return answer({"succeded": True})


@router.get("/webhooks/events")
async def webhook_events(request: Request) -> JSONResponse:
    """Events emitted, whatever became of their deliveries: ``{"events": [{seq, webhookId, type,
    locationId, id, timestamp, subscriptions}]}``; ``?since=<seq>``."""
    try:
        since = int(request.query_params.get("since") or 0)
    except ValueError:
        raise APIError(422, ["since must be a whole number (a seq of the event log)"]) from None
    return answer({"events": _state(request).webhooks.events(since)})
