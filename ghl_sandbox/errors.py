"""HighLevel-shaped errors: ``{"statusCode": N, "message": ..., "traceId": ...}``.

400/401/403/404/429/5xx carry a string ``message``; 422 validation errors carry a list of
strings plus ``"error": "Unprocessable Entity"`` (common-schemas.json ``UnprocessableDTO``).

The live API's own messages (``ghl-live-notes.md``) are kept verbatim here: ``SCOPE_MESSAGE``,
``AUTH_CLASS_MESSAGE``, ``LOCATION_ACCESS_MESSAGE``, and ``"<Kind> not found"`` (``NotFound.live``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_ERROR_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


SCOPE_MESSAGE = "The token is not authorized for this scope."
AUTH_CLASS_MESSAGE = ("This authClass type is not allowed to access this scope. "
                      "Please verify your IAM configuration if this is not the case.")
LOCATION_ACCESS_MESSAGE = "The token does not have access to this location."


class APIError(Exception):
    """An error answered to the client with HighLevel's error body.

    ``plain=True``: the body is exactly ``{"statusCode", "message"}`` (plus ``traceId``), as the
    live API sends its 400-not-found and 401/403 auth errors.
    """

    def __init__(self, status: int, message: str | list[str], *, plain: bool = False, **extra: Any) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.plain = plain
        self.extra = extra

    def body(self, trace_id: str | None = None) -> dict[str, Any]:
        """The JSON body of this error."""
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        if not self.plain and (isinstance(self.message, list) or self.status in (401, 403, 422)):
            body["error"] = _ERROR_NAMES.get(self.status, "Error")
        body.update(self.extra)
        if trace_id:
            body["traceId"] = trace_id
        return body


def unprocessable(*messages: str) -> APIError:
    """A 422 whose message list names each offending field."""
    return APIError(422, list(messages))


class NotFound(APIError):
    """A missing contact, task or note: 404 naming kind and id (strict spec mode, admin surface);
    the API in live mode answers ``live()`` instead: 400 ``"<Kind> not found"``."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(404, f"{kind} with id {object_id} not found")
        self.kind = kind
        self.object_id = object_id

    def live(self) -> APIError:
        """HighLevel's answer: ``{"statusCode": 400, "message": "Contact not found"}``."""
        return APIError(400, f"{self.kind} not found", plain=True)


def not_found(kind: str, object_id: str) -> NotFound:
    """The error for a missing object, naming its kind and id (see ``NotFound``)."""
    return NotFound(kind, object_id)


def scope_error(strict: bool, scope: str) -> APIError:
    """A token without the scope an operation needs: live 401, strict-spec 403 naming the scope."""
    if strict:
        return APIError(403, f"{SCOPE_MESSAGE} Missing scope: {scope}")
    return APIError(401, SCOPE_MESSAGE, plain=True)


def auth_class_error() -> APIError:
    """A token of the wrong class (agency token on a location endpoint, or the reverse): live 401."""
    return APIError(401, AUTH_CLASS_MESSAGE, plain=True)


def location_access_error(strict: bool = False) -> APIError:
    """A valid token used on another location's data: 403 (live: the bare ``{statusCode, message}``)."""
    return APIError(403, LOCATION_ACCESS_MESSAGE, plain=not strict)


_TYPE_WORDS = {
    "string_type": "a string",
    "bool_type": "a boolean value",
    "int_type": "an integer number",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "int_from_float": "an integer number",
}


def validation_messages(exc: ValidationError) -> list[str]:
    """NestJS/class-validator style messages (as HighLevel sends) naming each field."""
    messages: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        kind = err.get("type", "")
        if kind == "missing":
            messages.append(f"{loc} should not be empty")
        elif kind == "extra_forbidden":
            messages.append(f"property {loc} should not exist")
        elif kind in _TYPE_WORDS:
            messages.append(f"{loc} must be {_TYPE_WORDS[kind]}")
        elif kind in ("literal_error", "enum"):
            expected = err.get("ctx", {}).get("expected", "")
            messages.append(f"{loc} must be one of the following values: {expected}")
        else:
            msg = str(err.get("msg", "is invalid"))
            msg = msg.removeprefix("Value error, ")
            messages.append(msg if msg.startswith(loc) else f"{loc}: {msg}")
    return messages
