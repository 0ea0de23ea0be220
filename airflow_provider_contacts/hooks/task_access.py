"""Whether a hook's token may use the location task search, remembered per hook instance.

``POST /locations/{locationId}/tasks/search`` (locations.json ``task-search``) needs the scope
``locations/tasks.readonly``, which many tokens lack. The live API then answers 401 ``The token is
not authorized for this scope.`` (:class:`~airflow_provider_contacts.errors.GHLScopeError`; the
spec and older tokens: 403). The hook then reads tasks with one ``GET /contacts/{id}/tasks`` per
contact instead (same result, more requests), logs that once, and does not try the search again.
The reads of several tasks (``TaskOperations.iter_location_tasks`` and its async twin
``aiter_location_tasks``, ``tasks_for_contacts`` and the fan-out) share one
:class:`TaskSearchAccess` per hook. Source: ghl-live-notes.md, "Statuses and error bodies".
"""

from __future__ import annotations

import logging
import threading

from airflow_provider_contacts.errors import GHLAPIError, GHLAuthError, GHLLocationAccessError, GHLScopeError

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

#: The scope of the location task search.
TASK_SEARCH_SCOPE = "locations/tasks.readonly"


def task_search_refused(exc: BaseException) -> bool:
    """Whether ``exc``, raised by the location task search, means "this token may not use it":
    a :class:`GHLScopeError` (401 scope / token class), or another 401 or 403 - but not a
    :class:`GHLLocationAccessError` (a wrong ``location_id``: per-contact calls would fail alike)."""
    if isinstance(exc, GHLLocationAccessError) or not isinstance(exc, GHLAuthError):
        return False
    return isinstance(exc, GHLScopeError) or exc.status in (401, 403)


class TaskSearchAccess:
    """Per-hook memory: may the location task search still be used? (thread-safe)

    :attr:`allowed` starts ``True``; :meth:`refuse` turns it off for good and logs one warning
    per instance naming ``locations/tasks.readonly``.
    """

    def __init__(self) -> None:
        self.allowed = True
        self._warned = False
        self._lock = threading.Lock()

    def refuse(self, exc: BaseException) -> bool:
        """Record a refusal of the task search: ``True`` (search off, fall back per contact) when
        :func:`task_search_refused` says so, else ``False`` (the caller re-raises ``exc``)."""
        if not task_search_refused(exc):
            return False
        with self._lock:
            self.allowed = False
            first, self._warned = not self._warned, True
        if first:
            detail = f"HTTP {exc.status}: {exc.message}" if isinstance(exc, GHLAPIError) else str(exc)
            log.warning(
                "The token may not use the location task search, it lacks the '%s' scope (%s); "
                "falling back to one GET /contacts/{id}/tasks per contact (slower, same result). Add "
                "'%s' to the app / Private Integration and re-authorise to use the search",
                TASK_SEARCH_SCOPE,
                detail,
                TASK_SEARCH_SCOPE,
            )
        return True


__all__ = ["TASK_SEARCH_SCOPE", "TaskSearchAccess", "task_search_refused"]
