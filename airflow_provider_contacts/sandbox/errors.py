"""HighLevel-shaped errors: ``{"statusCode": N, "message": ..., "traceId": ...}``.

400/401/403/404/429/5xx carry a string ``message``; 422 validation errors carry a list of
strings plus ``"error": "Unprocessable Entity"`` (common-schemas.json ``UnprocessableDTO``).
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


class APIError(Exception):
    """An error answered to the client with HighLevel's error body."""

    def __init__(self, status: int, message: str | list[str], **extra: Any) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.extra = extra

    def body(self, trace_id: str | None = None) -> dict[str, Any]:
        """The JSON body of this error."""
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        if isinstance(self.message, list) or self.status in (401, 403, 422):
            body["error"] = _ERROR_NAMES.get(self.status, "Error")
        body.update(self.extra)
        if trace_id:
            body["traceId"] = trace_id
        return body


def unprocessable(*messages: str) -> APIError:
    """A 422 whose message list names each offending field."""
    return APIError(422, list(messages))


def not_found(kind: str, object_id: str) -> APIError:
    """404 for a missing object, naming its kind and id."""
    return APIError(404, f"{kind} with id {object_id} not found")


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
