"""Failure alerts of the reconcile DAG through Airflow notifiers (``sync.alerts``): any
``BaseNotifier`` given to ``build_reconcile_dag(notifiers=...)``, the env-var webhook kept as
:class:`GHLWebhookNotifier`; the alert names the DAG, task, location, error and log URL and
never a token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseNotifier

from airflow_provider_contacts.sync.alerts import (
    GHLWebhookNotifier,
    alert_context,
    alert_text,
    failure_alert,
    failure_callbacks,
)


class FileNotifier(BaseNotifier):
    """A notifier of the user's own: appends its (templated) message to a file."""

    template_fields = ("message",)

    def __init__(self, path: Path, message: str = "{{ ghl_alert }}") -> None:
        super().__init__()
        self.path = path
        self.message = message

    def notify(self, context: Any) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(self.message + "\n")


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint standing in for a chat webhook: (URL, bodies received)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/services/T0/B0/hook-secret", received
    server.shutdown()
    thread.join(timeout=10)


def test_a_failed_run_alerts_through_every_notifier_given(
    airflow_db: Path, sandbox: Any, ghl_conn: str, tmp_path: Path,
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_contacts.sync.dag import DEFAULT_DAG_ID, build_reconcile_dag

    url, received = webhook
    monkeypatch.delenv("GHL_RECONCILE_ALERT_WEBHOOK", raising=False)
    sandbox.admin.reset(contacts=3)
    alerts = tmp_path / "alerts.txt"
    dag = build_reconcile_dag(
        DEFAULT_DAG_ID,  # dag.test() serializes the DAG of this id from dags/ and runs these tasks
        notifiers=[FileNotifier(alerts), GHLWebhookNotifier(url)],
        default_args={"retries": 0},
    )
    assert "`FileNotifier`, `GHLWebhookNotifier`" in dag.doc_md
    run = dag.test(run_conf={"target_conn_id": "no_such_target"})
    assert str(run.state) == "failed"

    lines = alerts.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and len(received) == 1
    text = lines[0]
    assert received[0] == {"text": text}  # the same alert line through both notifiers
    assert text.startswith(f"HighLevel sync task failed: {DEFAULT_DAG_ID}.reconcile[0] location {sandbox.location_id} ")
    assert "no_such_target" in text and "AirflowNotFoundException" in text  # the error
    assert f"/dags/{DEFAULT_DAG_ID}/runs/" in text and "/tasks/reconcile/mapped/0" in text  # the log URL
    assert sandbox.token not in text and "hook-secret" not in text


def test_notifier_templates_get_the_alert_and_its_subject() -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    smtp = SmtpNotifier(to="crm-data@example.com", subject="{{ ghl_alert_subject }}", html_content="<p>{{ ghl_alert }}</p>")
    callbacks = failure_callbacks([smtp])
    assert callbacks[0] is alert_context and callbacks[1] is smtp
    context = _context(RuntimeError("the target refused the connection"))
    for callback in callbacks[:1]:
        callback(context)
    smtp.render_template_fields(context)
    assert smtp.subject == "[Airflow] ghl_contacts_reconcile.reconcile location locA failed"
    assert smtp.html_content == f"<p>{alert_text(context)}</p>"
    assert "RuntimeError: the target refused the connection" in smtp.html_content


def test_the_default_is_the_env_var_webhook_and_bad_notifiers_are_named(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    assert failure_callbacks(None) is failure_alert
    monkeypatch.delenv("GHL_RECONCILE_ALERT_WEBHOOK", raising=False)
    failure_alert(_context(RuntimeError("boom")))
    assert received == []  # unset: logged only
    monkeypatch.setenv("GHL_RECONCILE_ALERT_WEBHOOK", url)
    failure_alert(_context(RuntimeError("boom")))
    assert len(received) == 1 and "RuntimeError: boom" in received[0]["text"]
    assert "hook-secret" not in repr(GHLWebhookNotifier())
    with pytest.raises(TypeError, match=r"notifiers\[1\] is a str, not an Airflow notifier"):
        failure_callbacks([FileNotifier(Path("x")), "slack"])


def test_the_alert_never_carries_a_token_or_url_credentials() -> None:
    from airflow.sdk.log import mask_secret

    token = "pit-4f1e2d3c-aaaa-bbbb-cccc-0123456789ab"
    mask_secret(token)  # as Airflow does for a connection's password when a task reads it
    error = RuntimeError(f"401 for Bearer {token} at https://user:s3cr3t@proxy.example.com/x " + "z" * 3000)
    text = alert_text(_context(error))
    assert token not in text and "s3cr3t" not in text
    assert "location locA" in text and len(text) < 1300


class _TI:
    dag_id, task_id, map_index, run_id, try_number = "ghl_contacts_reconcile", "reconcile", -1, "manual__1", 1
    log_url = "http://localhost:8080/dags/ghl_contacts_reconcile/runs/manual__1/tasks/reconcile?try_number=1"

    class task:  # noqa: N801 - stands in for the rendered operator
        op_kwargs = {"location_id": "locA"}


def _context(error: BaseException) -> dict[str, Any]:
    return {"ti": _TI(), "task_instance": _TI(), "exception": error, "run_id": "manual__1"}
