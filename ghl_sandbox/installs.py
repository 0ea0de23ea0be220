"""Which locations an OAuth app is installed on (``GET /oauth/installedLocations``, oauth.json).

HighLevel marketplace apps have an **app id** (24 hex-like characters); their OAuth client ids
are ``<app id>-<suffix>`` (:func:`app_id_of`). An app is installed per location: by a location
admin (a ``Location`` install) or by an agency admin for the locations they approve (a ``Company``
install, ``approvedLocations``; with ``installToFutureLocations`` it is also installed on each
location the agency adds later). ``POST /oauth/locationToken`` mints a location token only where
the app is installed (400 otherwise), and uninstalling revokes the app's tokens of that location.

The admin surface installs and uninstalls an app per location at run time
(``PUT``/``DELETE /_sandbox/oauth/apps/{app_id}/installations/{location_id}``), so a test can
install a location later or uninstall one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone


def app_id_of(client_id: str) -> str:
    """The app id of an OAuth client id (HighLevel: ``<app id>-<suffix>``); an app id as is."""
    return client_id.split("-", 1)[0]


def version_id_of(app_id: str) -> str:
    """The (single) version id of an app in the sandbox: deterministic, 24 hex characters."""
    return hashlib.sha256(f"version:{app_id}".encode()).hexdigest()[:24]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AppInstalls:
    """One app's installations: location id -> ``installedAt`` (ISO 8601 UTC)."""

    app_id: str
    company_id: str
    install_to_future_locations: bool = False
    locations: dict[str, str] = field(default_factory=dict)


class InstallRegistry:
    """App installations per location (see the module docstring)."""

    def __init__(self) -> None:
        self.apps: dict[str, AppInstalls] = {}

    def _app(self, app_id: str, company_id: str) -> AppInstalls:
        app = self.apps.get(app_id)
        if app is None:
            app = self.apps[app_id] = AppInstalls(app_id, company_id)
        return app

    def install(self, app_id: str, company_id: str, location_ids: list[str], *,
                install_to_future_locations: bool | None = None) -> None:
        """Install the app on ``location_ids`` (kept as installed where it already is)."""
        app = self._app(app_id, company_id)
        for location_id in location_ids:
            app.locations.setdefault(location_id, _now_iso())
        if install_to_future_locations is not None:
            app.install_to_future_locations = install_to_future_locations

    def uninstall(self, app_id: str, location_id: str) -> bool:
        """Uninstall the app from the location; ``False`` when it was not installed there."""
        app = self.apps.get(app_id)
        return app is not None and app.locations.pop(location_id, None) is not None

    def installed_at(self, app_id: str, location_id: str) -> str | None:
        """When the app was installed on the location (``None``: not installed)."""
        app = self.apps.get(app_id)
        return app.locations.get(location_id) if app is not None else None

    def known(self, app_id: str) -> bool:
        """Whether the app was ever installed anywhere (apps outside the registry are not checked)."""
        return app_id in self.apps

    def future_locations(self, app_id: str) -> bool:
        """The app's ``installToFutureLocations`` flag."""
        app = self.apps.get(app_id)
        return bool(app and app.install_to_future_locations)

    def location_added(self, company_id: str, location_id: str) -> None:
        """A new location of the company: apps installed for future locations get installed on it."""
        for app in self.apps.values():
            if app.company_id == company_id and app.install_to_future_locations:
                app.locations.setdefault(location_id, _now_iso())


def location_address(location_id: str) -> str:
    """A deterministic street address for a sandbox location (``InstalledLocationSchema.address``)."""
    n = int(hashlib.sha256(location_id.encode()).hexdigest()[:6], 16)
    return f"{n % 900 + 100} Sandbox Street, Springfield, IL 627{n % 90 + 10:02d}, USA"
