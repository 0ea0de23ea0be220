"""Exception hierarchy of the HighLevel Contacts provider.

Every error raised by the hook derives from :class:`GHLError`. Errors that come from an HTTP answer
of the API are :class:`GHLAPIError` and carry:

* ``status`` - the HTTP status code (``None`` when the request never got an answer or when the
  error was raised locally, before any request, e.g. a body that fails validation);
* ``message`` - the API's own message (``message``/``error`` of the JSON body), or ours;
* ``trace_id`` - HighLevel's ``traceId`` when the answer carried one (quote it to HighLevel support);
* ``operation`` - the operation that failed (contacts.json ``operationId`` or the hook method name).

Messages never contain access tokens, refresh tokens or client secrets, nor the password of a URL:
every message of every error here goes through
:func:`~airflow_provider_contacts.hooks.urls.redact_url_secrets` (``http://user:pass@host`` ->
``http://user:***@host``).

Hierarchy::

    GHLError
    +-- GHLConfigError            bad or missing connection / hook configuration
    +-- GHLDailyLimitError        stopped before HighLevel's daily request limit (reserve reached)
    +-- GHLPaginationError        the API repeated a cursor; stopped instead of looping forever
    +-- GHLAPIError               an HTTP answer (or no answer) from the API
        +-- GHLAuthError          401 / 403 (and OAuth refresh failures)
        |   +-- GHLScopeError     401 "not authorized for this scope" / wrong token class: no refresh cures it
        |   +-- GHLLocationAccessError  403 "does not have access to this location"
        +-- GHLNotFoundError      404, and 400 whose message says "not found" (ghl-live-notes.md)
        +-- GHLRateLimitError     429 still returned after the retries
        +-- GHLValidationError    400 / 422 from the API, or a request body rejected before sending
        +-- GHLServerError        5xx still returned after the retries
        +-- GHLTransportError     connection errors, timeouts, broken bodies after the retries
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_contacts.hooks.urls import redact_url_secrets


class GHLError(Exception):
    """Base class of every error raised by this provider.

    Its text never shows a URL's password (arguments pass through ``redact_url_secrets``).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact_url_secrets(arg) for arg in args))


class GHLConfigError(GHLError):
    """The connection or the hook is configured wrongly (the message names the field and the fix)."""


class GHLDailyLimitError(GHLError):
    """Raised before a request that would eat into the configured reserve of the daily limit."""


class GHLPaginationError(GHLError):
    """The API returned a cursor it had already returned; iterating further would loop forever."""


