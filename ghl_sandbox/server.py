"""Serving the sandbox app with uvicorn on an already-bound socket (free port with ``port=0``), and
handing its start info (which holds the private token) over through 0600 files, never stdout/stderr."""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from typing import Any

import uvicorn

from .app import create_app
from .config import SandboxConfig
from .gate import CONNECTION_SCOPE_KEY
from .state import SandboxState


class _DropNoiseFilter(logging.Filter):
    """Hide uvicorn's complaint about responses the "drop" fault cuts short on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class _WithConnection:
    """Outermost ASGI wrapper: hands the gate the server's per-request cycle (``CONNECTION_SCOPE_KEY``)
    so an ``applied_lost`` fault can close the connection without sending any response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        cycle = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle (transport, disconnected)
        if scope.get("type") == "http" and cycle is not None:
            scope[CONNECTION_SCOPE_KEY] = cycle
        await self.app(scope, receive, send)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections made before uvicorn runs wait in the backlog instead of being refused
    return sock


def build_server(config: SandboxConfig, log_level: str = "warning") -> tuple[uvicorn.Server, SandboxState]:
    """A uvicorn server for a freshly seeded sandbox, and the sandbox's state."""
    state = SandboxState(config)
    app = create_app(state=state)
    uv_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropNoiseFilter) for f in uv_logger.filters):
        uv_logger.addFilter(_DropNoiseFilter())
    uv_config = uvicorn.Config(_WithConnection(app), log_level=log_level, access_log=False, lifespan="off",
                               timeout_graceful_shutdown=2, timeout_keep_alive=30)
    return uvicorn.Server(uv_config), state


def base_url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def conn_json_for(base_url: str, location_id: str, token: str, /, **extra_overrides: Any) -> str:
    """The Airflow connection (``AIRFLOW_CONN_GHL_DEFAULT`` value) for a sandbox: ``ghl`` type, its
    private token as password and its location in the extras."""
    extra = {"location_id": location_id, **extra_overrides}
    return json.dumps({"conn_type": "ghl", "host": base_url, "password": token, "extra": extra})


def write_private_file(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600: a temporary file in the same directory
    (created 0600 by ``mkstemp``), flushed to disk, then renamed over ``path``. A reader that sees
    ``path`` sees the whole content; a symlink at ``path`` is replaced, not followed."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp already creates 0600; this pins it whatever the platform
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
