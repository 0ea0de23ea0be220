"""Run a sandbox from Python: ``with SandboxServer(SandboxConfig(contacts=500)) as sb: ...``.

Thread mode (default) serves uvicorn on a background thread on a free 127.0.0.1 port; the
subprocess mode (``subprocess=True``) runs ``python -m ghl_sandbox`` as a
child process (for benchmarks and real Airflow services). The child hands its start info (base URL,
location, token) over through ``--info-file``: a 0600 file in a fresh private temporary directory,
written atomically once the socket listens, read and deleted by the parent. Nothing with the token
goes through the child's stdout/stderr (both go to a log file shown when start-up fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess as sp
import sys
import tempfile
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from .client import SandboxAdmin
from .config import SandboxConfig
from .server import base_url_of, bind_socket, build_server, conn_json_for

__all__ = ["SandboxConfig", "SandboxServer", "SandboxStartError", "TOKEN_PATTERN", "token_leaks"]

#: What every token the sandbox issues looks like: private integration tokens (``pit-``), OAuth and
#: admin-minted access tokens (``sbx-at-``) and refresh tokens (``sbx-rt-``).
TOKEN_PATTERN = re.compile(
    r"pit-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|sbx-(?:at|rt)-[A-Za-z0-9_-]{16,}"
)


def token_leaks(text: str, secrets: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Where ``text`` (a log, captured output, an XCom value, a rendered field) holds a sandbox token
    or one of ``secrets`` (e.g. an OAuth client secret): one description per find, such as
    ``"refresh token at offset 120"``, never the secret itself (the answer is safe to print)."""
    kinds = {"pit": "private integration token", "sbx-at": "access token", "sbx-rt": "refresh token"}
    found = [f"{kinds[m.group(0)[:6] if m.group(0).startswith('sbx') else 'pit']} at offset {m.start()}"
             for m in TOKEN_PATTERN.finditer(text)]
    for index, secret in enumerate(s for s in secrets if s and len(s) >= 8):
        start = text.find(secret)
        if start >= 0:
            found.append(f"secret #{index} at offset {start}")
    return found


class SandboxStartError(RuntimeError):
    """The sandbox did not come up."""


