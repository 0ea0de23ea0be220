"""The trigger behind the deferrable HighLevel sensors.

:class:`GHLChangeTrigger` polls one sensor :mod:`condition <airflow_provider_contacts.sensors.conditions>`
through the hook's async reads (:class:`~airflow_provider_contacts.sensors.sources.GHLAsyncHookSource`:
same headers, auth, pacing and retries as the hook's sync calls) until it holds, the overall
timeout passes, or something fails. It always ends with exactly one event:

* ``{"status": "success", "result": {...}}`` - the condition's JSON result;
* ``{"status": "timeout", "message": ...}`` - ``timeout`` seconds passed without a match;
* ``{"status": "error", "message": ..., "error_type": ..., "retryable": bool, "api": {...}}`` - any
  exception (:func:`~airflow_provider_contacts.failures.error_event`: no tokens, URL
  credentials redacted; ``api`` carries HighLevel's message, HTTP status, traceId, operation and
  scope of an API error, so the sensor rebuilds the same error and fails exactly as in poke mode:
  at once for a missing record, scope, location or invalid request, retryably for the rest).

The condition carries its baseline (the tasks or notes seen at the sensor's first check, taken in
the worker before deferring), so a triggerer restart - which re-runs the trigger from its
serialised kwargs - neither moves nor loses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.failures import error_event, is_retryable
from airflow_provider_contacts.params import positive_seconds
from airflow_provider_contacts.redaction import redact_url_credentials
from airflow_provider_contacts.sensors.conditions import GHLCondition
from airflow_provider_contacts.sensors.sources import GHLAsyncHookSource


def describe_timeout(timeout: float | None) -> str:
    """``"within 300 s"``, or ``"before the deferral timeout"`` when there is no own timeout."""
    return f"within {timeout:.0f} s" if timeout is not None else "before the deferral timeout"


class GHLChangeTrigger(BaseTrigger):
    """Poll a condition until it holds (deferrable sensors).

    :param condition: the condition as :meth:`~airflow_provider_contacts.sensors.conditions.GHLCondition.to_kwargs`
        gives it (JSON).
    :param ghl_conn_id: connection of type ``ghl``.
    :param location_id: location override.
    :param poll_interval: seconds between two checks (> 0).
    :param timeout: seconds after which a ``timeout`` event ends the wait (``None``: no own
        timeout; the task's deferral timeout still applies).
    :param silent_fail: the sensor's ``silent_fail``: a check that fails with an error a retry may
        cure (server, network, rate limit) is logged and the next check follows, as poke mode
        does; other errors still end the wait with an error event.
    """

    def __init__(
        self,
        condition: dict[str, Any],
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        poll_interval: float = 60.0,
        timeout: float | None = None,
        silent_fail: bool = False,
    ) -> None:
        super().__init__()
        self.condition = dict(condition)
        self.ghl_conn_id = ghl_conn_id
        self.location_id = location_id
        self.poll_interval = positive_seconds(type(self).__name__, "poll_interval", poll_interval)
        self.timeout = float(timeout) if timeout is not None else None
        self.silent_fail = bool(silent_fail)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-only kwargs."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "condition": self.condition,
                "ghl_conn_id": self.ghl_conn_id,
                "location_id": self.location_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "silent_fail": self.silent_fail,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check, sleep ``poll_interval``, repeat; yield one terminal event."""
        started = time.monotonic()
        checks = 0
        try:
            condition = GHLCondition.from_kwargs(self.condition)
            source = await GHLAsyncHookSource.connect(self.ghl_conn_id, self.location_id)
            while True:
                checks += 1
                try:
                    result = await condition.acheck(source)
                except Exception as exc:
                    if not (self.silent_fail and is_retryable(exc)):
                        raise
                    self.log.error("check %d failed (silent_fail): %s", checks, redact_url_credentials(str(exc)))
                    result = None
                if result is not None:
                    self.log.info("%s holds after %d check(s)", condition.kind, checks)
                    yield TriggerEvent({"status": "success", "result": result, "checks": checks})
                    return
                wait = self.poll_interval
                if self.timeout is not None:
                    wait = min(wait, self.timeout - (time.monotonic() - started))
                if wait <= 0:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"{condition.kind} did not hold {describe_timeout(self.timeout)} ({checks} checks)",
                            "checks": checks,
                        }
                    )
                    return
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error event, never a hang
            self.log.warning("GHLChangeTrigger failed: %s", redact_url_credentials(str(exc) or repr(exc)))
            yield TriggerEvent({**error_event(exc), "checks": checks})


__all__ = ["GHLChangeTrigger", "describe_timeout"]
