"""What every operation method of ``ContactsHook`` shares.

* :func:`operation` marks a method with the contacts.json ``operationId`` it wraps and the OAuth
  scope it needs, and makes that id the operation name of every request it sends (errors and logs
  name it);
* :func:`segment` / :func:`id_list` check ids before any request;
* :class:`OperationsBase` is the base of the operation mixins (:mod:`.contact_ops`,
  :mod:`.activity_ops`, :mod:`.membership_ops`): one request helper and the rule for creates that
  must not be sent twice.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from airflow_provider_contacts.errors import GHLConfigError, GHLNotFoundError, GHLValidationError
from airflow_provider_contacts.hooks.transport import AmbiguousWrite

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.retry import RetryPolicy
    from airflow_provider_contacts.hooks.transport import HookStats, Transport

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: The operationId of the operation method running in this context (named in errors and logs).
current_operation: contextvars.ContextVar[str] = contextvars.ContextVar("ghl_operation", default="request")

#: How far before the first attempt a record's ``dateAdded`` may lie and still count as created by
#: that attempt (clock skew between this machine and HighLevel).
CREATE_MATCH_SKEW = timedelta(minutes=2)

#: Longest wait after a timed-out create before looking for the record it may have made.
MAX_SETTLE_S = 10.0

READ, WRITE = "contacts.readonly", "contacts.write"
TASKS_READ, FIELDS_READ = "locations/tasks.readonly", "locations/customFields.readonly"


def operation(operation_id: str, scope: str) -> Callable[[F], F]:
    """Mark a hook method as wrapping contacts.json ``operation_id`` that needs OAuth ``scope``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = current_operation.set(operation_id)
            try:
                return fn(*args, **kwargs)
            finally:
                current_operation.reset(token)

        wrapper.operation_id = operation_id  # type: ignore[attr-defined]
        wrapper.required_scope = scope  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def segment(value: str, name: str) -> str:
    """A URL path segment from an id; empty ids fail before any request, naming the parameter."""
    if not isinstance(value, str) or not value.strip():
        raise GHLValidationError(
            f"parameter '{name}' must be a non-empty id string, got {value!r}",
            operation=current_operation.get(),
        )
    return quote(value.strip(), safe="")


def id_list(values: Sequence[str] | None, name: str) -> list[str]:
    """A non-empty list of ids (a single string is one id); otherwise a validation error naming ``name``."""
    if isinstance(values, str):
        values = [values]
    cleaned = [v for v in (values or []) if isinstance(v, str) and v.strip()]
    if not cleaned:
        raise GHLValidationError(
            f"parameter '{name}' must be a non-empty list of ids", operation=current_operation.get()
        )
    return cleaned


def flatten(items: Any) -> Iterator[Any]:
    """Tasks of a task search: contacts.json documents them as an array of arrays."""
    for item in items or []:
        if isinstance(item, list):
            yield from flatten(item)
        else:
            yield item


def confirmed(data: Any) -> bool:
    """HighLevel's ``succeded`` (sic) flag of a write answer; an answer without it counts as success."""
    if not isinstance(data, dict):
        return True
    return bool(data.get("succeded", data.get("succeeded", True)))


class OperationsBase:
    """Base of the operation mixins; ``ContactsHook`` provides the attributes declared here."""

    ghl_conn_id: str
    retry: RetryPolicy
    stats: HookStats

    @property
    def location_id(self) -> str | None:  # pragma: no cover - provided by ContactsHook
        raise NotImplementedError

    @property
    def transport(self) -> Transport:  # pragma: no cover - provided by ContactsHook
        raise NotImplementedError

    @property
    def timeout(self) -> tuple[float, float]:  # pragma: no cover - provided by ContactsHook
        raise NotImplementedError

    def require_location_id(self) -> str:
        """The location id, or :class:`GHLConfigError` naming ``location_id`` and where to set it."""
        location = self.location_id
        if not location:
            raise GHLConfigError(
                f"location_id is not set: pass ContactsHook(location_id=...) or set the extra "
                f"'location_id' on connection {self.ghl_conn_id!r}"
            )
        return location

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        scope: str = READ,
        replay_safe: bool = True,
    ) -> Any:
        """Send one request of the running operation through the hook's transport."""
        return self.transport.request(
            method,
            path,
            operation=current_operation.get(),
            params=params,
            json_body=json_body,
            scope=scope,
            replay_safe=replay_safe,
        )

    def _delete(self, path: str, missing_ok: bool) -> bool:
        """``DELETE path`` of the running operation: ``True`` if HighLevel confirmed (``succeded``).

        With ``missing_ok``, a record that does not exist (404, or the live API's 400 ``... not
        found``: ghl-live-notes.md) gives ``False`` instead of :class:`GHLNotFoundError`.
        """
        try:
            data = self._call("DELETE", path, scope=WRITE)
        except GHLNotFoundError:
            if not missing_ok:
                raise
            log.info("%s: %s does not exist (already deleted); missing_ok=True", current_operation.get(), path)
            return False
        return confirmed(data)

    @staticmethod
    def _with_contact(items: list[dict[str, Any]], contact_id: str, model: type[T]) -> list[T]:
        """Parse tasks/notes of one contact; each carries ``contactId`` (the API's, else ours)."""
        return [
            model.model_validate({**item, "contactId": item.get("contactId") or contact_id})  # type: ignore[attr-defined]
            for item in items
        ]

    def _create_once(
        self,
        send: Callable[[], Any],
        *,
        parse: Callable[[Any], T],
        lookup: Callable[[], T | None],
        check_422: bool = False,
    ) -> T:
        """Send a create; after an ambiguous failure return what ``lookup`` finds, else retry."""
        attempts = 0
        started = time.monotonic()
        while True:
            try:
                return parse(send())
            except AmbiguousWrite as ambiguous:
                error = ambiguous.error
                if ambiguous.timed_out:
                    # The server may still be processing the request: give it as long again
                    # before looking for its result.
                    time.sleep(min(self.timeout[1], MAX_SETTLE_S))
            except GHLValidationError as exc:
                if not (check_422 and exc.status == 422):
                    raise
                found = lookup()
                if found is not None:
                    log.warning("%s: HTTP 422 although the record was created; using it", exc.operation)
                    return found
                raise
            found = lookup()
            if found is not None:
                log.warning("%s: %s, but the record was created; not sending it again", error.operation, error.message)
                return found
            attempts += 1
            wait = self.retry.next_wait_s(attempts, started)
            if wait is None:
                raise error.with_message(f"{error.message} (gave up after {attempts} attempts; the record was not created)")
            self.stats.add("retries")
            log.warning("%s: %s and the record is not there; retry %d in %.2f s", error.operation, error.message, attempts, wait)
            time.sleep(wait)