class SandboxServer:
    """A running sandbox; use as a context manager (or ``start()``/``stop()``).

    After start: ``base_url``, ``location_id``, ``token`` (private integration token with the
    configured default scopes: every scope unless ``token_scopes``/``missing_scopes`` say
    otherwise), ``company_id``, ``admin`` (``SandboxAdmin``), ``conn_json(token=None, **extra)`` and
    ``truth(location_id=None, shape="search")``.

    The sandbox answers like the live HighLevel API by default; ``SandboxConfig(strict_spec=True)``
    gives the spec's own shapes and statuses (see the package README).
    """

    def __init__(self, config: SandboxConfig | None = None, *, subprocess: bool = False,
                 host: str = "127.0.0.1", startup_timeout_s: float = 60.0) -> None:
        self.config = config or SandboxConfig()
        self.subprocess = subprocess
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.base_url = ""
        self._info: dict[str, Any] = {}
        self._admin: SandboxAdmin | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._proc: sp.Popen[bytes] | None = None
        self._child_dir: str | None = None
        self._stderr_path: str | None = None
        self._state: Any = None  # thread mode: the SandboxState (its webhook sender is stopped with the server)

    # -- identifiers ----------------------------------------------------------------------------------
    @property
    def location_id(self) -> str:
        """Id of the primary seeded location."""
        return self._info["location_id"]

    @property
    def token(self) -> str:
        """Private integration token of the primary location (default scopes, never expires)."""
        return self._info["token"]

    @property
    def company_id(self) -> str:
        """Id of the agency (company) owning the locations."""
        return self._info["company_id"]

    @property
    def admin(self) -> SandboxAdmin:
        """Client of the admin surface."""
        if self._admin is None:
            raise SandboxStartError("the sandbox is not running; use `with SandboxServer(cfg) as sb:`")
        return self._admin

    def conn_json(self, *, token: str | None = None, **extra_overrides: Any) -> str:
        """Value for ``AIRFLOW_CONN_GHL_DEFAULT`` pointing at this sandbox with its private token (or
        ``token``, e.g. one from ``admin.issue_token(missing_scopes=[...])``)."""
        return conn_json_for(self.base_url, self.location_id, token or self.token, **extra_overrides)

    def oauth_conn_json(self, app: dict[str, Any] | None = None, *, access_token: str = "",
                        **extra_overrides: Any) -> str:
        """Value for ``AIRFLOW_CONN_...`` of an OAuth connection (``auth_type="oauth"``) to this
        sandbox: ``app`` is what ``admin.install_oauth_app()`` answered (installed now when
        ``None``); its refresh token seeds the connection. ``access_token`` goes into the password
        (empty: the hook refreshes before its first call); ``extra_overrides`` go into the extras,
        e.g. ``rotation_store="file:/tmp/x/tokens.json"``."""
        app = app or self.admin.install_oauth_app()
        extra = {"location_id": app.get("locationId") or self.location_id, "auth_type": "oauth",
                 "client_id": app["client_id"], "client_secret": app["client_secret"],
                 "refresh_token": app["refresh_token"], **extra_overrides}
        return json.dumps({"conn_type": "ghl", "host": self.base_url, "password": access_token, "extra": extra})

    def agency_conn_json(self, app: dict[str, Any] | None = None, **extra_overrides: Any) -> str:
        """Value for ``AIRFLOW_CONN_...`` of an agency connection: an OAuth app installed by the
        agency (``app``: what ``admin.install_oauth_app(user_type="Company")`` answered; installed
        now on every location when ``None``), with extras ``auth_type=oauth``, ``user_type=Company``,
        ``company_id``, ``app_id``, ``client_id``, ``client_secret``, ``refresh_token`` and no
        ``location_id``: the reconcile discovers the installed locations. ``extra_overrides`` go
        into the extras, e.g. ``rotation_store="file:/tmp/x/tokens.json"``."""
        app = app or self.admin.install_oauth_app(user_type="Company")
        extra = {"auth_type": "oauth", "user_type": "Company", "company_id": app.get("companyId") or self.company_id,
                 "app_id": app.get("app_id") or app["client_id"].split("-", 1)[0],
                 "client_id": app["client_id"], "client_secret": app["client_secret"],
                 "refresh_token": app["refresh_token"], **extra_overrides}
        return json.dumps({"conn_type": "ghl", "host": self.base_url, "extra": extra})

    def truth(self, location_id: str | None = None, shape: str = "search") -> dict[str, Any]:
        """What HighLevel holds for the location, to compare a sync target with
        (``support.verify.diff_target(sink, mapping, location_id, sb.truth())``): ``{"contacts", "tasks",
        "notes", "customFields"}``, contacts in the shape ``POST /contacts/search`` gives them (live
        mode: ``address``, ``dateOfBirth`` in epoch ms, ``businessName``, ``validEmail`` ...;
        ``shape="get"`` for the ``GET /contacts/{id}`` shape), as of now (no search lag)."""
        return self.admin.dump(location_id, shape=shape)

    def client(self, token: str | None = None, *, version: str | None = "2021-07-28",
               timeout_s: float = 30.0) -> httpx.Client:
        """An ``httpx.Client`` for the API with ``Authorization: Bearer`` (default: the private token)
        and the ``Version`` header preset (``version=None`` leaves it out). Close it after use."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if version:
            headers["Version"] = version
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def webhook_keys(self) -> dict[str, str]:
        """Public keys of the sandbox's webhook signatures: ``{"rsa_public_key_pem",
        "ed25519_public_key_pem"}`` (SubjectPublicKeyInfo PEM) for ``x-wh-signature`` (RSA-SHA256,
        PKCS#1 v1.5) and ``x-ghl-signature`` (Ed25519). Events go to ``SandboxConfig.webhook_urls``
        and to ``admin.subscribe_webhook(url)``; see the package README, "Webhooks"."""
        return self.admin.webhook_keys()

    def _refresh_info(self, info: dict[str, Any]) -> None:
        self._info = {**self._info, **info}

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> SandboxServer:
        """Start serving and wait until the sandbox answers."""
        try:
            if self.subprocess:
                self._start_child()
            else:
                self._start_thread()
            self._admin = SandboxAdmin(self.base_url, on_reset=self._refresh_info)
            self._wait_ready()
            self._info = self._admin.info()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_thread(self) -> None:
        sock = bind_socket(self.host, 0)
        self.base_url = base_url_of(sock)
        self._server, self._state = build_server(self.config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"ghl-sandbox-{self.base_url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise SandboxStartError("the sandbox server thread exited during start-up (see log output)")
            if time.monotonic() > deadline:
                raise SandboxStartError(f"the sandbox did not start within {self.startup_timeout_s} s")
            time.sleep(0.01)

    def _start_child(self) -> None:
        self._child_dir = tempfile.mkdtemp(prefix="ghl-sandbox-")  # mode 0700: only this user sees inside
        info_path = os.path.join(self._child_dir, "start-info.json")
        self._stderr_path = os.path.join(self._child_dir, "sandbox.log")
        cmd = [sys.executable, "-m", "ghl_sandbox", "--host", self.host, "--port", "0",
               "--config-json", json.dumps(self.config.to_dict()), "--info-file", info_path, "--conn-file", "off"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self._stderr_path, "wb") as log:
            self._proc = sp.Popen(cmd, stdin=sp.DEVNULL, stdout=log, stderr=sp.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout_s
        while not os.path.exists(info_path):  # written atomically: once it exists, it is complete
            if self._proc.poll() is not None:
                raise SandboxStartError(f"the sandbox child process exited ({self._proc.returncode}) before "
                                        f"it was listening; its output:\n{self._stderr_tail()}")
            if time.monotonic() > deadline:
                raise SandboxStartError(f"the sandbox child process did not start within {self.startup_timeout_s} s;"
                                        f" its output:\n{self._stderr_tail()}")
            time.sleep(0.02)
        try:
            with open(info_path, encoding="utf-8") as fh:
                info = json.load(fh)
        finally:
            os.unlink(info_path)
        self.base_url = info["base_url"]
        self._info = {k: info[k] for k in ("location_id", "token", "company_id")}

    def _stderr_tail(self) -> str:
        if not self._stderr_path or not os.path.exists(self._stderr_path):
            return ""
        with open(self._stderr_path, errors="replace") as fh:
            return fh.read()[-4000:]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            try:
                if httpx.get(f"{self.base_url}/_sandbox/info", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._proc is not None and self._proc.poll() is not None:
                raise SandboxStartError(f"the sandbox child process exited ({self._proc.returncode}):\n"
                                        f"{self._stderr_tail()}")
            if time.monotonic() > deadline:
                raise SandboxStartError(
                    f"the sandbox at {self.base_url} did not answer within {self.startup_timeout_s} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving (terminates the child process in subprocess mode)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(10)
            self._server = None
            self._thread = None
        if self._state is not None:
            self._state.webhooks.close()
            self._state = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except sp.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            self._proc = None
        if self._child_dir is not None:
            shutil.rmtree(self._child_dir, ignore_errors=True)
            self._child_dir = None
            self._stderr_path = None
