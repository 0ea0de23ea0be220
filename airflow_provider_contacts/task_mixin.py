"""What every HighLevel operator *and* sensor shares: :class:`GHLTaskMixin`.

Both :class:`~airflow_provider_contacts.operators.base.GHLBaseOperator` and
:class:`~airflow_provider_contacts.sensors.base.GHLBaseSensor` list it first among their bases, so
the rules below hold for every task of the provider in one place, below operators and sensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_contacts.failures import fail_fast
from airflow_provider_contacts.params import clean_location_id
from airflow_provider_contacts.redaction import mask_url_credentials

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_contacts.hooks.contacts import GHLContactsHook

#: Entry points of a task that :class:`GHLTaskMixin` guards with :func:`~.failures.fail_fast`.
GUARDED_METHODS: tuple[str, ...] = ("execute", "execute_complete", "poke")


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` raising :func:`~.failures.fail_fast`'s error (chained) for permanent errors."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            replacement = fail_fast(exc, self)
            if replacement is None:
                raise
            raise replacement from exc

    guarded.__ghl_guarded__ = True  # type: ignore[attr-defined]
    return guarded


class GHLTaskMixin:
    """What every HighLevel operator *and* sensor shares (the one place for both):

    * **fail fast**: ``execute``, ``execute_complete`` and ``poke`` - of this class and of every
      subclass that defines them - run under :func:`~airflow_provider_contacts.failures.fail_fast`:
      an error that no retry can cure (record not found, missing scope, another location's data,
      a request HighLevel rejects as invalid, bad configuration, a bad mapping) is re-raised as an
      ``AirflowFailException`` that is still the original error's class, with the fix in its
      message and the original chained (``__cause__``: its traceId, status, operation). Server,
      network, rate-limit and daily-limit errors stay retryable. In poke and reschedule mode a
      sensor's ``soft_fail`` / ``never_fail`` apply to them as to any ``AirflowFailException``.
    * **URL credentials** in rendered template fields (e.g. ``output_path="https://user:token@..."``)
      are registered with Airflow's secrets masker, so the UI's rendered fields and the logs show
      ``***`` (those of the connection's host are handled by the hook's settings).
    * the **hook** for the task's ``ghl_conn_id`` and ``location_id`` (created once per task run)
      and the task's name in error messages (``_owner``).

    List it first among the bases (``class X(GHLTaskMixin, BaseOperator)``); the class sets
    ``ghl_conn_id`` and ``location_id``.
    """

    ghl_conn_id: str
    location_id: str | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in GUARDED_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__ghl_guarded__", False):
                setattr(cls, name, _guarded(method))

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        for field in getattr(self, "template_fields", ()):
            mask_url_credentials(getattr(self, field, None))

    @property
    def _owner(self) -> str:
        """``"<class>(task_id=...)"``: who is speaking in error messages."""
        return f"{type(self).__name__}(task_id={self.task_id!r})"  # type: ignore[attr-defined]

    @cached_property
    def hook(self) -> GHLContactsHook:
        """The hook for the rendered ``ghl_conn_id`` and ``location_id`` (created once per task run).

        (Credentials written into the connection's host are the hook's business: its settings drop
        them from the base URL and register them with Airflow's secrets masker.)
        """
        from airflow_provider_contacts.hooks.contacts import GHLContactsHook

        return GHLContactsHook(ghl_conn_id=self.ghl_conn_id, location_id=clean_location_id(self.location_id))


__all__ = ["GUARDED_METHODS", "GHLTaskMixin"]
