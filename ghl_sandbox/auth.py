"""Tokens, scopes and OAuth 2.0 of the sandbox (ghl-oauth/Authorization.md, oauth.json).

- The seeded Private Integration token (``pit-...``) never expires and is deterministic per seed,
  so a child-process sandbox and its parent agree on it. It has the configured default scopes
  (``SandboxConfig.token_scopes`` minus ``missing_scopes``; every scope unless configured).
- OAuth apps (``create_oauth_client``) get a client id and secret; ``authorize`` stands in for the
  marketplace consent screen and returns an authorization code (single use, 10 minutes).
- ``POST /oauth/token``: ``authorization_code`` and ``refresh_token`` grants. Each refresh returns
  a new refresh token and the old one stops working at once (HighLevel's rule); access tokens
  live ``access_token_lifetime_s``; refresh tokens a year.
- ``user_type=Company`` gives an agency token; ``POST /oauth/locationToken`` exchanges it (scope
  ``oauth.write``) for a location token of the same app, where the app is installed (``installs``,
  :mod:`.installs`: an authorization-code grant installs the app on its location, or on the
  agency's approved locations; 400 elsewhere). Uninstalling revokes the app's tokens of the location.
Accounting (``stats``, shown under ``oauth`` by ``GET /_sandbox/counters``): access tokens issued,
authorization-code and refresh grants, **reused refresh tokens** (a refresh token presented again
after it was spent: HighLevel counts every reuse; the spent ones are remembered by fingerprint),
unknown refresh tokens, and calls made with an expired access token. Short lifetimes
(``access_token_lifetime_s=2``) make tokens expire mid-run; ``expires_in`` is rounded down to whole
seconds (at least 1 for a positive lifetime), as HighLevel sends an integer.
Unknown or expired tokens answer 401 ``Invalid JWT``; a missing scope answers 401 "The token is not
authorized for this scope." (403 naming the scope in strict spec mode). Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from .config import ALL_SCOPES
from .errors import APIError
from .ids import new_id, new_secret
from .installs import InstallRegistry, app_id_of, version_id_of

AUTH_CODE_LIFETIME_S = 600


@dataclass
class TokenInfo:
    """What an access token grants."""

    integration_id: str  # the app (client id) or private integration; part of the rate-limit key
    user_type: str  # "Location" | "Company"
    company_id: str
    location_id: str | None
    scopes: frozenset[str]
    expires_at: float | None  # epoch seconds; None = never
    user_id: str = ""

    def expired(self) -> bool:
        """True once the token's lifetime is over."""
        return self.expires_at is not None and time.time() >= self.expires_at


@dataclass
class OAuthClient:
    """A marketplace app."""

    client_id: str
    client_secret: str
    scopes: frozenset[str]


@dataclass
class Grant:
    """What an authorization code or refresh token stands for."""

    client_id: str
    user_type: str
    company_id: str
    location_id: str | None
    scopes: frozenset[str]
    user_id: str
    expires_at: float
    approved_locations: list[str] = field(default_factory=list)


