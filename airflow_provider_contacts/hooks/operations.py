"""What every operation method of ``GHLContactsHook`` shares.

* :class:`Endpoint` declares one operation of contacts.json (or locations.json): method, path
  template, ``operationId`` and the OAuth scope it needs. Its :meth:`Endpoint.spec` builds the
  :class:`~airflow_provider_contacts.hooks.specs.RequestSpec` of one call - the path through
  :func:`~airflow_provider_contacts.hooks.paths.api_path`, the one place where ids enter URLs
  (each id checked: letters, digits, ``_``, ``-``, 1..64 characters; a bad one fails before any
  request with :class:`GHLValidationError` naming the parameter and the operation);
* :func:`operation` marks a hook method - sync or async - with the ``operationId`` of its
  endpoint and the scope it needs (``.operation_id``, ``.required_scope``);
* :class:`OperationsBase` is the base of the operation mixins (:mod:`.contact_ops`,
  :mod:`.task_ops`, :mod:`.note_ops`, :mod:`.appointment_ops`, :mod:`.membership_ops`): it sends a
  spec or runs a plan (:mod:`.specs`) through the sync transport (``_run``, ``_iterate``) or, for
  the async twins, through an async transport opened after ``await aload_settings()``
  (``_arun``, ``_aiterate``), and holds the rule for creates that must not be sent twice
  (:meth:`OperationsBase._create_once`, see :mod:`.creates`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow_provider_contacts.errors import GHLConfigError, GHLNotFoundError, GHLValidationError
from airflow_provider_contacts.hooks.creates import CLAIMS, DATED, CreateWindow
from airflow_provider_contacts.hooks.paths import api_path
from airflow_provider_contacts.hooks.specs import Plan, RequestSpec, adrive, drive
from airflow_provider_contacts.hooks.transport import AmbiguousWrite, CallReport

if TYPE_CHECKING:
    from airflow_provider_contacts.auth import TokenSource
    from airflow_provider_contacts.hooks.pacing import RateLimiter
    from airflow_provider_contacts.hooks.retry import RetryPolicy
    from airflow_provider_contacts.hooks.settings import ConnectionSettings
    from airflow_provider_contacts.hooks.transport import AsyncTransport, HookStats, Transport

log = logging.getLogger("airflow_provider_contacts.hooks.contacts")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
P = ParamSpec("P")

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


@dataclass(frozen=True)
class Endpoint:
    """One API operation: ``method`` on ``template`` (placeholders named like the hook's
    parameters, e.g. ``/contacts/{contact_id}``), its ``operationId`` and the OAuth ``scope`` it needs."""

    method: str
    template: str
    operation_id: str
    scope: str

    def spec(
        self,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        replay_safe: bool = True,
        **ids: str,
    ) -> RequestSpec[T]:
        """The request of one call: the path with ``ids`` checked and filled in (see
        :func:`~airflow_provider_contacts.hooks.paths.api_path`), answered through ``parse``.

        :raises GHLValidationError: an id that is not a HighLevel id (nothing is sent).
        """
        path = api_path(self.template, self.operation_id, **ids)
        return RequestSpec(self.method, path, self.operation_id, self.scope, parse, params, body, replay_safe)


def operation(endpoint: Endpoint) -> Callable[[F], F]:
    """Mark a hook method (sync or async) as wrapping ``endpoint``: it gets ``.operation_id`` and
    ``.required_scope``."""

    def mark(fn: F) -> F:
        fn.operation_id = endpoint.operation_id  # type: ignore[attr-defined]
        fn.required_scope = endpoint.scope  # type: ignore[attr-defined]
        return fn

    return mark


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
    """Base of the operation mixins; ``GHLContactsHook`` provides the attributes declared here."""

    ghl_conn_id: str
    retry: RetryPolicy
    stats: HookStats

    @property
    def base_url(self) -> str:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    @property
    def location_id(self) -> str | None:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    @property
    def transport(self) -> Transport:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    @property
    def timeout(self) -> tuple[float, float]:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    async def aload_settings(self) -> ConnectionSettings:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    def async_transport(  # pragma: no cover
        self, token_source: TokenSource | None = None, limiter: RateLimiter | None = None
    ) -> contextlib.AbstractAsyncContextManager[AsyncTransport]:
        raise NotImplementedError

    def require_location_id(self) -> str:
        """The location id, or :class:`GHLConfigError` naming ``location_id`` and where to set it."""
        location = self.location_id
        if not location:
            raise GHLConfigError(
                f"location_id is not set: pass GHLContactsHook(location_id=...) or set the extra "
                f"'location_id' on connection {self.ghl_conn_id!r}"
            )
        return location

    # -- sending: sync ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, **options: Any) -> Any:
        """Send one request through the hook's transport (every sync request passes here)."""
        return self.transport.request(method, path, **options)

    def _send(self, spec: RequestSpec[T], report: CallReport | None = None) -> T:
        """Send ``spec`` through the sync transport; its parsed answer. ``report`` (a
        :class:`~airflow_provider_contacts.hooks.transport.CallReport`) learns what the request
        loop saw, e.g. whether an attempt before the answered one may have been applied."""
        if report is None:
            return spec.send(self._call)
        return spec.send(functools.partial(self._call, report=report))

    def _run(self, build: Callable[P, RequestSpec[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """The sync half of a read: ``build(*args, **kwargs)`` sent through the sync transport."""
        return self._send(build(*args, **kwargs))

    def _iterate(self, plan: Callable[P, Plan[Any]], *args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
        """The sync half of a paged read: the records of ``plan(*args, **kwargs)`` (lazily)."""
        return drive(plan(*args, **kwargs), self._call)

    # -- sending: async -----------------------------------------------------------------------

    async def _arun(self, build: Callable[P, RequestSpec[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """The async half of a read: the connection read without blocking the loop, the spec built
        as the sync half builds it, sent through an async transport of this hook."""
        await self.aload_settings()
        spec = build(*args, **kwargs)  # a bad id fails here, before a client is opened
        async with self.async_transport() as api:
            return await spec.asend(api.request)

    async def _aiterate(self, plan: Callable[P, Plan[Any]], *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Any]:
        """The async half of a paged read: the records of the same plan as the sync half, through
        one async transport of this hook for the whole iteration (close the iterator early with
        ``contextlib.aclosing``)."""
        await self.aload_settings()
        async with self.async_transport() as api:
            async for record in adrive(plan(*args, **kwargs), api.request):
                yield record

    # -- shared pieces of operations ------------------------------------------------------------

    def _delete(self, endpoint: Endpoint, missing_ok: bool, **ids: str) -> bool:
        """``DELETE`` of ``endpoint``: ``True`` if HighLevel confirmed (``succeded``).

        With ``missing_ok``, a record that does not exist (404, or the live API's 400 ``... not
        found``: ghl-live-notes.md) gives ``False`` instead of :class:`GHLNotFoundError`.

        A delete whose answer was lost is done: when an earlier attempt of this call reached the
        server and got no usable answer (5xx, timeout, dropped connection: the transport resends a
        ``DELETE``, see :class:`~airflow_provider_contacts.hooks.transport.CallReport`), a
        not-found answer to the resend means that attempt deleted the record, and the result is
        ``True`` whatever ``missing_ok`` says. (Had the earlier attempt not been applied, the record
        was gone before the call - deleted by someone else; the outcome, no such record, is the
        same, and nothing tells the two apart.) A not-found answer to the first attempt still
        raises (or gives ``False`` with ``missing_ok``).
        """
        spec = endpoint.spec(confirmed, **ids)
        report = CallReport()
        try:
            return self._send(spec, report)
        except GHLNotFoundError:
            if report.maybe_applied:
                log.warning(
                    "%s: %s not found on attempt %d, after an attempt whose answer was lost: that "
                    "attempt deleted it; reporting it deleted",
                    spec.operation, spec.path, report.attempts,
                )
                return True
            if not missing_ok:
                raise
            log.info("%s: %s does not exist (already deleted); missing_ok=True", spec.operation, spec.path)
            return False

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

    def _children(self, key: str, contact_id: str, model: type[T]) -> Callable[[Any], list[T]]:
        """Parser of an answer listing a contact's tasks or notes under ``key``."""
        return lambda data: self._with_contact(data.get(key) or [], contact_id, model)

    def _child(self, key: str, contact_id: str, model: type[T]) -> Callable[[Any], T]:
        """Parser of an answer holding one task or note of a contact under ``key``."""
        return lambda data: self._with_contact([data[key]], contact_id, model)[0]

    def _create_child(
        self,
        endpoint: Endpoint,
        kind: str,
        model: type[T],
        listing: Callable[[str], list[T]],
        contact_id: str,
        payload: dict[str, Any],
        same: Callable[[T], bool],
    ) -> T:
        """``POST`` a task or note (``kind``) of a contact exactly once (see :meth:`_create_once`).

        After an ambiguous failure, the contact's records (``listing``) are looked through for one
        that is ``same`` as the one sent and that the failed attempt made: added since it was sent
        (on the server's clock), not claimed by another create of this process, and - for records
        without ``dateAdded`` (tasks, per contacts.json, until the API shows otherwise) - not in a
        listing taken just before the create (one extra ``GET`` per create of such records).
        """

        def snapshot() -> list[str]:
            try:
                return [item.id for item in listing(contact_id)]  # type: ignore[attr-defined]
            except GHLNotFoundError:
                return []  # the create will say so, under its own operation

        def lookup(window: CreateWindow) -> T | None:
            return window.adopt([item for item in listing(contact_id) if same(item)])

        return self._create_once(
            endpoint.spec(self._child(kind, contact_id, model), body=payload, replay_safe=False, contact_id=contact_id),
            lookup=lookup,
            key=self._claim_key(kind, contact_id),
            snapshot=None if DATED.dated(self.base_url, kind) else snapshot,
        )

    def _claim_key(self, kind: str, parent: str) -> Hashable:
        """The key of this hook's creates of ``kind`` under ``parent`` (contact id, or location id
        for contacts) in :data:`~airflow_provider_contacts.hooks.creates.CLAIMS`."""
        return (self.base_url, kind, parent)

    def _create_once(
        self,
        spec: RequestSpec[T],
        *,
        lookup: Callable[[CreateWindow], T | None],
        key: Hashable,
        record_id: Callable[[T], str] = lambda record: record.id,  # type: ignore[attr-defined]
        snapshot: Callable[[], Iterable[str]] | None = None,
        check_422: bool = False,
    ) -> T:
        """Send a create exactly once; after an ambiguous failure return what ``lookup`` adopts,
        else send it again (bounded by the retry policy).

        :param spec: the create, with ``replay_safe=False`` (an ambiguous failure raises
            ``AmbiguousWrite``); its ``parse`` gives the record of a successful answer.
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
            return self._send_once(spec, lookup, window, record_id, check_422)

    def _send_once(
        self,
        spec: RequestSpec[T],
        lookup: Callable[[CreateWindow], T | None],
        window: CreateWindow,
        record_id: Callable[[T], str],
        check_422: bool,
    ) -> T:
        """The attempts of :meth:`_create_once` (under its lock)."""
        key = window.key
        attempts = self.retry.begin()
        while True:
            try:
                record = self._send(spec)
            except AmbiguousWrite as ambiguous:
                error = ambiguous.error
                if attempts.failures == 0 and ambiguous.sent_at is not None:
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
                        spec.operation, record_id(record),
                    )
                return record
            found = lookup(window)
            if found is not None:
                log.warning("%s: %s, but the record was created; not sending it again", error.operation, error.message)
                return found
            wait = attempts.failed()
            if wait is None:
                raise error.with_message(
                    f"{error.message} (gave up after {attempts.failures} attempts; the record was not created)"
                )
            self.stats.add("retries")
            log.warning(
                "%s: %s and the record is not there; retry %d in %.2f s", error.operation, error.message, attempts.failures, wait
            )
            time.sleep(wait)


__all__ = [
    "FIELDS_READ",
    "READ",
    "TASKS_READ",
    "WRITE",
    "Endpoint",
    "OperationsBase",
    "confirmed",
    "flatten",
    "operation",
]
