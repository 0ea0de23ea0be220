"""The whole run-time state of one sandbox: config, data, tokens, limits, faults and counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .auth import TokenRegistry, private_token_for
from .config import SandboxConfig
from .faults import FaultInjector
from .limits import RateLimiter
from .store import LocationState, Store
from .webhooks import WebhookOutbox


@dataclass
class Counters:
    """API request counters (admin routes are not counted)."""

    by_operation: Counter[str] = field(default_factory=Counter)
    status_429: int = 0
    status_401: int = 0
    faults: int = 0
    #: faults by kind (``"500"``, ..., ``"applied_lost"``)
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    #: ``applied_lost`` faults by how the answer was lost (``close``, ``drop``, ``502``, ``504``)
    lost_answers_by_mode: Counter[str] = field(default_factory=Counter)
    #: requests that succeeded (2xx) and whose answer the client never got, total and by operation
    applied_then_lost: int = 0
    applied_then_lost_by_operation: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The shape ``SandboxAdmin.counters()`` returns (without ``oauth``, added by the admin route)."""
        return {
            "total": sum(self.by_operation.values()),
            "by_operation": dict(self.by_operation),
            "status_429": self.status_429,
            "status_401": self.status_401,
            "faults": self.faults,
            "faults_by_kind": dict(self.faults_by_kind),
            "lost_answers_by_mode": dict(self.lost_answers_by_mode),
            "applied_then_lost": self.applied_then_lost,
            "applied_then_lost_by_operation": dict(self.applied_then_lost_by_operation),
        }


class SandboxState:
    """Config, store, tokens, rate limiter, fault injector and counters; ``reset`` rebuilds them."""

    def __init__(self, config: SandboxConfig) -> None:
        self.initial_config = config
        #: signed webhook events of every change (idle while nothing is subscribed); kept across resets
        self.webhooks = WebhookOutbox(lambda: self.config)
        self.reset()

    def reset(self, seed: int | None = None, contacts: int | None = None) -> None:
        """Back to a freshly seeded state with the initial config (optionally another seed/size)."""
        changes: dict[str, Any] = {}
        if seed is not None:
            changes["seed"] = seed
        if contacts is not None:
            changes["contacts"] = contacts
        self.config = self.initial_config.updated(**changes) if changes else self.initial_config
        self.store = Store(self.config)
        self.store.webhooks = self.webhooks
        self.webhooks.reset()  # run-time subscriptions and deliveries of the old state go
        self.tokens = TokenRegistry(self.config.access_token_lifetime_s, self.config.refresh_token_lifetime_s)
        for loc in self.store.locations.values():
            self._register_location(loc)
        self.limiter = RateLimiter(self.config.rate_limit, self.config.daily_limit)
        self.faults = FaultInjector(self.config.seed)
        self.counters = Counters()

    def _register_location(self, loc: LocationState) -> None:
        self.tokens.add_private_token(private_token_for(self.config.seed, loc.location_id), self.store.company_id,
                                      loc.location_id, self.config.default_scopes())

    def add_location(self, contacts: int = 0) -> LocationState:
        """A new seeded location with its own private token; apps an agency installed for future
        locations are installed on it."""
        loc = self.store.add_location(contacts)
        self._register_location(loc)
        self.tokens.installs.location_added(self.store.company_id, loc.location_id)  # installToFutureLocations
        return loc

    def configure(self, **changes: Any) -> SandboxConfig:
        """Change config fields at run time (validated); returns the new config."""
        if "seed" in changes or "contacts" in changes or "locations" in changes:
            raise ValueError("seed, contacts and locations shape the data: use reset(seed=..., contacts=...) "
                             "or add_location() instead of configure()")
        before = self.config
        self.config = self.config.updated(**changes)
        self.store.configure(self.config)
        if (before.token_scopes, before.missing_scopes) != (self.config.token_scopes, self.config.missing_scopes):
            for loc in self.store.locations.values():  # the private tokens follow the configured scopes
                self._register_location(loc)
        self.limiter.configure(self.config.rate_limit, self.config.daily_limit)
        self.tokens.access_token_lifetime_s = self.config.access_token_lifetime_s
        self.tokens.refresh_token_lifetime_s = self.config.refresh_token_lifetime_s
        return self.config

    def info(self) -> dict[str, Any]:
        """Identifiers a client needs: primary location, its token, company and all locations."""
        primary = self.store.primary_location_id
        return {
            "location_id": primary,
            "token": private_token_for(self.config.seed, primary),
            "company_id": self.store.company_id,
            "locations": list(self.store.locations),
            "api_version": self.config.api_version,
        }
