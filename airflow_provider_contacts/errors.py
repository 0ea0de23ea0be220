"""Exception hierarchy of the HighLevel Contacts provider.

Every error raised by the hook derives from :class:`GHLError`. Errors that come from an HTTP answer
of the API are :class:`GHLAPIError` and carry:

* ``status`` - the HTTP status code (``None`` when the request never got an answer or when the
  error was raised locally, before any request, e.g. a body that fails validation);
* ``message`` - the API's own message (``message``/``error`` of the JSON body), or ours;
* ``trace_id`` - HighLevel's ``traceId`` when the answer carried one (quote it to HighLevel support);
* ``operation`` - the operation that failed (contacts.json ``operationId`` or the hook method name).

Messages never contain access tokens, refresh tokens or client secrets.

Hierarchy::

    GHLError
    +-- GHLConfigError            bad or missing connection / hook configuration
    +-- GHLDailyLimitError        stopped before HighLevel's daily request limit (reserve reached)
    +-- GHLPaginationError        the API repeated a cursor; stopped instead of looping forever
    +-- GHLAPIError               an HTTP answer (or no answer) from the API
        +-- GHLAuthError          401 / 403 (and OAuth refresh failures)
        +-- GHLNotFoundError      404
        +-- GHLRateLimitError     429 still returned after the retries
        +-- GHLValidationError    400 / 422 from the API, or a request body rejected before sending
        +-- GHLServerError        5xx still returned after the retries
        +-- GHLTransportError     connection errors, timeouts, broken bodies after the retries
"""

from __future__ import annotations

from typing import Any


class GHLError(Exception):
    """Base class of every error raised by this provider."""


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
        self.message = message
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


def _rebuild_api_error(
    cls: type[GHLAPIError], message: str, status: int | None, trace_id: str | None, operation: str | None
) -> GHLAPIError:
    return cls(message, status=status, trace_id=trace_id, operation=operation)


class GHLAuthError(GHLAPIError):
    """401 (token invalid or expired and not refreshable) or 403 (token lacks a scope)."""


class GHLNotFoundError(GHLAPIError):
    """404: the contact, task, note ... does not exist (or not in this location)."""


class GHLRateLimitError(GHLAPIError):
    """429 still returned after the configured retries."""


class GHLValidationError(GHLAPIError):
    """400/422 from the API, or a request body rejected locally before any request was sent."""


class GHLServerError(GHLAPIError):
    """5xx still returned after the configured retries."""


class GHLTransportError(GHLAPIError):
    """No usable answer: connection error, timeout or truncated body, after the retries."""


def error_class_for_status(status: int) -> type[GHLAPIError]:
    """Map an HTTP status code to the matching :class:`GHLAPIError` subclass."""
    if status in (401, 403):
        return GHLAuthError
    if status == 404:
        return GHLNotFoundError
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
    "GHLNotFoundError",
    "GHLPaginationError",
    "GHLRateLimitError",
    "GHLServerError",
    "GHLTransportError",
    "GHLValidationError",
    "api_error_message",
    "error_class_for_status",
]
