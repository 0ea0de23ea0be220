"""Command line: ``python -m ghl_sandbox --port 8765 --contacts 2000 --seed 7``.

Every ``SandboxConfig`` field is a flag (``--rate-limit 100/10``, ``--fault-rate 0.05``,
``--fault-kinds 500,503,drop``, ``--latency-ms 20``, ``--allow-duplicates`` ...). The sandbox
answers like the live HighLevel API unless ``--strict-spec`` (the spec's own shapes and
statuses); ``--search-lag-s 3`` makes changes show in search 3 s late; ``--missing-scopes
locations/tasks.readonly`` (or ``--scopes`` / ``--token-scopes`` with the full list) issues the
private token without those scopes. Unlike
``SandboxConfig()``, the CLI applies HighLevel's burst limit (``100/10``) unless
``--rate-limit off``, and its search shows changes 2 s late, as HighLevel's lagging index does,
unless ``--search-lag 0``. ``--config-json '{...}'`` gives the whole config at once (flags override it).
``--webhook-url URL`` (repeatable) sends a signed HighLevel webhook event for every change to URL
(``--webhook-time-scale 0.001``, ``--webhook-loss-rate 0.1`` ...; package README, "Webhooks").

No token ever goes to stdout or stderr. Once the socket listens, the CLI:

* writes the ready-to-use Airflow connection (``{"conn_type": "ghl", "host", "password": <token>,
  "extra": {"location_id"}}``, the same value as ``SandboxServer.conn_json()``) to ``--conn-file``
  (default ``./.ghl-sandbox-conn.json``; ``off`` for none), atomically with mode 0600, and removes
  it again on a clean stop unless another sandbox has rewritten it since;
* prints to stdout the base URL, location id, company id, admin URL, contacts, rate limit, and how
  to connect: ``export AIRFLOW_CONN_GHL_DEFAULT="$(cat <conn file>)"``, or a token minted by the
  admin surface (``curl -s -X POST <admin URL>/tokens``, loopback clients only);
* with ``--info-file PATH`` (for programs: ``SandboxServer(subprocess=True)`` uses it), writes
  ``{"base_url", "location_id", "token", "company_id", "admin_url", "pid"}`` as JSON to PATH,
  atomically with mode 0600 (put it in a private directory; the reader deletes it).

(The token is the sandbox's own private integration token, deterministic per seed; it is kept out
of terminals and logs all the same, as any token is.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import signal
import threading
import types
import typing
from typing import Any

from .config import SandboxConfig
from .server import base_url_of, bind_socket, build_server, conn_json_for, write_private_file
from .state import SandboxState

#: What the CLI applies unlike ``SandboxConfig()`` (whose defaults keep tests deterministic): HighLevel's
#: burst limit, and a search index that shows changes 2 s late ("a few seconds", ghl-live-notes.md).
CLI_DEFAULTS: dict[str, Any] = {"rate_limit": "100/10", "search_lag_s": 2.0}
FLAG_ALIASES: dict[str, tuple[str, ...]] = {"token_scopes": ("--scopes",), "search_lag_s": ("--search-lag",),
                                            "webhook_urls": ("--webhook-url",)}
#: Fields given by repeating their flag (``--webhook-url A --webhook-url B``), never split on commas.
APPEND_FIELDS: frozenset[str] = frozenset({"webhook_urls"})
FLAG_HELP: dict[str, str] = {
    "strict_spec": "answer with the OpenAPI spec's own shapes and statuses (404s, 403 for a missing scope, "
                   "address1 in search ...) instead of the live API's (default: live)",
    "search_lag_s": "seconds before a change shows in POST /contacts/search, like HighLevel's lagging "
                    "search index (default 0)",
    "token_scopes": "comma-separated scopes of the private token and of tokens minted without scopes "
                    "(default: every scope)",
    "missing_scopes": "comma-separated scopes to leave out of those tokens, e.g. locations/tasks.readonly",
    "webhook_urls": "send a signed HighLevel webhook event for every change to this URL (repeat the flag "
                    "for more; public keys at <admin URL>/webhooks/keys)",
    "webhook_signatures": "comma-separated signatures to send: rsa (x-wh-signature), ed25519 "
                          "(x-ghl-signature) (default both)",
    "webhook_key_seed": "derive the webhook signing keys from this text (same keys in every run; "
                        "default: new random keys per run)",
    "webhook_time_scale": "multiply the webhook retry schedule (429: every 600 s, 6 times) by this, e.g. "
                          "0.001 (default 1)",
    "webhook_loss_rate": "fraction of webhook deliveries never sent (default 0)",
    "webhook_duplicate_rate": "fraction of webhook deliveries sent twice (default 0)",
}
DEFAULT_CONN_FILE = ".ghl-sandbox-conn.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ghl_sandbox",
                                     description="A local HighLevel (LeadConnector) Contacts API sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: a free port)")
    parser.add_argument("--config-json", default=None, help="the whole SandboxConfig as a JSON object")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument("--conn-file", default=DEFAULT_CONN_FILE,
                        help="where to write the Airflow connection JSON with the sandbox's token, mode 0600 "
                             f"(default ./{DEFAULT_CONN_FILE}; 'off' for none)")
    parser.add_argument("--info-file", default=None,
                        help="also write the start info JSON (base_url, location_id, token, company_id, "
                             "admin_url, pid) to this path, mode 0600, for a parent process")
    hints = typing.get_type_hints(SandboxConfig)
    for f in dataclasses.fields(SandboxConfig):
        flags = ["--" + f.name.replace("_", "-"), *FLAG_ALIASES.get(f.name, ())]
        hint = hints[f.name]
        help_text = FLAG_HELP.get(f.name, f"SandboxConfig.{f.name}")
        if f.name in APPEND_FIELDS:
            parser.add_argument(*flags, action="append", default=None, dest=f.name, help=help_text)
        elif hint is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, dest=f.name,
                                help=FLAG_HELP.get(f.name))
        else:
            parser.add_argument(*flags, default=None, dest=f.name, help=help_text)
    return parser


def _convert(name: str, raw: str) -> Any:
    hint = typing.get_type_hints(SandboxConfig)[name]
    args = set(typing.get_args(hint))
    if raw.lower() in ("off", "none") and type(None) in args:
        return None
    base = hint if not isinstance(hint, types.UnionType) else next(a for a in args if a is not type(None))
    origin = typing.get_origin(base)
    if origin is tuple:
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    if base in (int, float):
        try:
            return base(raw)
        except ValueError:
            raise SystemExit(f"--{name.replace('_', '-')}: {raw!r} is not a {base.__name__}") from None
    return raw


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Build the config: CLI defaults, then ``--config-json``, then individual flags."""
    data: dict[str, Any] = dict(CLI_DEFAULTS)
    if args.config_json:
        try:
            given = json.loads(args.config_json)
        except ValueError as exc:
            raise SystemExit(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(given, dict):
            raise SystemExit("--config-json must be a JSON object of SandboxConfig fields")
        data.update(given)
    for f in dataclasses.fields(SandboxConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if isinstance(value, list):  # APPEND_FIELDS
            data[f.name] = tuple(value)
            continue
        data[f.name] = value if isinstance(value, bool) else _convert(f.name, value)
    try:
        return SandboxConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"invalid sandbox configuration: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Seed, bind, hand over the start info (files, never stdout), serve until interrupted."""
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    conn_file = None if args.conn_file.strip().lower() in ("", "off", "none") else os.path.abspath(args.conn_file)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise SystemExit(
            f"cannot bind {args.host}:{args.port}: {exc}; pick another --port (0 = any free port)"
        ) from None
    server, state = build_server(config, args.log_level)
    info = start_info(state, base_url_of(sock))
    conn_text = conn_json_for(info["base_url"], info["location_id"], info["token"]) if conn_file else None
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises SIGTERM after its graceful shutdown with this handler back in place: exit
        # through ``finally`` (conn file removed) rather than die on the default action.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        announce(info, state.config, conn_file=conn_file, conn_text=conn_text, info_file=args.info_file)
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully and re-raised it; no traceback
        raise SystemExit(130) from None
    finally:
        if conn_file and conn_text is not None:
            _remove_if_unchanged(conn_file, conn_text)
        state.webhooks.close()


def start_info(state: SandboxState, base_url: str) -> dict[str, Any]:
    """What a client needs to use the sandbox (includes the token: files only, never stdout)."""
    info = state.info()
    return {"base_url": base_url, "location_id": info["location_id"], "token": info["token"],
            "company_id": info["company_id"], "admin_url": f"{base_url}/_sandbox", "pid": os.getpid()}


def announce(info: dict[str, Any], config: SandboxConfig, *, conn_file: str | None = None,
             conn_text: str | None = None, info_file: str | None = None) -> None:
    """Write ``info_file`` (the start info) and ``conn_file`` (``conn_text``), both 0600 and atomic,
    then print a banner without the token to stdout."""
    try:
        if info_file:
            write_private_file(info_file, json.dumps(info))
        if conn_file and conn_text is not None:
            write_private_file(conn_file, conn_text)
    except OSError as exc:  # the message names the path, never the content
        raise SystemExit(f"cannot write the sandbox's start files: {exc}") from None
    base_url, admin_url = info["base_url"], info["admin_url"]
    lines = [
        f"HighLevel sandbox running (pid {info['pid']})",
        f"  base URL     {base_url}",
        f"  location id  {info['location_id']}",
        f"  company id   {info['company_id']}",
        f"  admin URL    {admin_url}  (loopback clients only: index of what it can do)",
        f"  API docs     {admin_url}/docs  (loopback only; served offline)",
        f"  contacts     {config.contacts} (seed {config.seed})",
        f"  rate limit   {config.rate_limit or 'off'}",
        f"  answers      {'strict spec (--strict-spec)' if config.strict_spec else 'like the live API'}"
        + (f", search lags {config.search_lag_s:g} s" if config.search_lag_s else ""),
    ]
    if config.token_scopes is not None or config.missing_scopes:
        lines.append(f"  token scopes {' '.join(sorted(config.default_scopes())) or '(none)'}")
    if config.webhook_urls:
        lines.append(f"  webhooks     {', '.join(config.webhook_urls)} (signed {'+'.join(config.webhook_signatures)}; "
                     f"public keys: curl -s {admin_url}/webhooks/keys)")
    if conn_file:
        lines += [f"Airflow connection (with the sandbox's private token) written to {conn_file} (mode 0600):",
                  f'  export AIRFLOW_CONN_GHL_DEFAULT="$(cat {shlex.quote(conn_file)})"']
    default = "every scope" if config.token_scopes is None and not config.missing_scopes else "the scopes above"
    lines += [f"Or mint a token from the admin surface (loopback only; {default} unless \"scopes\" is given):",
              f"  curl -s -X POST {admin_url}/tokens"]
    print("\n".join(lines), flush=True)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _remove_if_unchanged(path: str, text: str) -> None:
    """Remove the conn file on the way out, unless another sandbox has written its own there since."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    main()