def _fingerprint(secret: str) -> str:
    """What the registry remembers of a spent refresh token (never the token itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def private_token_for(seed: int, location_id: str) -> str:
    """The deterministic private integration token of a seeded location."""
    digest = hashlib.sha256(f"ghl-sandbox:{seed}:{location_id}".encode()).hexdigest()
    return f"pit-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def check_scopes(scopes: list[str] | str | None, default: frozenset[str] | None = None,
                 missing: list[str] | str | None = None) -> frozenset[str]:
    """Validate scope names: ``scopes`` (``None``: ``default``, itself every scope when ``None``)
    minus ``missing``."""
    def names(value: list[str] | str, what: str) -> set[str]:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        unknown = sorted(set(value) - set(ALL_SCOPES))
        if unknown:
            raise APIError(422, [f"{what}: unknown scope(s) {unknown}; known scopes: {list(ALL_SCOPES)}"])
        return set(value)

    granted = set(default if default is not None else ALL_SCOPES) if scopes is None else names(scopes, "scopes")
    if missing:
        granted -= names(missing, "missing_scopes")
    return frozenset(granted)


class TokenRegistry:
    """Access tokens, OAuth clients, authorization codes and refresh tokens."""

    def __init__(self, access_token_lifetime_s: float, refresh_token_lifetime_s: float) -> None:
        self.access_token_lifetime_s = access_token_lifetime_s
        self.refresh_token_lifetime_s = refresh_token_lifetime_s
        self.tokens: dict[str, TokenInfo] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        #: fingerprints of refresh tokens already spent -> when (epoch seconds)
        self.spent_refresh_tokens: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        #: Which locations each app is installed on (``GET /oauth/installedLocations``).
        self.installs = InstallRegistry()

    def stats_dict(self) -> dict[str, int]:
        """OAuth accounting (see the module docstring); every key present, zero when nothing happened."""
        keys = ("access_tokens_issued", "authorization_code_grants", "refresh_grants", "refresh_token_reuses",
                "unknown_refresh_tokens", "expired_access_token_calls", "invalid_grants")
        return {k: int(self.stats.get(k, 0)) for k in keys}

    def lookup(self, token: str | None) -> TokenInfo:
        """The token's grant, or 401 ``Invalid JWT`` when unknown or expired."""
        info = self.tokens.get(token or "")
        if info is None or info.expired():
            if info is not None:
                self.stats["expired_access_token_calls"] += 1
            raise APIError(401, "Invalid JWT")
        return info

    def expires_in(self) -> int:
        """``expires_in`` of a token answer: whole seconds, at least 1 for a positive lifetime."""
        lifetime = self.access_token_lifetime_s
        return max(1, math.floor(lifetime)) if lifetime > 0 else 0

    def add_private_token(self, token: str, company_id: str, location_id: str,
                          scopes: frozenset[str] | None = None) -> None:
        """Register a never-expiring private integration token (``scopes``: every scope when ``None``)."""
        self.tokens[token] = TokenInfo(
            integration_id=f"private:{location_id}", user_type="Location", company_id=company_id,
            location_id=location_id, scopes=frozenset(ALL_SCOPES) if scopes is None else scopes,
            expires_at=None, user_id="sandbox-admin",
        )

    def issue(self, *, company_id: str, location_id: str | None, scopes: frozenset[str],
              lifetime_s: float | None = None, integration_id: str = "issued", user_type: str = "Location",
              user_id: str = "") -> tuple[str, TokenInfo]:
        """Mint an access token (``lifetime_s`` default: the configured access token lifetime)."""
        lifetime = self.access_token_lifetime_s if lifetime_s is None else lifetime_s
        token = new_secret("sbx-at-")
        info = TokenInfo(integration_id, user_type, company_id, location_id, scopes, time.time() + lifetime, user_id)
        self.tokens[token] = info
        self.stats["access_tokens_issued"] += 1
        return token, info

    def create_client(self, scopes: frozenset[str]) -> OAuthClient:
        """Register an OAuth app."""
        client = OAuthClient(f"{new_id().lower()[:24]}-{new_id()[:8].lower()}", new_secret("", 18), scopes)
        self.clients[client.client_id] = client
        return client

    def authorize(self, client_id: str, *, user_type: str, company_id: str, location_id: str | None,
                  approved_locations: list[str]) -> str:
        """An authorization code for the app (the marketplace consent step)."""
        client = self.clients.get(client_id)
        if client is None:
            raise APIError(400, f"client_id {client_id!r} is not a registered OAuth app; create one first")
        code = new_secret("", 20)
        self.codes[code] = Grant(client_id, user_type, company_id, location_id, client.scopes,
                                 f"user-{new_id()[:12]}", time.time() + AUTH_CODE_LIFETIME_S, approved_locations)
        return code

    def _client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None or client.client_secret != client_secret:
            raise APIError(401, "Invalid client: client_id or client_secret is wrong", error="invalid_client")
        return client

    def exchange(self, form: dict[str, str]) -> dict[str, object]:
        """``POST /oauth/token``: redeem a code or rotate a refresh token."""
        for name in ("client_id", "client_secret", "grant_type"):
            if not form.get(name):
                raise APIError(422, [f"{name} should not be empty"])
        client = self._client(form.get("client_id"), form.get("client_secret"))
        grant_type = form["grant_type"]
        if grant_type == "authorization_code":
            code = form.get("code") or ""
            grant = self.codes.pop(code, None)
            if grant is None or grant.expires_at < time.time() or grant.client_id != client.client_id:
                self.stats["invalid_grants"] += 1
                raise APIError(400, "Invalid grant: authorization code is invalid", error="invalid_grant")
            self.stats["authorization_code_grants"] += 1
            installed = [grant.location_id] if grant.user_type == "Location" else grant.approved_locations
            self.installs.install(app_id_of(client.client_id), grant.company_id, [x for x in installed if x],
                                  install_to_future_locations=True if grant.user_type == "Company" else None)
        elif grant_type == "refresh_token":
            old = form.get("refresh_token") or ""
            grant = self.refresh_tokens.pop(old, None)  # single use: gone at once
            if grant is None or grant.expires_at < time.time() or grant.client_id != client.client_id:
                self.stats["invalid_grants"] += 1
                if _fingerprint(old) in self.spent_refresh_tokens:
                    self.stats["refresh_token_reuses"] += 1
                else:
                    self.stats["unknown_refresh_tokens"] += 1
                raise APIError(400, "Invalid grant: refresh token is invalid", error="invalid_grant")
            self.spent_refresh_tokens[_fingerprint(old)] = time.time()
            self.stats["refresh_grants"] += 1
        else:
            raise APIError(422, [f"grant_type must be one of the following values: authorization_code, refresh_token "
                                 f"(got {grant_type!r})"])
        requested_type = form.get("user_type")
        if requested_type and requested_type != grant.user_type:
            raise APIError(400, f"user_type {requested_type!r} does not match the installation ({grant.user_type})")
        access, _ = self.issue(company_id=grant.company_id, location_id=grant.location_id, scopes=grant.scopes,
                               integration_id=f"app:{client.client_id}", user_type=grant.user_type,
                               user_id=grant.user_id)
        refresh = new_secret("sbx-rt-")
        self.refresh_tokens[refresh] = Grant(grant.client_id, grant.user_type, grant.company_id, grant.location_id,
                                             grant.scopes, grant.user_id, time.time() + self.refresh_token_lifetime_s,
                                             grant.approved_locations)
        body: dict[str, object] = {
            "access_token": access, "token_type": "Bearer", "expires_in": self.expires_in(),
            "refresh_token": refresh, "scope": " ".join(sorted(grant.scopes)), "userType": grant.user_type,
            "companyId": grant.company_id, "userId": grant.user_id, "isBulkInstallation": False,
        }
        if grant.user_type == "Location":
            body["locationId"] = grant.location_id
        else:
            body["approvedLocations"] = list(grant.approved_locations)
            body["installToFutureLocations"] = True
            body["approveAllLocations"] = True
        return body

    def location_token(self, agency: TokenInfo, company_id: str, location_id: str,
                       company_locations: list[str]) -> dict[str, object]:
        """``POST /oauth/locationToken``: a location token for an agency token's app."""
        if agency.user_type != "Company":
            raise APIError(401, "This route needs an agency (Company) access token; "
                                "get one with user_type=Company from POST /oauth/token")
        if company_id != agency.company_id:
            raise APIError(400, f"companyId {company_id} does not match the token's company")
        if location_id not in company_locations:
            raise APIError(400, f"Location {location_id} is not part of company {company_id}")
        app_id = app_id_of(agency.integration_id.removeprefix("app:"))
        if agency.integration_id.startswith("app:") and self.installs.installed_at(app_id, location_id) is None:
            raise APIError(400, f"The app is not installed on location {location_id}")
        scopes = frozenset(s for s in agency.scopes if not s.startswith("oauth."))
        token, _ = self.issue(company_id=company_id, location_id=location_id, scopes=scopes,
                              integration_id=agency.integration_id, user_type="Location", user_id=agency.user_id)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in(),
                "scope": " ".join(sorted(scopes)), "locationId": location_id, "userId": agency.user_id,
                "planId": None, "appId": app_id, "versionId": version_id_of(app_id)}

    def uninstall(self, app_id: str, location_id: str) -> bool:
        """Uninstall the app from the location and revoke the app's access tokens of it."""
        removed = self.installs.uninstall(app_id, location_id)
        for token, info in list(self.tokens.items()):
            if (info.location_id == location_id and info.integration_id.startswith("app:")
                    and app_id_of(info.integration_id.removeprefix("app:")) == app_id):
                del self.tokens[token]
        return removed
