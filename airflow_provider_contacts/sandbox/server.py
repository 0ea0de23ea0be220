"""Serving the sandbox app with uvicorn on an already-bound socket (free port with ``port=0``)."""

from __future__ import annotations

import logging
import socket

import uvicorn

from .app import create_app
from .config import SandboxConfig
from .state import SandboxState


class _DropNoiseFilter(logging.Filter):
    """Hide uvicorn's complaint about responses the "drop" fault cuts short on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


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
    uv_config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                               timeout_graceful_shutdown=2, timeout_keep_alive=30)
    return uvicorn.Server(uv_config), state


def base_url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
