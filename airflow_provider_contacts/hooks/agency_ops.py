"""Agency operations of ``GHLContactsHook``: the locations an agency's app is installed on.

``GET /oauth/installedLocations`` (oauth.json operationId ``get-installed-location``, scope
``oauth.readonly``, agency OAuth tokens only) lists a company's locations with ``isInstalled`` for
one app, paged by ``skip``/``limit``. :meth:`AgencyOperations.installed_locations` reads it to the
end with the connection's own (agency) token - never a location token - through the hook's
transport (pacing on the agency's own bucket, retries, a plain 401 refreshed once, a scope or
token-class 401 raised at once), and filters the result by name pattern and ids.

Paging is by what the server gave, not by what was asked: the next ``skip`` is the number of
locations received so far, and the walk ends on an empty page, when ``count`` (when sent) is
reached, or when a page brings no location not seen before (a server ignoring ``skip``).
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field

from airflow_provider_contacts.auth import AgencyTokenView, OAuthTokenSource, agency_private_token_error
from airflow_provider_contacts.errors import GHLConfigError, GHLValidationError
from airflow_provider_contacts.hooks.operations import OperationsBase
from airflow_provider_contacts.hooks.paths import is_highlevel_id
from airflow_provider_contacts.hooks.specs import Plan, RequestSpec, adrive, drive
from airflow_provider_contacts.models import APIModel

if TYPE_CHECKING:
    from airflow_provider_contacts.hooks.settings import ConnectionSettings
    from airflow_provider_contacts.hooks.transport import AsyncTransport, Transport

#: oauth.json operationId and scope of ``GET /oauth/installedLocations``.
INSTALLED_LOCATIONS_OPERATION = "get-installed-location"
AGENCY_READ = "oauth.readonly"
#: Locations asked for per page (the spec's default is 20; a server granting fewer is paged on).
DEFAULT_INSTALLED_PAGE_SIZE = 100


class InstalledLocation(APIModel):
    """One item of ``GET /oauth/installedLocations`` (oauth.json ``InstalledLocationSchema``):
    ``id`` (the API's ``_id``), ``name``, ``address``, ``isInstalled`` (``None`` when the answer
    does not say), ``versionId``, ``installedAt`` (ISO 8601 text as sent). Unknown fields are kept."""

    id: str = Field(validation_alias=AliasChoices("_id", "id", "locationId"))
    name: str | None = None
    address: str | None = None
    isInstalled: bool | None = None  # noqa: N815 - the API's name
    versionId: str | None = None  # noqa: N815
    installedAt: str | None = None  # noqa: N815


def _page(data: Any) -> tuple[list[InstalledLocation], int | None]:
    """``(locations, count)`` of one answer (``count`` ``None`` when absent or not a number)."""
    data = data if isinstance(data, dict) else {}
    items = [InstalledLocation.model_validate(x) for x in data.get("locations") or [] if isinstance(x, dict)]
    count = data.get("count")
    try:
        total = int(count) if count is not None and not isinstance(count, bool) else None
    except (TypeError, ValueError):
        total = None
    return items, total


def name_matches(pattern: str | None, name: str | None) -> bool:
    """Whether a location ``name`` matches ``pattern``: a shell-style glob (``*``, ``?``, ``[...]``)
    matched against the whole name when it has one of those characters, else a part of the name;
    case-insensitive either way. ``None``/blank matches every name."""
    if pattern is None or not pattern.strip():
        return True
    text, wanted = (name or "").casefold(), pattern.strip().casefold()
    if any(ch in wanted for ch in "*?["):
        return fnmatch.fnmatchcase(text, wanted)
    return wanted in text


class AgencyOperations(OperationsBase):
    """``installed_locations`` and its async twin (see the module docstring)."""

    @property
    def settings(self) -> ConnectionSettings:  # pragma: no cover - provided by GHLContactsHook
        raise NotImplementedError

    # -- the agency token and transport ---------------------------------------------------------

    def agency_identity(self, company_id: str | None = None, app_id: str | None = None) -> tuple[str, str]:
        """``(company_id, app_id)``: the arguments, else the connection's extras ``company_id`` and
        ``app_id``; an app id missing there is taken from ``client_id`` (HighLevel client ids are
        ``<app id>-<suffix>``).

        :raises GHLConfigError: one of them cannot be found (naming the extra to set).
        """
        s = self.settings
        company = (company_id or s.company_id or "").strip()
        app = (app_id or getattr(s, "app_id", None) or "").strip()
        if not app and s.client_id and "-" in s.client_id:
            app = s.client_id.split("-", 1)[0]
        missing = [name for name, value in (("company_id", company), ("app_id", app)) if not value]
        if missing:
            raise GHLConfigError(
                f"connection {self.ghl_conn_id!r}: listing the agency's installed locations needs the "
                f"extra(s) {', '.join(repr(m) for m in missing)} (the agency's company id and the "
                "Marketplace app's id, shown in the app's settings)"
            )
        for name, value in (("company_id", company), ("app_id", app)):
            if not is_highlevel_id(value):
                raise GHLConfigError(f"connection {self.ghl_conn_id!r}: extra {name!r} is {value!r}, not a HighLevel id")
        return company, app

    def agency_token_source(self) -> AgencyTokenView:
        """The connection's agency OAuth token as a token source (never a location token).

        :raises GHLAuthError: an agency Private Integration token (it cannot list installed
            locations nor mint location tokens), with the fix.
        :raises GHLConfigError: not an agency OAuth connection (naming the extras to set).
        """
        s = self.settings
        if s.auth_type != "oauth":
            if s.user_type == "Company":
                raise agency_private_token_error(s.conn_id, "listing the agency's installed locations")
            raise GHLConfigError(
                f"connection {s.conn_id!r} is not an agency connection: listing installed locations "
                "(GET /oauth/installedLocations) needs an agency OAuth app - extras auth_type='oauth', "
                "user_type='Company', company_id, app_id, client_id, client_secret, refresh_token"
            )
        if s.user_type != "Company":
            raise GHLConfigError(
                f"connection {s.conn_id!r}: extra 'user_type' is {s.user_type!r}; listing installed "
                "locations needs an agency (Company) install of the app: set user_type='Company' and "
                "put the agency install's refresh token into 'refresh_token'"
            )
        source = self.token_source  # type: ignore[attr-defined]
        assert isinstance(source, OAuthTokenSource)
        return source.agency_view()

    def _agency_limiter(self, company_id: str) -> Any:
        """The limiter of the agency's own bucket (HighLevel limits per app and resource, the
        company being one)."""
        from airflow_provider_contacts.hooks.shared_limits import limiter_for

        return limiter_for(self.settings, f"company-{company_id}")

    def agency_transport(self, company_id: str) -> Transport:
        """A :class:`Transport` sending with the agency token (same session, retries, stats)."""
        from airflow_provider_contacts.hooks.transport import Transport

        return Transport(
            session=self._shared_session,  # type: ignore[attr-defined]
            base_url=self.base_url,
            timeout=self.timeout,
            **self._request_rules(  # type: ignore[attr-defined]
                token_source=self.agency_token_source(), limiter=self._agency_limiter(company_id)
            ),
        )

    @contextlib.asynccontextmanager
    async def agency_async_transport(self, company_id: str) -> AsyncIterator[AsyncTransport]:
        """An :class:`AsyncTransport` sending with the agency token, on its own ``httpx.AsyncClient``."""
        await self.aload_settings()  # before the agency token source reads the settings
        async with self.async_transport(
            token_source=self.agency_token_source(), limiter=self._agency_limiter(company_id)
        ) as api:
            yield api

    # -- the operation ---------------------------------------------------------------------------

    @staticmethod
    def _installed_plan(
        company_id: str, app_id: str, query: str | None, page_size: int, installed_only: bool
    ) -> Plan[None]:
        skip, seen = 0, set()
        while True:
            params = {"companyId": company_id, "appId": app_id, "skip": str(skip), "limit": str(page_size),
                      "isInstalled": "true" if installed_only else None, "query": query or None}
            items, count = yield RequestSpec(
                "GET", "/oauth/installedLocations", INSTALLED_LOCATIONS_OPERATION, AGENCY_READ, _page, params
            )
            fresh = [item for item in items if item.id not in seen]
            for item in fresh:
                seen.add(item.id)
                yield item
            skip += len(items)
            if not items or not fresh or (count is not None and skip >= count):
                return

    @staticmethod
    def _filtered(
        items: Iterable[InstalledLocation], installed_only: bool, name_pattern: str | None, ids: set[str] | None
    ) -> list[InstalledLocation]:
        out = []
        for item in items:
            if installed_only and item.isInstalled is False:  # a server ignoring isInstalled=true
                continue
            if ids is not None and item.id not in ids:
                continue
            if not name_matches(name_pattern, item.name):
                continue
            out.append(item)
        return out

    @staticmethod
    def _ids(ids: Iterable[str] | None) -> set[str] | None:
        if ids is None:
            return None
        if isinstance(ids, str):
            raise GHLValidationError("installed_locations: 'ids' must be a list of location ids, not a string")
        wanted = {str(x).strip() for x in ids if str(x).strip()}
        return wanted or None

    def _installed_args(
        self, company_id: str | None, app_id: str | None, page_size: int
    ) -> tuple[str, str]:
        if not isinstance(page_size, int) or page_size < 1:
            raise GHLValidationError(f"installed_locations: 'page_size' must be an integer >= 1, got {page_size!r}")
        self.agency_token_source()  # an agency OAuth connection, or the error saying what to set
        return self.agency_identity(company_id, app_id)

    def installed_locations(
        self,
        company_id: str | None = None,
        app_id: str | None = None,
        *,
        name_pattern: str | None = None,
        ids: Iterable[str] | None = None,
        query: str | None = None,
        installed_only: bool = True,
        page_size: int = DEFAULT_INSTALLED_PAGE_SIZE,
    ) -> list[InstalledLocation]:
        """The agency's locations where the app is installed, read to the last page.

        oauth.json operationId ``get-installed-location`` (``GET /oauth/installedLocations``),
        scope ``oauth.readonly``, sent with the connection's agency OAuth token.

        :param company_id: the agency's company id (default: the connection's extra ``company_id``).
        :param app_id: the Marketplace app's id (default: extra ``app_id``, else taken from
            ``client_id``).
        :param name_pattern: keep locations whose name matches (:func:`name_matches`: a glob such as
            ``"Acme *"``, else a part of the name; case-insensitive).
        :param ids: keep only these location ids.
        :param query: the API's own ``query`` (search by name), sent as is.
        :param installed_only: ask for (and keep) installed locations only; ``False`` lists every
            location of the company with its ``isInstalled``.
        :param page_size: ``limit`` per request (the server may grant fewer).
        :returns: :class:`InstalledLocation` items in the API's order.
        :raises GHLAuthError: an agency Private Integration token (with the fix).
        :raises GHLScopeError: the agency token lacks ``oauth.readonly`` or is not an agency token.
        :raises GHLConfigError: company or app id unknown; not an agency OAuth connection.
        """
        company, app = self._installed_args(company_id, app_id, page_size)
        wanted = self._ids(ids)
        transport = self.agency_transport(company)
        records = drive(self._installed_plan(company, app, query, page_size, installed_only), transport.request)
        return self._filtered(records, installed_only, name_pattern, wanted)

    async def ainstalled_locations(
        self,
        company_id: str | None = None,
        app_id: str | None = None,
        *,
        name_pattern: str | None = None,
        ids: Iterable[str] | None = None,
        query: str | None = None,
        installed_only: bool = True,
        page_size: int = DEFAULT_INSTALLED_PAGE_SIZE,
    ) -> list[InstalledLocation]:
        """Async :meth:`installed_locations` (same operationId ``get-installed-location``, same
        paging, filters and errors), on an ``httpx.AsyncClient``."""
        await self.aload_settings()
        company, app = self._installed_args(company_id, app_id, page_size)
        wanted = self._ids(ids)
        async with self.agency_async_transport(company) as api:
            records = [r async for r in adrive(self._installed_plan(company, app, query, page_size, installed_only),
                                               api.request)]
        return self._filtered(records, installed_only, name_pattern, wanted)

    installed_locations.operation_id = INSTALLED_LOCATIONS_OPERATION  # type: ignore[attr-defined]
    installed_locations.required_scope = AGENCY_READ  # type: ignore[attr-defined]
    ainstalled_locations.operation_id = INSTALLED_LOCATIONS_OPERATION  # type: ignore[attr-defined]
    ainstalled_locations.required_scope = AGENCY_READ  # type: ignore[attr-defined]


__all__ = [
    "AGENCY_READ",
    "DEFAULT_INSTALLED_PAGE_SIZE",
    "INSTALLED_LOCATIONS_OPERATION",
    "AgencyOperations",
    "InstalledLocation",
    "name_matches",
]
