"""What every operation method of ``ContactsHook`` shares.

* :func:`operation` marks a method with the contacts.json ``operationId`` it wraps and the OAuth
  scope it needs, and makes that id the operation name of every request it sends (errors and logs
  name it);
* :func:`api_path` builds every request path that holds an id - the one place where ids enter
  URLs, for the sync operations and the async ones (:mod:`.async_search`) alike: each id is checked
  (:func:`~airflow_provider_contacts.hooks.urls.check_id`: letters, digits, ``_``, ``-``, 1..64
  characters) and percent-encoded, and a bad one fails before any request with
  :class:`GHLValidationError` naming the parameter; :func:`segment` is the same check for one
  segment, :func:`id_list` checks lists of ids sent in bodies;
* :class:`OperationsBase` is the base of the operation mixins (:mod:`.contact_ops`,
  :mod:`.activity_ops`, :mod:`.membership_ops`): one request helper and the rule for creates that
  must not be sent twice (:meth:`OperationsBase._create_once`, see :mod:`.creates`).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import string
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from airflow_provider_contacts.errors import GHLConfigError, GHLNotFoundError, GHLValidationError
from airflow_provider_contacts.hooks.creates import CLAIMS, DATED, CreateWindow
from airflow_provider_contacts.hooks.transport import AmbiguousWrite
from airflow_provider_contacts.hooks.urls import check_id

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.retry import RetryPolicy
    from airflow_provider_contacts.hooks.transport import HookStats, Transport

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: The operationId of the operation method running in this context (named in errors and logs).
current_operation: contextvars.ContextVar[str] = contextvars.ContextVar("ghl_operation", default="request")

#: How far before the first attempt a record's ``dateAdded`` may lie and still count as created by
#: that attempt, when the API sent no ``Date`` header to learn its clock from (then this machine's
#: clock is used, and may be off HighLevel's).
CREATE_MATCH_SKEW = timedelta(minutes=2)

#: The same allowance when the server's clock is known from its ``Date`` headers: their one-second
#: resolution is already accounted for; this covers clocks of different HighLevel hosts.
CLOCK_ALLOWANCE = timedelta(seconds=2)

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


_FORMATTER = string.Formatter()


def api_path(template: str, /, operation: str | None = None, **ids: Any) -> str:
    """The request path of ``template`` with each ``{name}`` replaced by the checked id ``ids[name]``.

    ``api_path("/contacts/{contact_id}/notes/{note_id}", contact_id=c, note_id=n)``. The
    placeholders are the hook's parameter names, so an error names the parameter the caller passed.
    Every id must be a HighLevel id (:func:`~airflow_provider_contacts.hooks.urls.check_id`:
    ``A-Z a-z 0-9 _ -``, 1..64 characters); it is percent-encoded all the same. Ids are checked in
    the order of the template, so the first bad one is named.

    :param operation: the operationId the error carries; default: the running hook operation
        (:data:`current_operation`). Async code, which runs outside the hook's methods, passes it.

    :raises GHLValidationError: an id that is empty, a dot segment, or holds ``/ ? # %``,
        whitespace, control or other characters - before any request, with the running operation
        (``status`` None), e.g. ``parameter 'note_id': '..' is not a HighLevel id (letters, digits,
        _ and -, 1 to 64 characters); pass the note's id``.
    :raises ValueError: a placeholder without a value, or a value without a placeholder (a bug).
    """
    names = [field for _, field, _, _ in _FORMATTER.parse(template) if field is not None]
    if sorted(names) != sorted(ids):
        raise ValueError(f"api_path({template!r}): ids {sorted(ids)} do not match the placeholders {names}")
    operation = operation or current_operation.get()
    encoded = {name: quote(check_id(ids[name], name, operation), safe="") for name in names}
    return template.format(**encoded)


def segment(value: str, name: str) -> str:
    """One checked, percent-encoded path segment from the id ``value`` (parameter ``name``): the
    check of :func:`api_path`, for code that still joins segments itself.

    :raises GHLValidationError: ``value`` is not a HighLevel id (see :func:`api_path`).
    """
    return quote(check_id(value, name, current_operation.get()), safe="")


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
    def base_url(self) -> str:  # pragma: no cover - provided by ContactsHook
        raise NotImplementedError

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

    def _with_contact(self, items: list[dict[str, Any]], contact_id: str, model: type[T]) -> list[T]:
        """Parse tasks/notes of one contact; each carries ``contactId`` (the API's, else ours).

        Also tells :data:`~airflow_provider_contacts.hooks.creates.DATED` whether the API's records
        of this kind carry ``dateAdded`` (creates of an undated kind take a pre-send snapshot).
        """
        records = [
            model.model_validate({**item, "contactId": item.get("contactId") or contact_id})  # type: ignore[attr-defined]
            for item in items
        ]
        DATED.observe(self.base_url, model.__name__.lower(), records)
        return records

    def _claim_key(self, kind: str, parent: str) -> Hashable:
        """The key of this hook's creates of ``kind`` under ``parent`` (contact id, or location id
        for contacts) in :data:`~airflow_provider_contacts.hooks.creates.CLAIMS`."""
        return (self.base_url, kind, parent)

    def _create_once(
        self,
        send: Callable[[], Any],
        *,
        parse: Callable[[Any], T],
        lookup: Callable[[CreateWindow], T | None],
        key: Hashable,
        record_id: Callable[[T], str] = lambda record: record.id,  # type: ignore[attr-defined]
        snapshot: Callable[[], Iterable[str]] | None = None,
        check_422: bool = False,
    ) -> T:
        """Send a create exactly once; after an ambiguous failure return what ``lookup`` adopts,
        else send it again (bounded by the retry policy).

        :param send: sends the create with ``replay_safe=False`` (raises ``AmbiguousWrite``).
        :param parse: the answer of a successful send -> the record.
        :param lookup: given the :class:`~airflow_provider_contacts.hooks.creates.CreateWindow` of
            this create, finds matching records and returns ``window.adopt(matches)``: the newest
            one made since the first attempt was sent (server clock), not in the snapshot, not
            claimed by another create - or ``None``.
        :param key: the claim key (:meth:`_claim_key`); the returned record's id is claimed under
            it, so no other create of this process returns it.
        :param record_id: the id of a record ``parse``/``lookup`` returns.
        :param snapshot: returns the ids of the records there before the send; called once,
            before the first attempt, for records that cannot be told apart by ``dateAdded``.
        :param check_422: a 422 answer may come after the record was created (a HighLevel quirk):
            look it up before raising.
        :raises GHLAPIError: the last error when the record is not there after the retries ("the
            record was not created"); a 4xx other than that 422 at once.
        """
        with CLAIMS.serialised(key):  # creates under one key, one at a time in this process
            known = frozenset(snapshot()) if snapshot is not None else frozenset()
            window = CreateWindow(
                key=key, sent_at=time.time(), clock=self.transport.clock, known=known,
                allowance=CLOCK_ALLOWANCE, fallback=CREATE_MATCH_SKEW,
            )
            return self._send_once(send, parse, lookup, window, record_id, check_422)

    def _send_once(
        self,
        send: Callable[[], Any],
        parse: Callable[[Any], T],
        lookup: Callable[[CreateWindow], T | None],
        window: CreateWindow,
        record_id: Callable[[T], str],
        check_422: bool,
    ) -> T:
        """The attempts of :meth:`_create_once` (under its lock)."""
        key = window.key
        attempts = 0
        started = time.monotonic()
        while True:
            try:
                record = parse(send())
            except AmbiguousWrite as ambiguous:
                error = ambiguous.error
                if attempts == 0 and ambiguous.sent_at is not None:
                    window.sent_at = ambiguous.sent_at  # when the first attempt really went out
                if ambiguous.timed_out:
                    # The server may still be processing the request: give it as long again
                    # before looking for its result.
                    time.sleep(min(self.timeout[1], MAX_SETTLE_S))
            except GHLValidationError as exc:
                if not (check_422 and exc.status == 422):
                    raise
                found = lookup(window)
                if found is not None:
                    log.warning("%s: HTTP 422 although the record was created; using it", exc.operation)
                    return found
                raise
            else:
                if not CLAIMS.claim(key, record_id(record)):
                    log.warning(
                        "%s: HighLevel returned %s, which another create of this process had already "
                        "adopted after a failure; that create returned a record it did not make",
                        current_operation.get(), record_id(record),
                    )
                return record
            found = lookup(window)
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