class GHLAPIError(GHLError):
    """An error answer (or no answer) from the HighLevel API.

    :param message: the API's message, or a description of what went wrong.
    :param status: HTTP status code, ``None`` without an HTTP answer.
    :param trace_id: HighLevel ``traceId`` from the error body, when present.
    :param operation: contacts.json ``operationId`` (or hook method name) of the failed call.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        trace_id: str | None = None,
        operation: str | None = None,
    ) -> None:
        self.message = redact_url_secrets(message)
        self.status = status
        self.trace_id = trace_id
        self.operation = operation
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.operation:
            parts.append(f"{self.operation}:")
        if self.status is not None:
            parts.append(f"HTTP {self.status}:")
        parts.append(self.message)
        if self.trace_id:
            parts.append(f"(traceId {self.trace_id})")
        return " ".join(parts)

    def with_message(self, message: str) -> GHLAPIError:
        """The same error (class, status, traceId, operation) with another message."""
        return type(self)(message, status=self.status, trace_id=self.trace_id, operation=self.operation)

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword arguments through pickling (XCom, multiprocessing)
        return (
            _rebuild_api_error,
            (type(self), self.message, self.status, self.trace_id, self.operation),
        )


def explain(message: str, explanation: str) -> str:
    """HighLevel's ``message`` followed by the hook's ``explanation``: as the next sentence when the
    message ends one (``"... this location. The token ..."``), else after a colon."""
    message = message.rstrip()
    if message.endswith((".", "!", "?")):
        return f"{message} {explanation[:1].upper()}{explanation[1:]}"
    return f"{message}: {explanation}"


def _rebuild_api_error(
    cls: type[GHLAPIError], message: str, status: int | None, trace_id: str | None, operation: str | None
) -> GHLAPIError:
    return cls(message, status=status, trace_id=trace_id, operation=operation)


class GHLAuthError(GHLAPIError):
    """401 (token invalid or expired and not refreshable) or 403 (token lacks a scope)."""


class GHLScopeError(GHLAuthError):
    """401 for a token that lacks the scope an operation needs (``The token is not authorized for
    this scope.``) or is of the wrong class (``This authClass type is not allowed to access this
    scope``: an agency token on a location endpoint). A token refresh cannot cure it, so none is
    spent. ``scope`` names the scope the operation needs (None when unknown).
    Source: ghl-live-notes.md, "Statuses and error bodies".
    """

    def __init__(self, message: str, *, scope: str | None = None, **kwargs: Any) -> None:
        self.scope = scope
        super().__init__(message, **kwargs)

    def with_message(self, message: str) -> GHLAPIError:
        return type(self)(message, scope=self.scope, status=self.status, trace_id=self.trace_id, operation=self.operation)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_scope_error, (type(self), self.message, self.status, self.trace_id, self.operation, self.scope))


def _rebuild_scope_error(
    cls: type[GHLScopeError], message: str, status: int | None, trace_id: str | None, operation: str | None,
    scope: str | None,
) -> GHLScopeError:
    return cls(message, scope=scope, status=status, trace_id=trace_id, operation=operation)


class GHLLocationAccessError(GHLAuthError):
    """403 ``The token does not have access to this location.``: a valid token used on another
    location's data (check the connection's ``location_id``). Source: ghl-live-notes.md."""


class GHLNotFoundError(GHLAPIError):
    """The contact, task, note ... does not exist (or not in this location): a 404, or the 400
    whose message says it was not found (``Contact not found``), which is what the live API and
    contacts.json (which lists no 404) give. ``status`` keeps the status that came back."""


class GHLRateLimitError(GHLAPIError):
    """429 still returned after the configured retries."""


class GHLValidationError(GHLAPIError):
    """400/422 from the API, or a request body rejected locally before any request was sent."""


class GHLServerError(GHLAPIError):
    """5xx still returned after the configured retries."""


class GHLTransportError(GHLAPIError):
    """No usable answer: connection error, timeout or truncated body, after the retries."""


_NOT_FOUND = re.compile(r"\bnot\s+found\b|\bdoes\s+not\s+exist\b|\bno\s+\w+\s+found\b", re.IGNORECASE)
_SCOPE_401 = re.compile(r"not authorized for this scope|authClass type is not allowed", re.IGNORECASE)
_LOCATION_403 = re.compile(r"does not have access to this location", re.IGNORECASE)


def is_not_found_message(message: str | None) -> bool:
    """Whether an error message says the record does not exist (``Contact not found``,
    ``Task not found``, ``... does not exist``): how the live API answers an unknown id with 400."""
    return bool(message) and bool(_NOT_FOUND.search(str(message)))


def is_scope_message(message: str | None) -> bool:
    """Whether a 401's message says the token lacks a scope or is of the wrong class (not expired)."""
    return bool(message) and bool(_SCOPE_401.search(str(message)))


def is_location_access_message(message: str | None) -> bool:
    """Whether a 403's message says the token has no access to the location."""
    return bool(message) and bool(_LOCATION_403.search(str(message)))


def error_class_for_status(status: int, message: str | None = None) -> type[GHLAPIError]:
    """Map an HTTP status code (and the API's message, where the live API overloads a status)
    to the matching :class:`GHLAPIError` subclass: 400/404 not found -> :class:`GHLNotFoundError`,
    401 scope -> :class:`GHLScopeError`, 403 location -> :class:`GHLLocationAccessError`."""
    if status in (400, 404, 422) and (status == 404 or is_not_found_message(message)):
        return GHLNotFoundError
    if status == 401 and is_scope_message(message):
        return GHLScopeError
    if status == 403 and is_location_access_message(message):
        return GHLLocationAccessError
    if status in (401, 403):
        return GHLAuthError
    if status == 429:
        return GHLRateLimitError
    if status in (400, 422):
        return GHLValidationError
    if status >= 500:
        return GHLServerError
    return GHLAPIError


def api_error_message(body: Any, fallback: str) -> tuple[str, str | None]:
    """``(message, traceId)`` from a HighLevel error body.

    The message is the body's ``message`` (a string, or a list of them joined with ``; ``), else its
    OAuth ``error_description`` / ``error``, else ``fallback`` (also for a body that is not an object).
    """
    if not isinstance(body, dict):
        return fallback, None
    message = body.get("message") or body.get("error_description") or body.get("error") or fallback
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    trace_id = body.get("traceId") or body.get("trace_id")
    return str(message), (str(trace_id) if trace_id else None)


__all__ = [
    "GHLAPIError",
    "GHLAuthError",
    "GHLConfigError",
    "GHLDailyLimitError",
    "GHLError",
    "GHLLocationAccessError",
    "GHLScopeError",
    "GHLNotFoundError",
    "GHLPaginationError",
    "GHLRateLimitError",
    "GHLServerError",
    "GHLTransportError",
    "GHLValidationError",
    "api_error_message",
    "error_class_for_status",
    "is_location_access_message",
    "is_not_found_message",
    "is_scope_message",
]
