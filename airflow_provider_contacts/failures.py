"""Which errors fail a task at once, and which ones Airflow may retry.

Airflow retries a failed task (``retries``, ``retry_delay``) unless the error is an
``AirflowFailException``. Retrying helps against a busy or unreachable API; it cannot fix a wrong
id, a missing scope or a bad parameter, and only delays the failure (and spends requests). So every
HighLevel operator and sensor (their shared mixin,
:class:`~airflow_provider_contacts.task_mixin.GHLTaskMixin`) passes the errors of its
``execute``, ``poke`` and ``execute_complete`` through :func:`fail_fast`:

=====================================================  =========================================
error                                                  what happens
=====================================================  =========================================
``GHLNotFoundError`` (404, or the live API's 400        fails at once: the record was deleted or
``... not found``; also a ``GHLValidationError``       merged, or the id is of another location.
whose API message says "not found")                    (Delete-like operators with
                                                       ``missing_ok=True`` never get here.)
``GHLScopeError`` (401 missing scope / token class)    fails at once: add the scope, re-authorise
``GHLLocationAccessError`` (403 other location)        fails at once: check ``location_id``
other ``GHLAuthError`` with HTTP 403                   fails at once: the token may not do this
``GHLValidationError`` (400/422 from the API, or a      fails at once: fix the parameter
body refused before sending; ``GHLInputError``)
``GHLConfigError`` (connection / hook settings)        fails at once: fix the connection
``MappingError`` (a sync column mapping)               fails at once: fix the mapping
``GHLServerError``, ``GHLTransportError``,              unchanged: Airflow retries the task
``GHLRateLimitError``, ``GHLDailyLimitError``,
``GHLPaginationError``, a 401 ``GHLAuthError`` (an
OAuth refresh may have raced another worker), any
other exception
=====================================================  =========================================

The error that fails the task is the original error's class combined with
:class:`GHLFailFast` (an ``AirflowFailException``): ``except GHLNotFoundError`` still catches it,
its ``status``, ``trace_id``, ``operation`` and ``message`` (HighLevel's own) are the original's,
its text says what to fix, and the original is chained as ``__cause__``. Credentials inside URLs are
redacted from the text (:mod:`.redaction`).

Errors that reach a deferrable sensor as a trigger event are rebuilt with :func:`error_from_event`
(the trigger sends :func:`error_event`), so a sensor fails the same way in all three modes.

The tasks of the sync DAGs (``resolve_locations`` and ``reconcile`` of the reconcile DAG, the lead
and two-way DAGs' tasks) are TaskFlow functions, not operators: their bodies run under
:func:`failing_fast` with :data:`SYNC_KINDS`, the table above except a record not found (in a sync
run that is a contact deleted or merged while the run read it, which the next try no longer
lists, so it stays retryable). A mapping error, a bad DAG param, a connection that is not usable,
a request HighLevel rejects as invalid, a missing scope or a location the token may not access
fails the task on its first try; a mapped task (one location) fails alone, the other locations'
tasks run on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from airflow_provider_contacts import errors as _errors
from airflow_provider_contacts.errors import (
    GHLAPIError,
    GHLAuthError,
    GHLConfigError,
    GHLError,
    GHLLocationAccessError,
    GHLNotFoundError,
    GHLScopeError,
    GHLValidationError,
    is_location_access_message,
    is_not_found_message,
    is_scope_message,
)
from airflow_provider_contacts.redaction import mask_url_credentials, redact_url_credentials

#: Parameters whose rendered value names the record a task works on (quoted in not-found errors).
ID_PARAMS: tuple[str, ...] = (
    "contact_id", "ghl_task_id", "note_id", "campaign_id", "workflow_id", "business_id", "contact_ids",
)


class GHLFailFast(AirflowFailException):
    """An error no retry can cure: the task fails at once (Airflow does not retry it).

    Raised as a subclass that is also the original error's class (``GHLNotFoundError``, ...), see
    :func:`fail_fast`; ``original_type`` names that class.
    """

    original_type: type[BaseException] | None = None


class GHLTriggerError(GHLError):
    """A deferrable sensor's trigger failed with an error that is not one of the provider's (the
    event names its class and message). Retried like any unknown error."""


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says the record does not exist: :class:`GHLNotFoundError` (404, or 400 whose
    message says not found), or an API error whose status is 400/404/422 and whose message says so
    (how the live API answers an unknown contact, task or note; ghl-live-notes.md)."""
    if isinstance(exc, GHLNotFoundError):
        return True
    return (
        isinstance(exc, GHLAPIError)
        and exc.status in (400, 404, 422)
        and (exc.status == 404 or is_not_found_message(exc.message))
    )


