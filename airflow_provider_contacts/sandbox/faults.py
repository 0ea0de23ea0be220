"""Fault injection and latency for API requests (never for the ``/_sandbox/`` admin routes).

A fraction ``fault_rate`` of API requests gets one kind from ``fault_kinds``:
- ``"500"``, ``"502"``, ``"503"``: answered with that status and HighLevel's error body; the request
  is NOT applied (so a client may retry it safely);
- ``"delay"``: held ``fault_delay_ms`` and then served normally;
- ``"drop"``: the response headers and a partial body are sent, then the connection is closed
  (the client sees a broken response); the request is NOT applied.
``latency_ms`` delays every API request (``asyncio.sleep``; the event loop keeps serving others).
Draws come from a generator seeded by the sandbox seed, so a run's fault pattern is repeatable
for the same request sequence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_MESSAGES = {
    "500": "Internal Server Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
}


@dataclass
class FaultPlan:
    """What to do with one request: ``kind`` is None (serve normally) or a fault kind."""

    kind: str | None


class FaultInjector:
    """Draws faults for requests."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed * 104_729 + 17)

    def draw(self, rate: float, kinds: tuple[str, ...]) -> FaultPlan:
        """Decide the fate of one request."""
        if rate <= 0 or not kinds:
            return FaultPlan(None)
        if self._rng.random() >= rate:
            return FaultPlan(None)
        return FaultPlan(self._rng.choice(kinds))

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (for quirks like 422-after-create)."""
        return rate > 0 and self._rng.random() < rate
