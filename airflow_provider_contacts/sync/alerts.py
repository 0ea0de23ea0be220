"""Failure alert callback for the reconciliation DAG (``on_failure_callback``).

:func:`failure_alert` logs one clear line (DAG, task, location, run, exception) and, when the
environment variable ``GHL_RECONCILE_ALERT_WEBHOOK`` holds a URL, POSTs it as JSON
(``{"text": ...}``, which Slack, Teams and Mattermost incoming webhooks accept). A failing webhook
is logged, never raised: the alert must not hide the original failure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ALERT_WEBHOOK_ENV", "alert_text", "failure_alert"]

log = logging.getLogger(__name__)
ALERT_WEBHOOK_ENV = "GHL_RECONCILE_ALERT_WEBHOOK"


def alert_text(context: Mapping[str, Any]) -> str:
    """One-line description of the failure in ``context`` (no secrets: ids and the error only)."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    error = context.get("exception")
    where = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else str(task_id)
    return f"HighLevel reconcile failed: {dag_id}.{where} run {run_id}: {type(error).__name__ if error else 'error'}: {error}"


def failure_alert(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: log the failure and post it to ``$GHL_RECONCILE_ALERT_WEBHOOK``."""
    text = alert_text(context)
    log.error("%s", text)
    url = os.environ.get(ALERT_WEBHOOK_ENV)
    if not url:
        return
    import requests

    try:
        requests.post(url, json={"text": text}, timeout=10).raise_for_status()
    except requests.RequestException as exc:
        # Not ``exc`` itself: requests puts the URL in its messages, and a webhook URL is a secret.
        status = getattr(exc.response, "status_code", None)
        log.error(
            "failure alert webhook %s did not accept the alert: %s%s",
            ALERT_WEBHOOK_ENV,
            type(exc).__name__,
            f" (HTTP {status})" if status else "",
        )