def _kind(exc: BaseException) -> str | None:
    """The kind of a permanent error, or ``None`` when a retry may help."""
    if is_not_found(exc):
        return "not_found"
    if isinstance(exc, GHLScopeError) or (
        isinstance(exc, GHLAuthError) and exc.status == 401 and is_scope_message(exc.message)
    ):
        return "scope"
    if isinstance(exc, GHLLocationAccessError) or (
        isinstance(exc, GHLAuthError) and exc.status == 403 and is_location_access_message(exc.message)
    ):
        return "location"
    if isinstance(exc, GHLAuthError) and exc.status == 403:
        return "forbidden"
    if isinstance(exc, GHLValidationError):
        return "validation"
    if isinstance(exc, GHLConfigError) or _is_missing_connection(exc):
        return "config"
    if _is_mapping_error(exc):
        return "mapping"
    return None


def _is_missing_connection(exc: BaseException) -> bool:
    """A connection id no connection source knows (``AirflowNotFoundException`` from the
    connection look-up): a retry finds it missing again until someone creates it."""
    try:
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, AirflowNotFoundException)


def _is_mapping_error(exc: BaseException) -> bool:
    if type(exc).__name__ != "MappingError":  # avoid importing the sync package for every error
        return False
    from airflow_provider_contacts.sync.mapping import MappingError

    return isinstance(exc, MappingError)


#: Every kind of permanent error (what :func:`fail_fast` fails at once by default).
ALL_KINDS: frozenset[str] = frozenset({"not_found", "scope", "location", "forbidden", "validation", "config", "mapping"})
#: The kinds a sync DAG's task fails at once on (:func:`failing_fast`): all but ``not_found``.
SYNC_KINDS: frozenset[str] = ALL_KINDS - {"not_found"}


def permanent_kind(exc: BaseException, kinds: Collection[str] | None = None) -> str | None:
    """The kind of permanent error ``exc`` is (``mapping``, ``config``, ``validation``, ``scope``,
    ``location``, ``forbidden``, ``not_found``), or ``None`` when a retry may help or its kind is
    not among ``kinds`` (``None``: :data:`ALL_KINDS`)."""
    kind = _kind(exc)
    return kind if kind is not None and (kinds is None or kind in kinds) else None


def is_retryable(exc: BaseException, kinds: Collection[str] | None = None) -> bool:
    """Whether Airflow may retry a task that failed with ``exc`` (see the module's table).

    :param kinds: the kinds that fail at once (``None``: all; a sync task: :data:`SYNC_KINDS`).
    """
    return not isinstance(exc, AirflowFailException) and permanent_kind(exc, kinds) is None


def _ids(task: Any) -> str:
    found = []
    for name in ID_PARAMS:
        value = getattr(task, name, None)
        if value not in (None, "", "None") and isinstance(value, (str, int, list, tuple)):
            found.append(f"{name}={value!r}")
    return ", ".join(found)


def _fix(kind: str, exc: BaseException, task: Any) -> str:
    conn = getattr(task, "ghl_conn_id", None)
    location_id = getattr(task, "location_id", None)
    location = f"location {location_id!r}" if location_id not in (None, "", "None") else "the connection's location"
    hint = (getattr(task, "fix_hints", None) or {}).get(kind)
    if hint:
        return str(hint).format(conn=repr(conn), location=location)
    if kind == "not_found":
        ids = _ids(task)
        hint = "; or set missing_ok=True to count a missing record as done" if hasattr(task, "missing_ok") else ""
        return (
            f"the record does not exist in {location}{f' ({ids})' if ids else ''}: it was deleted or merged, or "
            f"the id belongs to another location. Check the id (and location_id){hint}"
        )
    if kind == "scope":
        scope = getattr(exc, "scope", None)
        needed = f"the scope {scope!r}" if scope else "the scope this operation needs"
        return (
            f"the token of connection {conn!r} lacks {needed}, or is an agency token used on a location "
            "endpoint. Add the scope to the Private Integration / OAuth app and re-authorise (a refresh "
            "keeps the old scopes), or use a location token"
        )
    if kind == "location":  # the error itself says to set location_id to the token's location
        return f"connection {conn!r}, {location}: or use a token issued for that location"
    if kind == "forbidden":
        return (
            f"HighLevel refused the token of connection {conn!r} for this operation (HTTP 403). Add the scope "
            "the operation needs to the app / Private Integration and re-authorise"
        )
    if kind == "validation":
        if getattr(exc, "status", None) is None:
            return "fix the parameter named in the message (nothing was sent to HighLevel)"
        return "HighLevel rejected the request; fix the parameters or body fields named in the message"
    return ""  # config and mapping errors name the field and the fix themselves


