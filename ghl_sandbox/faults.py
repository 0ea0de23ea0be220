"""Fault injection and latency for API requests (never for the ``/_sandbox/`` admin routes).

Two draws decide the fate of a request that passed auth, limits, version and scopes:

1. ``fault_rate`` of all API requests get one kind from ``fault_kinds``;
2. writes (operations that change something: every POST/PUT/DELETE except the two searches,
   ``POST /contacts/search`` and ``POST /locations/{id}/tasks/search``; ``POST /oauth/token`` is a
   write too, since a refresh spends the refresh token) that the first draw left alone get a second
   draw: ``write_fault_rate`` of them get one kind from ``write_fault_kinds`` (default
   ``applied_lost``).

``fault_operations`` (operationIds) limits both draws to those operations; ``fault_exempt_operations``
are never faulted (e.g. ``("get-access-token",)`` to keep the OAuth token endpoint clean).

Kinds:

- ``"500"``, ``"502"``, ``"503"``, ``"504"``: answered with that status and HighLevel's error body;
  the request is NOT applied (so a client may retry it safely);
- ``"delay"``: held ``fault_delay_ms`` and then served normally;
- ``"drop"``: the response headers and a partial body are sent, then the connection is closed
  (the client sees a broken response); the request is NOT applied;
- ``"applied_lost"``: the request IS applied (the route runs to the end), then its answer is lost
  in one of ``lost_answer_modes``: ``close`` (the connection is closed without a byte of response),
  ``drop`` (headers and part of a body, then closed), ``502`` or ``504`` (a gateway's error answer).
  A client that resends such a write blindly makes it twice: a second contact, task or note, a
  second refresh with an already spent refresh token.

``latency_ms`` delays every API request (``asyncio.sleep``; the event loop keeps serving others).
Draws come from a generator seeded by the sandbox seed, so a run's fault pattern is repeatable
for the same request sequence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import SandboxConfig

FAULT_MESSAGES = {
    "500": "Internal Server Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}

#: POST operations that only read: never "writes" for ``write_fault_rate``.
READ_ONLY_POSTS = frozenset({"search-contacts-advanced", "task-search"})

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_write(method: str, operation_id: str) -> bool:
    """Whether a request changes something on the server (see the module docstring)."""
    return method.upper() in WRITE_METHODS and operation_id not in READ_ONLY_POSTS


@dataclass
class FaultPlan:
    """What to do with one request: ``kind`` is None (serve normally) or a fault kind; ``mode`` is
    how an ``applied_lost`` fault loses the answer; ``write_draw`` whether the write draw chose it."""

    kind: str | None
    mode: str | None = None
    write_draw: bool = False


class FaultInjector:
    """Draws faults for requests."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed * 104_729 + 17)

    def draw(self, rate: float, kinds: tuple[str, ...], lost_modes: tuple[str, ...] = ("close",)) -> FaultPlan:
        """Decide the fate of one request with a single draw (``rate`` of ``kinds``)."""
        if rate <= 0 or not kinds:
            return FaultPlan(None)
        if self._rng.random() >= rate:
            return FaultPlan(None)
        kind = self._rng.choice(kinds)
        mode = self._rng.choice(lost_modes) if kind == "applied_lost" else None
        return FaultPlan(kind, mode)

    def plan(self, config: SandboxConfig, operation_id: str, write: bool) -> FaultPlan:
        """Both draws of the module docstring for one request of ``operation_id``."""
        if operation_id in config.fault_exempt_operations or (
            config.fault_operations and operation_id not in config.fault_operations
        ):
            return FaultPlan(None)
        plan = self.draw(config.fault_rate, config.fault_kinds, config.lost_answer_modes)
        if plan.kind is None and write:
            plan = self.draw(config.write_fault_rate, config.write_fault_kinds, config.lost_answer_modes)
            plan.write_draw = plan.kind is not None
        return plan

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (for quirks like 422-after-create)."""
        return rate > 0 and self._rng.random() < rate
