"""Failure alerts of the sync DAGs (reconcile, leads, two-way), through Airflow notifiers.

Every alert names the DAG, the task (with its map index), the HighLevel location, the run, the
error and the task's log URL, in one line (:func:`alert_text`). The error is passed through
Airflow's secrets masker and :func:`~airflow_provider_contacts.redaction.redact_url_credentials`
and cut at 1,000 characters, so a token, a client secret or URL credentials never reach a chat
channel or a mailbox.

How the DAG of :func:`~airflow_provider_contacts.sync.dag.build_reconcile_dag` alerts:

* by default (``notifiers=None``) its ``on_failure_callback`` is :func:`failure_alert`: it logs the
  line and, when the environment variable ``GHL_RECONCILE_ALERT_WEBHOOK`` holds a URL (read when the
  task fails, so it is set on the workers), posts it with :class:`GHLWebhookNotifier`;
* with ``notifiers=[...]`` (any :class:`airflow.sdk.BaseNotifier`: the SMTP provider's
  ``SmtpNotifier``, the Slack provider's ``SlackNotifier`` / ``SlackWebhookNotifier``, a
  :class:`GHLWebhookNotifier` with its own URL, your own) it is ``[alert_context, *notifiers]``:
  :func:`alert_context` logs the line and puts it into the task's context as ``ghl_alert`` (and a
  short ``ghl_alert_subject``), so the notifiers' templates can use it::

      from airflow.providers.smtp.notifications.smtp import SmtpNotifier

      build_reconcile_dag(notifiers=[
          SmtpNotifier(to="crm-data@example.com", subject="{{ ghl_alert_subject }}",
                       html_content="{{ ghl_alert }}"),
      ])

A notifier that fails is logged and never raised: an alert must not hide the original failure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

from airflow.sdk import BaseNotifier

__all__ = [
    "ALERT_PREFIX",
    "ALERT_WEBHOOK_ENV",
    "GHLWebhookNotifier",
    "alert_context",
    "alert_details",
    "alert_text",
    "failure_alert",
    "failure_callbacks",
]

log = logging.getLogger(__name__)
#: Environment variable with the default webhook URL (Slack, Teams, Mattermost incoming webhooks).
ALERT_WEBHOOK_ENV = "GHL_RECONCILE_ALERT_WEBHOOK"
#: Context keys :func:`alert_context` adds for the notifiers' templates.
ALERT_KEY = "ghl_alert"
ALERT_SUBJECT_KEY = "ghl_alert_subject"
_MAX_ERROR_CHARS = 1000
#: How every alert line starts (the reconcile, leads and two-way DAGs send it alike).
ALERT_PREFIX = "HighLevel sync task failed"


def _safe(text: str) -> str:
    """``text`` without registered secrets (Airflow's masker: connection passwords and sensitive
    extras fetched in this process) nor URL credentials, cut to :data:`_MAX_ERROR_CHARS`."""
    from airflow_provider_contacts.redaction import redact_url_credentials

    try:
        from airflow.sdk.log import redact

        text = str(redact(text))
    except Exception:  # noqa: BLE001 - the masker is best effort; URL credentials still go
        pass
    text = redact_url_credentials(text)
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _location_of(ti: Any) -> str | None:
    """The HighLevel location of a reconcile task instance: its ``location_id`` argument (the
    mapped task's expanded value), else its rendered map index."""
    task = getattr(ti, "task", None)
    op_kwargs = getattr(task, "op_kwargs", None)
    if isinstance(op_kwargs, Mapping) and op_kwargs.get("location_id"):
        return str(op_kwargs["location_id"])
    rendered = getattr(ti, "rendered_map_index", None)
    return str(rendered) if rendered else None


def alert_details(context: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of the failure in ``context`` (a task callback's context), all JSON-able:
    ``dag_id``, ``task_id``, ``map_index`` (-1: not mapped), ``location_id`` (``None`` for tasks
    that are not per location), ``run_id``, ``try_number``, ``error`` (the exception's type and
    message, secrets redacted; ``None`` when the context has none) and ``log_url``."""
    ti = context.get("task_instance") or context.get("ti")
    dag = context.get("dag")
    error = context.get("exception")
    map_index = getattr(ti, "map_index", -1)
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # noqa: BLE001 - a property reading the config
        log_url = None
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": map_index if isinstance(map_index, int) else -1,
        "location_id": _location_of(ti) if ti is not None else None,
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error": _safe(f"{type(error).__name__}: {error}") if error is not None else None,
        "log_url": log_url if isinstance(log_url, str) else None,
    }


def alert_text(context: Mapping[str, Any]) -> str:
    """One line describing the failure in ``context``: ``HighLevel sync task failed:
    <dag>.<task>[<map index>] location <id> run <run id> (try <n>): <error> | log: <url>``. The
    same words for every DAG sending it (reconcile, leads, two-way): the DAG and the task say which
    failed. No secrets: ids, the redacted error and the log URL only."""
    d = alert_details(context)
    where = f"{d['task_id'] or '?'}" + (f"[{d['map_index']}]" if d["map_index"] >= 0 else "")
    parts = [f"{ALERT_PREFIX}: {d['dag_id'] or '?'}.{where}"]
    if d["location_id"]:
        parts.append(f"location {d['location_id']}")
    parts.append(f"run {d['run_id'] or '?'}")
    if d["try_number"]:
        parts.append(f"(try {d['try_number']})")
    text = " ".join(parts) + f": {d['error'] or 'error'}"
    if d["log_url"]:
        text += f" | log: {d['log_url']}"
    return text


def _subject(context: Mapping[str, Any]) -> str:
    d = alert_details(context)
    location = f" location {d['location_id']}" if d["location_id"] else ""
    return f"[Airflow] {d['dag_id'] or '?'}.{d['task_id'] or '?'}{location} failed"


def alert_context(context: MutableMapping[str, Any]) -> None:
    """Task callback: log the alert line and add it to ``context`` as ``ghl_alert`` (and
    ``ghl_alert_subject``) for the notifiers that follow it in ``on_failure_callback``."""
    text = alert_text(context)
    log.error("%s", text)
    try:
        context[ALERT_KEY] = text
        context[ALERT_SUBJECT_KEY] = _subject(context)
    except TypeError:  # a read-only mapping: the notifiers compute the text themselves
        pass


class GHLWebhookNotifier(BaseNotifier):
    """POST the failure as JSON ``{"text": ...}`` to an incoming webhook (Slack, Microsoft Teams,
    Mattermost, Google Chat and most chat tools accept that body).

    :param url: the webhook URL; ``None``: the environment variable ``url_env`` read when the
        notifier runs (nothing is sent while it is unset or empty). The URL is a secret (Slack's
        carries its token in the path): it is never logged nor templated.
    :param url_env: name of that variable (default ``GHL_RECONCILE_ALERT_WEBHOOK``).
    :param text: the message (a Jinja template, rendered with the task's context); ``None``: the
        context's ``ghl_alert`` when :func:`alert_context` ran before, else :func:`alert_text`.
    :param timeout_s: seconds for the POST (connect and read).

    A webhook that refuses or cannot be reached is logged (the exception type and HTTP status
    only: ``requests`` quotes the URL in its messages) and not raised.
    """

    template_fields = ("text",)

    def __init__(
        self,
        url: str | None = None,
        *,
        url_env: str = ALERT_WEBHOOK_ENV,
        text: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self._url = url
        self.url_env = url_env
        self.text = text
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # the URL stays out of Airflow's "Failed to run task callback" line
        return f"{type(self).__name__}(url_env={self.url_env!r})"

    @property
    def url(self) -> str | None:
        """The URL the next notification goes to (``None``: nothing is sent)."""
        return self._url or os.environ.get(self.url_env) or None

    def notify(self, context: Any) -> None:
        """Send the alert (see the class docstring)."""
        url = self.url
        if not url:
            log.debug("no alert webhook: %s is not set", self.url_env)
            return
        text = self.text or context.get(ALERT_KEY) or alert_text(context)
        import requests

        try:
            requests.post(url, json={"text": text}, timeout=self.timeout_s).raise_for_status()
        except requests.RequestException as exc:
            status = getattr(exc.response, "status_code", None)
            log.error(
                "failure alert webhook %s did not accept the alert: %s%s",
                "(" + self.url_env + ")" if not self._url else "(url given to the notifier)",
                type(exc).__name__,
                f" (HTTP {status})" if status else "",
            )


def failure_alert(context: MutableMapping[str, Any]) -> None:
    """The reconcile DAG's default ``on_failure_callback``: :func:`alert_context` (log the line),
    then :class:`GHLWebhookNotifier` to ``$GHL_RECONCILE_ALERT_WEBHOOK`` when it is set."""
    alert_context(context)
    notifier = GHLWebhookNotifier()
    if notifier.url:
        _run_notifier(notifier, context)


def _run_notifier(notifier: Callable[[Any], None], context: Any) -> None:
    try:
        notifier(context)
    except Exception as exc:  # noqa: BLE001 - an alert must not hide the failure it reports
        log.error("failure notifier %r failed: %s", notifier, type(exc).__name__)


def failure_callbacks(notifiers: Iterable[BaseNotifier | Callable[..., Any]] | None) -> Any:
    """What ``on_failure_callback`` gets for ``notifiers``: :func:`failure_alert` for ``None``,
    else ``[alert_context, *notifiers]``.

    :raises TypeError: an item is neither a ``BaseNotifier`` nor a callable (names the item).
    """
    if notifiers is None:
        return failure_alert
    items = list(notifiers)
    for i, item in enumerate(items):
        if not isinstance(item, BaseNotifier) and not callable(item):
            raise TypeError(
                f"notifiers[{i}] is a {type(item).__name__}, not an Airflow notifier: pass BaseNotifier "
                "instances (e.g. SmtpNotifier(...), GHLWebhookNotifier(url)) or callables taking the context"
            )
    return [alert_context, *items]