_FAIL_FAST_TYPES: dict[type[BaseException], type[GHLFailFast]] = {}


def _reduce(self: BaseException) -> tuple[Any, ...]:
    return (_rebuild, (type(self).original_type, self.args, dict(self.__dict__)))  # type: ignore[attr-defined]


def _rebuild(original: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    cls = fail_fast_type(original)
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def fail_fast_type(original: type[BaseException]) -> type[GHLFailFast]:
    """The class raised for a permanent ``original`` error: ``original`` and :class:`GHLFailFast`
    (same name and module, so logs still say ``GHLNotFoundError``). Cached; picklable instances."""
    cls = _FAIL_FAST_TYPES.get(original)
    if cls is None:
        namespace = {
            "__module__": original.__module__,
            "__qualname__": original.__qualname__,
            "__doc__": f"{original.__name__} that fails the task at once (see {__name__}).",
            "__reduce__": _reduce,
            "original_type": original,
        }
        try:
            cls = type(original.__name__, (original, GHLFailFast), namespace)
        except TypeError:  # a class that cannot be combined (e.g. pydantic's ValidationError)
            cls = GHLFailFast
        _FAIL_FAST_TYPES[original] = cls
    return cls


def fail_fast(exc: BaseException, task: Any = None, *, kinds: Collection[str] | None = None) -> BaseException | None:
    """The error to raise instead of ``exc`` when no retry can cure it, else ``None``.

    :param task: the operator or sensor (its ``_owner``, ``ghl_conn_id``, ``location_id`` and id
        parameters go into the message), or a :class:`TaskFacts` for a TaskFlow task.
    :param kinds: the kinds of permanent error to fail at once (``None``: all of them, see
        :func:`permanent_kind`); the others are left to Airflow's retries.
    :returns: an instance of ``fail_fast_type(type(exc))`` carrying ``exc``'s attributes and the
        message ``"<task>: <ErrorClass>: <error> - fix: <what to do>. Not retried: ..."`` (no ``fix``
        part for config and mapping errors, whose message names the field and the fix); the caller
        raises it ``from exc``. ``None`` for retryable errors and for ``AirflowFailException``
        (which already fails at once, e.g. ``GHLInputError``).
    """
    mask_url_credentials(str(exc))  # so Airflow's masker also redacts the traceback of ``exc``
    if isinstance(exc, AirflowFailException):
        return None
    kind = permanent_kind(exc, kinds)
    if kind is None:
        return None
    owner = (getattr(task, "_owner", None) or type(task).__name__) if task is not None else None
    text = redact_url_credentials(str(exc) or repr(exc))
    fix = _fix(kind, exc, task)
    message = (
        f"{owner + ': ' if owner else ''}{type(exc).__name__}: {text}"
        f"{' - fix: ' + redact_url_credentials(fix) if fix else ''}. Not retried: a retry cannot cure this."
    )
    cls = fail_fast_type(type(exc))
    if cls is GHLFailFast:
        replacement: BaseException = GHLFailFast(message)
        replacement.original_type = type(exc)  # type: ignore[attr-defined]
        return replacement
    replacement = cls.__new__(cls)
    replacement.__dict__.update(exc.__dict__)
    replacement.args = (message,)
    return replacement


# -- TaskFlow tasks (the sync DAGs) ---------------------------------------------------------------
@dataclass
class TaskFacts:
    """What :func:`fail_fast` quotes for a task that is not an operator (a TaskFlow function).

    :ivar owner: the task as the message names it, e.g. ``ghl_contacts_reconcile.reconcile``.
    :ivar ghl_conn_id: the HighLevel connection the task uses.
    :ivar location_id: the location it works on (``None``: the connection's).
    :ivar fix_hints: kind -> the fix to print instead of the operators' one (``{conn}``: the
        connection id quoted, ``{location}``: ``location '<id>'`` or ``the connection's location``).
    """

    owner: str
    ghl_conn_id: str | None = None
    location_id: str | None = None
    fix_hints: Mapping[str, str] = field(default_factory=dict)

    @property
    def _owner(self) -> str:
        return self.owner


#: The fixes a sync DAG's task prints (its settings are DAG params and connections, not arguments).
SYNC_FIX_HINTS: Mapping[str, str] = {
    "validation": "fix the DAG param, mapping entry or connection setting the message names",
    "location": (
        "the token of connection {conn} has no access to {location}: the id is mistyped, or of a location "
        "of another agency. Fix or remove it in the DAG param (location_ids / location_id), or use a "
        "connection whose token may access it"
    ),
}


@contextmanager
def failing_fast(
    owner: str,
    *,
    ghl_conn_id: str | None = None,
    location_id: str | None = None,
    kinds: Collection[str] | None = SYNC_KINDS,
) -> Iterator[TaskFacts]:
    """Run a TaskFlow task's body as the operators run theirs: an error of one of ``kinds``
    (default :data:`SYNC_KINDS`: a mapping error, a bad param, a connection that is not usable, a
    request HighLevel rejects as invalid, a missing scope, a location the token may not access) is
    re-raised as :func:`fail_fast`'s ``AirflowFailException`` (chained), so the task fails at once;
    any other error (a timeout, a 5xx or 429 after the hook's retries, a database connection that
    dropped) is raised unchanged, for Airflow's retries. Yields the :class:`TaskFacts`, whose
    ``location_id`` the body may set once it knows it::

        with failing_fast(f"{dag_id}.reconcile", ghl_conn_id=conn, location_id=location_id):
            run_reconcile(...)
    """
    facts = TaskFacts(owner, ghl_conn_id=ghl_conn_id, location_id=location_id, fix_hints=SYNC_FIX_HINTS)
    try:
        yield facts
    except Exception as exc:
        replacement = fail_fast(exc, facts, kinds=kinds)
        if replacement is None:
            raise
        raise replacement from exc


# -- trigger events ----------------------------------------------------------------------------------
def error_event(exc: BaseException) -> dict[str, Any]:
    """A JSON trigger event for ``exc``: its class, its text (URL credentials redacted; errors never
    carry tokens), whether a retry may help, and for API errors what :func:`error_from_event` needs
    to rebuild it (``api`` = HighLevel's message, HTTP status, traceId, operation, scope)."""
    event: dict[str, Any] = {
        "status": "error",
        "error_type": type(exc).__name__,
        "message": redact_url_credentials(str(exc) or repr(exc)),
        "retryable": is_retryable(exc),
    }
    if isinstance(exc, GHLAPIError):
        event["api"] = {
            "message": redact_url_credentials(exc.message),
            "http_status": exc.status,
            "trace_id": exc.trace_id,
            "operation": exc.operation,
            "scope": getattr(exc, "scope", None),
        }
    return event


def error_from_event(event: dict[str, Any]) -> BaseException:
    """The error a trigger's ``{"status": "error", ...}`` event describes, rebuilt as the class it
    had in the triggerer when it is one of the provider's (else :class:`GHLTriggerError`), so the
    sensor classifies it (:func:`fail_fast`) exactly as in poke mode."""
    name = str(event.get("error_type") or "")
    message = str(event.get("message") or f"unexpected trigger event {event!r}")
    cls = getattr(_errors, name, None) if name.startswith("GHL") else None
    if isinstance(cls, type) and issubclass(cls, GHLAPIError) and isinstance(event.get("api"), dict):
        api = event["api"]
        kwargs: dict[str, Any] = {
            "status": api.get("http_status"), "trace_id": api.get("trace_id"), "operation": api.get("operation")
        }
        if issubclass(cls, GHLScopeError):
            kwargs["scope"] = api.get("scope")
        return cls(str(api.get("message") or message), **kwargs)
    if isinstance(cls, type) and issubclass(cls, GHLError):  # (an API error without its details: older events)
        return cls(message)
    return GHLTriggerError(f"the trigger failed: {name or 'unknown error'}: {message}")


__all__ = [
    "ALL_KINDS",
    "SYNC_KINDS",
    "GHLFailFast",
    "GHLTriggerError",
    "TaskFacts",
    "error_event",
    "error_from_event",
    "fail_fast",
    "fail_fast_type",
    "failing_fast",
    "is_not_found",
    "is_retryable",
    "permanent_kind",
]
