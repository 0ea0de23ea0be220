"""Shared base of the HighLevel sensors: poke, reschedule and deferrable modes over one condition.

A sensor builds a :class:`~airflow_provider_contacts.triggers.conditions.Condition` from its
rendered parameters and checks it:

* ``mode="poke"``: in the worker, every ``poke_interval`` seconds, through the hook;
* ``mode="reschedule"``: the same check, the worker slot is freed between pokes;
* ``deferrable=True`` (default: ``[operators] default_deferrable``): the task defers to
  :class:`~airflow_provider_contacts.triggers.changes.GHLChangeTrigger`, which checks the same
  condition with the async client in the triggerer; ``execute_complete`` returns its result or
  raises on a timeout/error event.

``since`` parameters default to the moment the sensor started waiting (the first poke; in
reschedule mode the first try's start; in deferrable mode the moment it defers). The sensor's
XCom value is the condition's small JSON result (ids and key fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from itertools import islice
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException
from airflow_provider_contacts import DEFAULT_CONN_ID
from airflow_provider_contacts.hooks.pagination import MAX_SEARCH_PAGE_LIMIT
from airflow_provider_contacts.operators.base import check_id, clean_location_id, input_error, make_hook, to_jsonable
from airflow_provider_contacts.triggers.changes import GHLChangeTrigger, describe_timeout, positive_seconds
from airflow_provider_contacts.triggers.conditions import Condition, iso

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_contacts.hooks.contacts import ContactsHook


class HookSource:
    """The synchronous condition source: the hook's reads, answers dumped to API-shaped dicts."""

    def __init__(self, hook: ContactsHook) -> None:
        self.hook = hook

    @staticmethod
    def _dump(records: Iterable[Any]) -> list[dict[str, Any]]:
        return [to_jsonable(r) for r in records]

    def search_contacts(self, filters: list[dict[str, Any]], sort: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        page_limit = max(1, min(MAX_SEARCH_PAGE_LIMIT, limit))
        found = self.hook.iter_search_contacts(filters=filters, sort=sort, page_limit=page_limit)
        return self._dump(islice(found, limit))

    def list_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        return self._dump(self.hook.list_tasks(contact_id))

    def get_task(self, contact_id: str, task_id: str) -> list[dict[str, Any]]:
        return self._dump([self.hook.get_task(contact_id, task_id)])

    def list_notes(self, contact_id: str) -> list[dict[str, Any]]:
        return self._dump(self.hook.list_notes(contact_id))

    def open_tasks(self, contact_id: str | None) -> list[dict[str, Any]]:
        if contact_id:
            return [t for t in self.list_tasks(contact_id) if not t.get("completed")]
        return self._dump(self.hook.iter_location_tasks(completed=False))


def _seconds(value: timedelta | float | int | str, owner: str, param: str) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise input_error(owner, param, f"must be a timedelta or a number of seconds, got {value!r}") from None


class GHLBaseSensor(BaseSensorOperator):
    """Base of the HighLevel sensors.

    :param ghl_conn_id: connection of type ``ghl`` (default ``ghl_default``). Templated.
    :param location_id: location override. Templated.
    :param deferrable: wait in the triggerer instead of a worker slot (default: the
        ``[operators] default_deferrable`` setting).
    :param poke_interval: seconds between checks, > 0 (all modes; the trigger uses it too).
    :param timeout: seconds before the sensor gives up (all modes).

    Subclasses implement :meth:`build_condition`.
    """

    template_fields: Sequence[str] = ("ghl_conn_id", "location_id")
    ui_color = "#f2e6ff"

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
        self.poke_interval = positive_seconds(self.poke_interval, "poke_interval", self._owner)
        self.ghl_conn_id = ghl_conn_id
        self.location_id = location_id
        self.deferrable = deferrable
        self._condition: Condition | None = None

    # -- for subclasses --------------------------------------------------------------------
    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}(task_id={self.task_id!r})"

    def _id(self, param: str, optional: bool = False) -> str | None:
        value = getattr(self, param)
        if optional and (value is None or (isinstance(value, str) and value.strip() in ("", "None"))):
            return None
        return check_id(self._owner, param, value)

    def _since(self, value: Any, started_at: datetime, param: str = "since") -> str:
        """The rendered ``since`` as ISO 8601 UTC, or ``started_at`` when it is not set."""
        if value is None:
            return iso(started_at)
        try:
            return iso(value, param)
        except ValueError as exc:
            raise input_error(self._owner, param, str(exc)) from None

    def build_condition(self, started_at: datetime) -> Condition:
        """The condition for the rendered parameters; ``started_at`` is when waiting began."""
        raise NotImplementedError

    def _make_condition(self, started_at: datetime) -> Condition:
        try:
            return self.build_condition(started_at)
        except ValueError as exc:
            raise input_error(self._owner, "parameters", str(exc)) from None

    def before_poke(self, condition: Condition, records: list[dict[str, Any]]) -> None:
        """Hook for subclasses to refuse a mode/state combination before evaluating (see tasks)."""

    @cached_property
    def hook(self) -> ContactsHook:
        """The hook for ``ghl_conn_id`` and ``location_id``."""
        return make_hook(self.ghl_conn_id, self.location_id)

    # -- modes -----------------------------------------------------------------------------
    def _started_at(self, context: Context) -> datetime:
        """When the sensor started waiting: the first try's start in reschedule mode, else this
        try's start (the moment of the call when the context has no task instance)."""
        ti = context.get("ti")
        first = None
        if ti is not None:
            if self.reschedule:
                first = ti.get_first_reschedule_date(context)
            first = first or getattr(ti, "start_date", None)
        if first is None:
            return datetime.now(timezone.utc)
        return first if first.tzinfo else first.replace(tzinfo=timezone.utc)

    def poke(self, context: Context) -> PokeReturnValue:
        """One check through the hook (poke and reschedule modes)."""
        if self._condition is None:
            self._condition = self._make_condition(self._started_at(context))
        condition = self._condition
        records = condition.read(HookSource(self.hook))
        self.before_poke(condition, records)
        if condition.needs_baseline:
            condition.set_baseline(records)
            self.log.info("baseline taken: %s", condition.to_kwargs())
        result = condition.evaluate(records)
        if result is None:
            self.log.info("%s: not yet", condition.kind)
            return PokeReturnValue(is_done=False)
        self.log.info("%s: holds (%s)", condition.kind, {k: v for k, v in result.items() if not isinstance(v, list)})
        return PokeReturnValue(is_done=True, xcom_value=result)

    def execute(self, context: Context) -> Any:
        """Poke/reschedule through the base class, or defer to :class:`GHLChangeTrigger`."""
        self._condition = None
        if not self.deferrable:
            return super().execute(context)
        condition = self._make_condition(self._started_at(context))
        if condition.needs_baseline:
            # Take the baseline here, in the worker, so a triggerer restart cannot move it.
            records = condition.read(HookSource(self.hook))
            condition.set_baseline(records)
        trigger = GHLChangeTrigger(
            condition=condition.to_kwargs(),
            ghl_conn_id=self.ghl_conn_id,
            location_id=clean_location_id(self.location_id),  # as the hook of poke mode reads it
            poll_interval=self.poke_interval,
            timeout=self.timeout,
        )
        self.log.info("deferring: %s every %s s (%s)", condition.kind, self.poke_interval, describe_timeout(self.timeout))
        deferral_timeout = timedelta(seconds=self.timeout) if self.timeout is not None else None
        self.defer(trigger=trigger, method_name="execute_complete", timeout=deferral_timeout)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the result, or raise on a timeout or error event."""
        status = (event or {}).get("status")
        if status == "success":
            self.log.info("condition holds after %s check(s) in the triggerer", event.get("checks"))  # type: ignore[union-attr]
            return event["result"]  # type: ignore[index]
        message = (event or {}).get("message") or f"unexpected trigger event {event!r}"
        if status == "timeout":
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        raise AirflowException(f"{self._owner}: the trigger failed: {(event or {}).get('error_type', '')}: {message}")


__all__ = ["GHLBaseSensor", "HookSource"]
