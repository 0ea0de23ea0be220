"""Requests built once, sent by either transport.

A :class:`RequestSpec` is one API request as the hook builds it - method, checked path, query
parameters, JSON body, contacts.json ``operationId``, OAuth scope - together with how its answer
is parsed into the hook's models. Nothing in it is sync or async: the hook's sync methods send it
through :class:`~airflow_provider_contacts.hooks.transport.Transport` (``requests``), their async
twins through :class:`~airflow_provider_contacts.hooks.transport.AsyncTransport` (``httpx``), with
the same pacing, retries and error mapping, so both send the same request and return the same
models.

A read that takes several requests (paging, the task search with its per-contact fallback) is a
:data:`Plan`: a generator that yields a :class:`RequestSpec` whenever it needs an answer (and gets
the parsed answer back from ``yield``, or the request's error raised at the ``yield``) and yields
the records it produces. :func:`drive` runs a plan on a sync ``request`` function, :func:`adrive`
on an async one; the plan itself - page sizes, cursors, stop rules, fallbacks - exists once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: A read of several requests: yields :class:`RequestSpec` (answered through ``send``) and records.
Plan = Generator[Any, Any, R]


@dataclass(frozen=True)
class RequestSpec(Generic[T]):
    """One API request and the parsing of its answer (see the module docstring).

    :param path: built by :func:`~airflow_provider_contacts.hooks.paths.api_path` (checked ids).
    :param operation: contacts.json ``operationId`` (named in errors and logs).
    :param scope: the OAuth scope the request needs (named in scope errors).
    :param parse: the answer's JSON body -> the result (the hook's models).
    :param replay_safe: ``False`` for creates: an ambiguous failure is not resent by the transport.
    """

    method: str
    path: str
    operation: str
    scope: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    body: Any = None
    replay_safe: bool = True

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``Transport.request`` / ``AsyncTransport.request``."""
        return {
            "operation": self.operation,
            "params": self.params,
            "json_body": self.body,
            "scope": self.scope,
            "replay_safe": self.replay_safe,
        }

    def send(self, request: Callable[..., Any]) -> T:
        """Send with a sync ``request(method, path, **options)`` and parse the answer."""
        return self.parse(request(self.method, self.path, **self.options))

    async def asend(self, request: Callable[..., Awaitable[Any]]) -> T:
        """Send with an async ``request(method, path, **options)`` and parse the answer."""
        return self.parse(await request(self.method, self.path, **self.options))


def drive(plan: Plan[R], request: Callable[..., Any]) -> Generator[Any, None, R]:
    """Run ``plan`` with the sync ``request``: yield its records, return its return value.

    A request's error is raised inside the plan at its ``yield``, so the plan may handle it (a
    fallback) or let it propagate to the caller.
    """
    try:
        answer: Any = None
        error: Exception | None = None
        while True:
            try:
                step = plan.send(answer) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            answer = error = None
            if isinstance(step, RequestSpec):
                try:
                    answer = step.send(request)
                except Exception as exc:  # noqa: BLE001 - handed to the plan, which re-raises it
                    error = exc
            else:
                yield step
    finally:
        plan.close()


async def adrive(plan: Plan[Any], request: Callable[..., Awaitable[Any]]) -> AsyncIterator[Any]:
    """Run ``plan`` with the async ``request`` (e.g. ``AsyncTransport.request``): yield its records.

    The twin of :func:`drive` (an async generator has no return value).
    """
    try:
        answer: Any = None
        error: Exception | None = None
        while True:
            try:
                step = plan.send(answer) if error is None else plan.throw(error)
            except StopIteration:
                return
            answer = error = None
            if isinstance(step, RequestSpec):
                try:
                    answer = await step.asend(request)
                except Exception as exc:  # noqa: BLE001 - handed to the plan, which re-raises it
                    error = exc
            else:
                yield step
    finally:
        plan.close()


def outcome(plan: Plan[R], request: Callable[..., Any]) -> R:
    """The return value of a plan that yields no records, run with the sync ``request``."""
    steps = drive(plan, request)
    while True:
        try:
            record = next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        raise TypeError(f"the plan yielded a record ({type(record).__name__}) where only a result was expected")


__all__ = ["Plan", "RequestSpec", "adrive", "drive", "outcome"]
