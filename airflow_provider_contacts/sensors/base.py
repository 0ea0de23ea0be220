"""Shared base of the HighLevel sensors: poke, reschedule and deferrable modes over one condition.

A sensor builds a :class:`~airflow_provider_contacts.sensors.conditions.GHLCondition` from its
rendered parameters and checks it - the same condition, with the same reads and the same decision,
in every mode, so every mode gives the same answer:

* ``mode="poke"``: in the worker, every ``poke_interval`` seconds, through the hook
  (:class:`~airflow_provider_contacts.sensors.sources.GHLHookSource`); the condition
  (and its baseline) stays in memory between pokes;
* ``mode="reschedule"``: the same check, the worker slot is freed between pokes. A new process runs
  each poke, so what the condition must remember between pokes - the moment waiting began (the
  default ``since``) and the baseline (the tasks or notes seen at the first poke) - is kept in the
  task instance's state store (``context["task_state_store"]``, Airflow 3.3) under the key
  :data:`STATE_KEY`, stamped with that moment. A poke that is the first of its wait (Airflow's
  ``get_first_reschedule_date`` is ``None``: no reschedule yet, e.g. after a clear) starts afresh;
  later pokes restore it; if the sensor's parameters changed in between, the baseline is taken
  again. The key is deleted when the sensor succeeds. Without a state store (older Airflow), a
  condition that needs a baseline fails at once unless it can do without (dated tasks and ``since``)
  or its baseline is given as a parameter (``known_task_ids``).
* ``deferrable=True`` (default: ``[operators] default_deferrable``): the first check runs in the
  worker (it takes the baseline, and returns at once when the condition already holds), then the
  task defers to :class:`~airflow_provider_contacts.triggers.changes.GHLChangeTrigger`, which
  carries the condition with its baseline and checks it in the triggerer through the hook's async
  twins (:class:`~airflow_provider_contacts.sensors.sources.GHLAsyncHookSource`);
  ``execute_complete`` returns its result, or raises what the trigger's error event describes
  (rebuilt as the same error class) or ``AirflowSensorTimeout``.

``since`` parameters default to the moment the sensor started waiting: the task instance's start
(in reschedule mode the first poke's, restored from the state store). The sensor's XCom value is
the condition's small JSON result (ids and key fields).

Errors: a record that does not exist (404, or the live API's 400 ``Contact not found``), a missing
scope, another location's token, an invalid request or bad configuration fail the task at once
with the fix in the message (:class:`~airflow_provider_contacts.task_mixin.GHLTaskMixin`,
:mod:`~airflow_provider_contacts.failures`) - in every mode, and subject to
``soft_fail`` / ``never_fail`` as any ``AirflowFailException``; server, network and rate-limit
errors stay retryable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.failures import error_from_event
from airflow_provider_contacts.params import (
    check_id,
    clean_location_id,
    input_error,
    is_unset,
    iso,
    positive_seconds,
    to_utc,
)
from airflow_provider_contacts.redaction import redact_url_credentials
from airflow_provider_contacts.sensors.conditions import GHLCondition
from airflow_provider_contacts.sensors.sources import GHLHookSource
from airflow_provider_contacts.task_mixin import GHLTaskMixin
from airflow_provider_contacts.triggers.changes import GHLChangeTrigger, describe_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Key of a reschedule-mode sensor's wait in the task state store:
#: ``{"started_at": <ISO 8601>, "condition": <GHLCondition.to_kwargs(), baseline included>}``.
STATE_KEY = "ghl_sensor_wait"


class GHLBaseSensor(GHLTaskMixin, BaseSensorOperator):
    """Base of the HighLevel sensors.

    :param ghl_conn_id: connection of type ``ghl`` (default ``ghl_default``). Templated.
    :param location_id: location override. Templated.
    :param deferrable: wait in the triggerer instead of a worker slot (default: the
        ``[operators] default_deferrable`` setting).
    :param poke_interval: seconds between checks, > 0 (all modes; the trigger uses it too).
    :param timeout: seconds before the sensor gives up (all modes).

    Subclasses implement :meth:`build_condition`; ``baseline_param`` names the parameter that can
    give the baseline instead of the first check (named in the error of reschedule mode without a
    state store).
    """

    template_fields: Sequence[str] = ("ghl_conn_id", "location_id")
    ui_color = "#f2e6ff"
    #: Parameter that supplies the baseline (e.g. ``known_task_ids``), if the sensor has one.
    baseline_param: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        ghl_conn_id: str = DEFAULT_CONN_ID,
        location_id: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Airflow accepts 0, which would poll the API in a tight loop in every mode.
        self.poke_interval = positive_seconds(self._owner, "poke_interval", self.poke_interval)
        self.ghl_conn_id = ghl_conn_id
        self.location_id = location_id
        self.deferrable = deferrable
        self._condition: GHLCondition | None = None
        self._started_at_iso: str | None = None
        self._unsaved = False

    # -- for subclasses --------------------------------------------------------------------
    def _id(self, param: str, optional: bool = False) -> str | None:
        """The templated id parameter ``param``, checked; ``None`` when ``optional`` and unset."""
        value = getattr(self, param)
        if optional and is_unset(value):
            return None
        return check_id(self._owner, param, value)

    def _since(self, value: Any, started_at: datetime, param: str = "since") -> str:
        """The rendered ``since`` as ISO 8601 UTC, or ``started_at`` when it is not set."""
        if is_unset(value):
            return iso(started_at)
        try:
            return iso(value, param)
        except ValueError as exc:
            raise input_error(self._owner, param, str(exc)) from None

    def build_condition(self, started_at: datetime) -> GHLCondition:
        """The condition for the rendered parameters; ``started_at`` is when waiting began."""
        raise NotImplementedError

    def _make_condition(self, started_at: datetime) -> GHLCondition:
        try:
            return self.build_condition(started_at)
        except ValueError as exc:
            raise input_error(self._owner, "parameters", str(exc)) from None

    # -- when the wait began, and what it remembers ----------------------------------------
    def _store(self, context: Context) -> Any:
        """The task state store when this poke must keep state for the next one (reschedule mode)."""
        if not self.reschedule or self.deferrable:
            return None
        return context.get("task_state_store")

    def _begin(self, context: Context) -> GHLCondition:
        """The condition of this wait: restored from the state store in a reschedule-mode poke that
        is not the first of its wait (same parameters), else built anew from when waiting began -
        this try's start, or in reschedule mode without a saved wait Airflow's first reschedule
        (the moment of the call when the context has no task instance)."""
        store = self._store(context)
        ti = context.get("ti")
        first_reschedule = ti.get_first_reschedule_date(context) if (self.reschedule and ti is not None) else None
        if store is not None and first_reschedule is not None:
            saved = store.get(STATE_KEY)
            if isinstance(saved, dict) and saved.get("started_at") and isinstance(saved.get("condition"), dict):
                started = to_utc(saved["started_at"], "started_at")
                fresh = self._make_condition(started)
                try:
                    restored: GHLCondition | None = GHLCondition.from_kwargs(saved["condition"])
                except (TypeError, ValueError):
                    restored = None
                self._started_at_iso = iso(started)
                if restored is not None and restored.parameters() == fresh.parameters():
                    self.log.info("restored the wait that began at %s (%s)", self._started_at_iso, restored.kind)
                    return restored
                self.log.warning(
                    "%s: the parameters changed since the wait began at %s; taking a new baseline",
                    self._owner, self._started_at_iso,
                )
                self._unsaved = True
                return fresh
        began = first_reschedule or getattr(ti, "start_date", None)
        started = to_utc(began, "start_date") if began is not None else datetime.now(timezone.utc)
        self._started_at_iso = iso(started)
        self._unsaved = True
        return self._make_condition(started)

    def _check_state_kept(self, context: Context, condition: GHLCondition, records: list[dict[str, Any]]) -> None:
        """Refuse a reschedule-mode wait whose baseline would be lost between pokes."""
        if (
            self.reschedule
            and not self.deferrable
            and self._store(context) is None
            and not condition.stateless_ok(records)
        ):
            alternative = f"pass {self.baseline_param} (the baseline), " if self.baseline_param else ""
            raise input_error(
                self._owner,
                self.baseline_param or "mode",
                "mode='reschedule' needs the task state store (context['task_state_store'], Airflow 3.3+) to "
                f"keep the baseline taken at the first poke, and this Airflow has none; {alternative}or use "
                "mode='poke' or deferrable=True",
            )

    def _save(self, context: Context, condition: GHLCondition) -> None:
        store = self._store(context)
        if store is None or not self._unsaved:
            return
        store.set(STATE_KEY, {"started_at": self._started_at_iso, "condition": condition.to_kwargs()})
        self._unsaved = False

    def _forget(self, context: Context) -> None:
        store = self._store(context)
        if store is not None:
            with contextlib.suppress(Exception):  # only housekeeping
                store.delete(STATE_KEY)

    # -- modes -----------------------------------------------------------------------------
    def poke(self, context: Context) -> PokeReturnValue:
        """One check through the hook (poke and reschedule modes, and the deferrable mode's first)."""
        if self._condition is None:
            self._condition = self._begin(context)
        condition = self._condition
        records = condition.read(GHLHookSource(self.hook))
        if condition.needs_baseline:
            self._check_state_kept(context, condition, records)
            condition.set_baseline(records)
            self._unsaved = True
            self.log.info("%s: baseline taken (%d record(s))", condition.kind, len(records))
        result = condition.evaluate(records)
        if result is None:
            self._save(context, condition)
            self.log.info("%s: not yet", condition.kind)
            return PokeReturnValue(is_done=False)
        self._forget(context)
        self.log.info("%s: holds (%s)", condition.kind, {k: v for k, v in result.items() if not isinstance(v, list)})
        return PokeReturnValue(is_done=True, xcom_value=result)

    def _first_check(self, context: Context) -> PokeReturnValue:
        """The deferrable mode's check in the worker, with the failure rules of poke mode
        (``BaseSensorOperator.execute``): ``soft_fail`` / ``never_fail`` skip on an
        ``AirflowFailException``; ``silent_fail`` leaves other errors to the trigger's checks."""
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowFailException) as exc:
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping: {exc}") from exc
            raise
        except AirflowSkipException:
            raise
        except Exception as exc:
            if getattr(self, "silent_fail", False):
                self.log.error(
                    "%s: first check failed (silent_fail=True, the trigger checks again): %s",
                    self._owner, redact_url_credentials(str(exc)),
                )
                return PokeReturnValue(is_done=False)
            if getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping: {exc}") from exc
            raise

    def execute(self, context: Context) -> Any:
        """Poke/reschedule through the base class, or check once and defer to :class:`GHLChangeTrigger`."""
        self._condition = None
        if not self.deferrable:
            return super().execute(context)
        checked = self._first_check(context)  # takes the baseline here, so a triggerer restart cannot move it
        if checked.is_done:
            return checked.xcom_value
        condition = self._condition if self._condition is not None else self._begin(context)
        trigger = GHLChangeTrigger(
            condition=condition.to_kwargs(),
            ghl_conn_id=self.ghl_conn_id,
            location_id=clean_location_id(self.location_id),  # as the hook of poke mode reads it
            poll_interval=self.poke_interval,
            timeout=self.timeout,
            silent_fail=bool(getattr(self, "silent_fail", False)),
        )
        self.log.info("deferring: %s every %s s (%s)", condition.kind, self.poke_interval, describe_timeout(self.timeout))
        deferral_timeout = timedelta(seconds=self.timeout) if self.timeout is not None else None
        self.defer(trigger=trigger, method_name="execute_complete", timeout=deferral_timeout)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the result; on a timeout raise ``AirflowSensorTimeout``
        (a skip with ``soft_fail``); on an error event raise the error it describes, rebuilt as its
        own class, so it fails the task (at once, or retryably) exactly as in poke mode."""
        status = (event or {}).get("status")
        if status == "success":
            self.log.info("condition holds after %s check(s) in the triggerer", event.get("checks"))  # type: ignore[union-attr]
            return event["result"]  # type: ignore[index]
        if status == "timeout":
            message = (event or {}).get("message") or "the trigger timed out"
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        if status == "error":
            error = error_from_event(event)  # type: ignore[arg-type]
            if getattr(self, "never_fail", False):  # as poke mode: never_fail skips on any error
                raise AirflowSkipException(f"Skipping due to never_fail: {error}") from error
            raise error
        raise error_from_event({"error_type": "UnexpectedEvent", "message": f"unexpected trigger event {event!r}"})


__all__ = ["STATE_KEY", "GHLBaseSensor"]
