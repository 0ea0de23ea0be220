"""``SandboxAdmin``: an HTTP client of the sandbox's ``/_sandbox/`` admin surface (see ``admin.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


class SandboxAdminError(RuntimeError):
    """An admin call failed; carries the HTTP status and the sandbox's message."""

    def __init__(self, status: int, message: Any) -> None:
        super().__init__(f"sandbox admin call failed ({status}): {message}")
        self.status = status
        self.message = message


class SandboxAdmin:
    """Drive a running sandbox like a CRM user and read what happened.

    ``base_url`` is the sandbox's root URL (``http://127.0.0.1:<port>``).
    """

    def __init__(self, base_url: str, on_reset: Callable[[dict[str, Any]], None] | None = None,
                 timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_sandbox", timeout=timeout_s)
        self._on_reset = on_reset

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            try:
                message = response.json().get("message")
            except ValueError:
                message = response.text
            raise SandboxAdminError(response.status_code, message)
        return response.json()

    # -- data -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``location_id``, ``token``, ``company_id``, ``locations``, ``api_version``."""
        return self._call("GET", "/info")

    def dump(self, location_id: str | None = None, shape: str | None = None) -> dict[str, Any]:
        """``{"contacts", "tasks", "notes", "customFields"}`` of a location, API-shaped: the truth to
        compare a sync target with.

        ``shape``: ``"search"`` (default) gives contacts as ``POST /contacts/search`` shows them
        (live mode: ``address``, ``dateOfBirth`` in epoch ms, ``businessName`` ...; no
        ``searchAfter``, no search lag), ``"get"`` as ``GET /contacts/{id}`` shows them
        (``address1``, ``dateOfBirth`` as a string).
        """
        params = {k: v for k, v in (("locationId", location_id), ("shape", shape)) if v}
        return self._call("GET", "/dump", params=params or None)

    def create_contact(self, location_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a contact (UpdateContactDto fields); no duplicate check, like a CRM user."""
        body = {**fields, **({"locationId": location_id} if location_id else {})}
        return self._call("POST", "/contacts", json=body)["contact"]

    def update_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Update a contact (no fields: just touch ``dateUpdated``)."""
        return self._call("PUT", f"/contacts/{contact_id}", json=fields)["contact"]

    def delete_contact(self, contact_id: str) -> None:
        """Delete a contact with its tasks and notes."""
        self._call("DELETE", f"/contacts/{contact_id}")

    def create_task(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Create a task (``title``, ``dueDate``, ``completed`` have defaults)."""
        return self._call("POST", f"/contacts/{contact_id}/tasks", json=fields)["task"]

    def update_task(self, contact_id: str, task_id: str, **fields: Any) -> dict[str, Any]:
        """Update a task."""
        return self._call("PUT", f"/contacts/{contact_id}/tasks/{task_id}", json=fields)["task"]

    def delete_task(self, contact_id: str, task_id: str) -> None:
        """Delete a task."""
        self._call("DELETE", f"/contacts/{contact_id}/tasks/{task_id}")

    def create_note(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Create a note (``body`` has a default)."""
        return self._call("POST", f"/contacts/{contact_id}/notes", json=fields)["note"]

    def update_note(self, contact_id: str, note_id: str, **fields: Any) -> dict[str, Any]:
        """Update a note."""
        return self._call("PUT", f"/contacts/{contact_id}/notes/{note_id}", json=fields)["note"]

    def delete_note(self, contact_id: str, note_id: str) -> None:
        """Delete a note."""
        self._call("DELETE", f"/contacts/{contact_id}/notes/{note_id}")

    # -- counters and config -------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """``{"total", "by_operation", "status_429", "status_401", "faults", "faults_by_kind",
        "lost_answers_by_mode", "applied_then_lost", "applied_then_lost_by_operation", "oauth"}``;
        ``oauth``: ``{"access_tokens_issued", "authorization_code_grants", "refresh_grants",
        "refresh_token_reuses", "unknown_refresh_tokens", "expired_access_token_calls",
        "invalid_grants"}``; ``limits``: one ``{"integration_id", "location_id", "admitted",
        "throttled", "peak", "window_s", "max", "active_s", "rate_per_s"}`` per rate-limit key
        (``peak``: most requests admitted in any sliding ``window_s``)."""
        return self._call("GET", "/counters")

    def oauth_stats(self) -> dict[str, int]:
        """The ``oauth`` part of :meth:`counters`: ``refresh_token_reuses`` counts refresh tokens
        presented again after they were spent (HighLevel counts every reuse)."""
        return self.counters()["oauth"]

    def reset_counters(self) -> None:
        """Zero the counters."""
        self._call("POST", "/counters/reset")

    def config(self) -> dict[str, Any]:
        """The current ``SandboxConfig`` as a dict."""
        return self._call("GET", "/config")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change ``SandboxConfig`` fields at run time (e.g. ``rate_limit="5/1"``, ``fault_rate=0.1``)."""
        return self._call("POST", "/config", json=settings)

    def set_location_settings(self, location_id: str, *, allow_duplicates: bool | None) -> dict[str, Any]:
        """Per-location "Allow Duplicate Contact" (``None``: follow the config)."""
        return self._call("PUT", f"/locations/{location_id}/settings", json={"allow_duplicates": allow_duplicates})

    # -- auth ---------------------------------------------------------------------------------------
    def issue_token(self, scopes: list[str] | None = None, lifetime_s: float | None = None,
                    location_id: str | None = None, missing_scopes: list[str] | None = None,
                    user_type: str | None = None) -> str:
        """Mint an access token for a location with ``scopes`` (default: the sandbox's default scopes,
        every scope unless configured otherwise) minus ``missing_scopes``, e.g.
        ``issue_token(missing_scopes=["locations/tasks.readonly"])``; ``user_type="Company"``: an
        agency token (like an agency's Private Integration token: it cannot mint location tokens)."""
        body: dict[str, Any] = {"scopes": scopes, "lifetime_s": lifetime_s, "location_id": location_id,
                                "missing_scopes": missing_scopes}
        if user_type:
            body["user_type"] = user_type
        return self._call("POST", "/tokens", json=body)["access_token"]

    def create_oauth_client(self, scopes: list[str] | None = None,
                            missing_scopes: list[str] | None = None) -> tuple[str, str]:
        """Register an OAuth app: ``(client_id, client_secret)``."""
        data = self._call("POST", "/oauth/clients", json={"scopes": scopes, "missing_scopes": missing_scopes})
        return data["client_id"], data["client_secret"]

    def authorize(self, client_id: str, location_id: str | None = None, user_type: str = "Location",
                  company_id: str | None = None) -> str:
        """The marketplace consent step: an authorization code for ``POST /oauth/token``."""
        return self._call("POST", "/oauth/authorize", json={"client_id": client_id, "location_id": location_id,
                                                            "user_type": user_type, "company_id": company_id})["code"]

    def install_oauth_app(self, scopes: list[str] | None = None, missing_scopes: list[str] | None = None,
                          user_type: str = "Location", location_id: str | None = None, *,
                          location_ids: list[str] | None = None,
                          install_to_future_locations: bool | None = None) -> dict[str, Any]:
        """A marketplace install in one step (app, consent, code exchange; never faulted): the token
        answer (``access_token``, ``refresh_token``, ``expires_in`` ...) plus ``client_id``,
        ``client_secret`` and ``app_id``. Feed it to ``SandboxServer.oauth_conn_json()`` (or, for
        ``user_type="Company"``, ``agency_conn_json()``). An agency (``Company``) install covers
        ``location_ids`` (default: every location) and, unless ``install_to_future_locations`` is
        false, each location added later."""
        body: dict[str, Any] = {"scopes": scopes, "missing_scopes": missing_scopes, "user_type": user_type,
                                "location_id": location_id}
        if location_ids is not None:
            body["location_ids"] = list(location_ids)
        if install_to_future_locations is not None:
            body["install_to_future_locations"] = install_to_future_locations
        return self._call("POST", "/oauth/install", json=body)

    def installations(self, app_id: str) -> dict[str, Any]:
        """``{"app_id", "installToFutureLocations", "locations": {location id: installedAt}}`` of an
        app (its app id or client id)."""
        return self._call("GET", f"/oauth/apps/{app_id}/installations")

    def install_app(self, app_id: str, location_id: str) -> dict[str, Any]:
        """Install the app (app id or client id) on a location (as its admin would, later)."""
        return self._call("PUT", f"/oauth/apps/{app_id}/installations/{location_id}")

    def uninstall_app(self, app_id: str, location_id: str) -> dict[str, Any]:
        """Uninstall the app from a location: its tokens there stop working, no new ones are minted."""
        return self._call("DELETE", f"/oauth/apps/{app_id}/installations/{location_id}")

    # -- webhooks (``webhooks.py``) ----------------------------------------------------------------------
    def webhook_keys(self) -> dict[str, str]:
        """``{"rsa_public_key_pem", "ed25519_public_key_pem"}``: verify ``x-wh-signature`` (RSA-SHA256,
        PKCS#1 v1.5) and ``x-ghl-signature`` (Ed25519) of the sandbox's events with these."""
        return self._call("GET", "/webhooks/keys")

    def webhook_subscriptions(self) -> list[dict[str, Any]]:
        """``[{"url", "locationId", "source"}]``: configured (``webhook_urls``) and run-time subscriptions."""
        return self._call("GET", "/webhooks/subscriptions")["subscriptions"]

    def subscribe_webhook(self, url: str, location_id: str | None = None) -> dict[str, Any]:
        """Send every event (of ``location_id`` only, when given) to ``url`` until unsubscribed or reset."""
        return self._call("POST", "/webhooks/subscriptions", json={"url": url, "locationId": location_id})

    def unsubscribe_webhook(self, url: str) -> None:
        """Remove a run-time subscription."""
        self._call("DELETE", "/webhooks/subscriptions", json={"url": url})

    def webhook_deliveries(self, since: int = 0, event: str | None = None,
                           webhook_id: str | None = None) -> dict[str, Any]:
        """The delivery log ``{"deliveries", "pending", "emitted", "by_outcome", "last_seq"}`` (see
        ``webhooks.WebhookOutbox.deliveries``), entries after ``since``."""
        params = {k: v for k, v in (("since", since), ("event", event), ("webhookId", webhook_id)) if v}
        return self._call("GET", "/webhooks/deliveries", params=params or None)

    def webhook_events(self, since: int = 0) -> list[dict[str, Any]]:
        """Events emitted (``seq``, ``webhookId``, ``type``, ``locationId``, ``id``, ``timestamp``)."""
        return self._call("GET", "/webhooks/events", params={"since": since} if since else None)["events"]

    def clear_webhook_deliveries(self) -> None:
        """Forget the delivery and event logs."""
        self._call("DELETE", "/webhooks/deliveries")

    def wait_for_webhooks(self, timeout_s: float = 10.0, poll_s: float = 0.02) -> dict[str, Any]:
        """Wait until no delivery is pending (every one delivered, failed or lost; retries count as
        pending, so compress them with ``webhook_time_scale``); returns the delivery log.
        ``TimeoutError`` after ``timeout_s``."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            log = self.webhook_deliveries()
            if log["pending"] == 0:
                return log
            if time.monotonic() > deadline:
                raise TimeoutError(f"{log['pending']} webhook deliveries still pending after {timeout_s} s")
            time.sleep(poll_s)

    # -- locations and state -------------------------------------------------------------------------
    def add_location(self, contacts: int = 0) -> str:
        """Add a seeded location; returns its id (its private token: ``location_token(id)``)."""
        data = self._call("POST", "/locations", json={"contacts": contacts})
        return data["locationId"]

    def location_token(self, location_id: str) -> str:
        """A long-lived token with the default scopes (every scope unless configured) for ``location_id``."""
        return self.issue_token(location_id=location_id, lifetime_s=10 * 365 * 86_400)

    def reset(self, seed: int | None = None, contacts: int | None = None) -> dict[str, Any]:
        """Fresh seeded state and initial config; returns the new ``info()``."""
        info = self._call("POST", "/reset", json={"seed": seed, "contacts": contacts})
        if self._on_reset:
            self._on_reset(info)
        return info
