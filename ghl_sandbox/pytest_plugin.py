"""pytest fixtures for testing against the sandbox (registered as the ``ghl_sandbox`` pytest11 plugin).

- ``sandbox``: a running sandbox in fresh seeded state for each test (200 contacts, seed 7, rate
  limit off, no faults). One server per session; each test starts from ``admin.reset()``.
- ``sandbox_factory(**config) -> SandboxServer``: a dedicated server with those ``SandboxConfig``
  fields (``subprocess=True`` for a child process), stopped after the test.
- ``ghl_conn``: sets ``AIRFLOW_CONN_GHL_DEFAULT`` for ``sandbox`` and returns ``"ghl_default"``.
- ``ghl_conn_factory(scopes=None, missing_scopes=None, conn_id="ghl_default", **extra)``: the same
  with a freshly minted token of those scopes, e.g. ``ghl_conn_factory(missing_scopes=
  ["locations/tasks.readonly"])`` for a location whose token cannot search tasks.

Every sandbox answers like the live HighLevel API (``strict_spec=False``); pass
``sandbox_factory(strict_spec=True)`` for the spec's own shapes. ``sandbox_factory(missing_scopes=
[...])`` (or ``token_scopes=[...]``) gives a server whose private token lacks those scopes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .config import SandboxConfig
from .server import conn_json_for
from .testing import SandboxServer

DEFAULT_TEST_CONFIG: dict[str, Any] = {"seed": 7, "contacts": 200, "rate_limit": None}


@pytest.fixture(scope="session")
def _ghl_sandbox_session() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(**DEFAULT_TEST_CONFIG)) as server:
        yield server


@pytest.fixture
def sandbox(_ghl_sandbox_session: SandboxServer) -> SandboxServer:
    """A running sandbox, freshly reset (data, tokens, config, counters, limits) for this test."""
    _ghl_sandbox_session.admin.reset()
    return _ghl_sandbox_session


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Start dedicated sandboxes: ``sandbox_factory(contacts=50, rate_limit="5/1", subprocess=False)``."""
    started: list[SandboxServer] = []

    def make(subprocess: bool = False, **config: Any) -> SandboxServer:
        server = SandboxServer(SandboxConfig(**{**DEFAULT_TEST_CONFIG, **config}), subprocess=subprocess)
        server.start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture
def ghl_conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``AIRFLOW_CONN_GHL_DEFAULT`` set to the ``sandbox`` (private token, its location); returns the conn id."""
    monkeypatch.setenv("AIRFLOW_CONN_GHL_DEFAULT", sandbox.conn_json())
    return "ghl_default"


@pytest.fixture
def ghl_conn_factory(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point an Airflow connection at ``sandbox`` with a token of chosen scopes; returns the conn id.

    ``ghl_conn_factory(missing_scopes=["locations/tasks.readonly"])`` sets ``AIRFLOW_CONN_GHL_DEFAULT``
    to a token with every scope but that one; ``scopes=[...]`` gives exactly those; ``conn_id``
    another connection; further keyword arguments go into the connection's extras.
    """

    def make(scopes: list[str] | None = None, missing_scopes: list[str] | None = None,
             conn_id: str = "ghl_default", **extra: Any) -> str:
        token = sandbox.admin.issue_token(scopes=scopes, missing_scopes=missing_scopes, lifetime_s=30 * 86_400)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                           conn_json_for(sandbox.base_url, sandbox.location_id, token, **extra))
        return conn_id

    return make
