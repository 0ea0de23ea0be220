"""Airflow plugin that mounts the webhook receiver on the API server at ``/ghl-webhooks``.

Registered through the ``airflow.plugins`` entry point of the distribution, so installing the
provider is enough: the API server serves ``POST /ghl-webhooks/events`` and
``GET /ghl-webhooks/health`` with no new service (point HighLevel's webhook URL at
``https://<airflow>/ghl-webhooks/events``). The endpoint needs no Airflow login: HighLevel cannot
log in; the event's signature is its authentication (:mod:`.verify`).

Settings come from the ``[ghl_webhooks]`` section of Airflow's configuration
(:meth:`.app.WebhookSettings.from_airflow_config`); ``[ghl_webhooks] enabled = False`` mounts
nothing. Every Airflow component loads plugins, so this module imports neither FastAPI nor the
database layer: the app is built on the API server's first request to it.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

__all__ = ["URL_PREFIX", "GHLWebhooksPlugin", "LazyWebhookApp"]

#: Where the API server mounts the receiver.
URL_PREFIX = "/ghl-webhooks"


class LazyWebhookApp:
    """An ASGI app that builds the receiver (:func:`.app.create_app_from_airflow_config`) on its
    first request and hands every request to it."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _build(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_contacts.webhooks.app import create_app_from_airflow_config

                    self._app = create_app_from_airflow_config()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._build()(scope, receive, send)

    def __repr__(self) -> str:
        return "LazyWebhookApp(airflow_provider_contacts.webhooks.app.create_app_from_airflow_config)"


def _enabled() -> bool:
    from airflow.configuration import conf

    try:
        return conf.getboolean("ghl_webhooks", "enabled", fallback=True)
    except Exception:  # noqa: BLE001 - a malformed value: keep the documented default
        return True


class GHLWebhooksPlugin(AirflowPlugin):
    """Mounts the HighLevel webhook receiver (``fastapi_apps``) on the Airflow API server."""

    name = "ghl_webhooks"
    fastapi_apps = (
        [{"app": LazyWebhookApp(), "url_prefix": URL_PREFIX, "name": "HighLevel webhooks"}] if _enabled() else []
    )
