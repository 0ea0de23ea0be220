"""Command line: ``python -m airflow_provider_contacts.sandbox --port 8765 --contacts 2000 --seed 7``.

Every ``SandboxConfig`` field is a flag (``--rate-limit 100/10``, ``--fault-rate 0.05``,
``--fault-kinds 500,503,drop``, ``--latency-ms 20``, ``--allow-duplicates`` ...). Unlike
``SandboxConfig()``, the CLI applies HighLevel's burst limit (``100/10``) unless
``--rate-limit off``. ``--config-json '{...}'`` gives the whole config at once (flags override it).

On start, the first stdout line is JSON: ``{"base_url", "location_id", "token", "company_id",
"admin_url", "pid"}`` (the token is the sandbox's own private integration token, not a secret).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from typing import Any

from .config import SandboxConfig
from .server import base_url_of, bind_socket, build_server
from .state import SandboxState

CLI_DEFAULTS: dict[str, Any] = {"rate_limit": "100/10"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_contacts.sandbox",
                                     description="A local HighLevel (LeadConnector) Contacts API sandbox.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: a free port)")
    parser.add_argument("--config-json", default=None, help="the whole SandboxConfig as a JSON object")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    hints = typing.get_type_hints(SandboxConfig)
    for f in dataclasses.fields(SandboxConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, dest=f.name)
        else:
            parser.add_argument(flag, default=None, dest=f.name, help=f"SandboxConfig.{f.name}")
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
        data[f.name] = value if isinstance(value, bool) else _convert(f.name, value)
    try:
        return SandboxConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"invalid sandbox configuration: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Seed, bind, announce on stdout, serve until interrupted."""
    args = _parser().parse_args(argv)
    config = config_from_args(args)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        raise SystemExit(
            f"cannot bind {args.host}:{args.port}: {exc}; pick another --port (0 = any free port)"
        ) from None
    server, state = build_server(config, args.log_level)
    announce(state, base_url_of(sock))
    server.run(sockets=[sock])


def announce(state: SandboxState, base_url: str) -> None:
    """Print the one-line JSON start banner to stdout (and a readable line to stderr)."""
    info = state.info()
    line = {"base_url": base_url, "location_id": info["location_id"], "token": info["token"],
            "company_id": info["company_id"], "admin_url": f"{base_url}/_sandbox", "pid": os.getpid()}
    print(json.dumps(line), flush=True)
    print(f"HighLevel sandbox on {base_url} (location {info['location_id']}, {state.config.contacts} contacts, "
          f"rate limit {state.config.rate_limit or 'off'})", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
