"""Run the webhook receiver standalone (behind a deployment's own ingress).

::

    python -m airflow_provider_contacts.webhooks --host 0.0.0.0 --port 8085 --target-conn-id ghl_target \\
        [--schema ghl] [--rsa-public-key PEM|FILE|none] [--ed25519-public-key PEM|FILE|BASE64] \\
        [--max-body-bytes 1048576] [--retry-after 600] [--storage-timeout 10]

Stdout carries one line, a JSON object flushed before serving (logs go to stderr):
``{"event": "listening", "url": "http://<host>:<port>", "events_url": ".../events", "health_url": ".../health"}``
(``--port 0`` picks a free port; the line gives the real one). Then uvicorn serves until
SIGINT/SIGTERM. The target connection is resolved through Airflow's connection lookup
(``AIRFLOW_CONN_<ID>`` env vars, secrets backends, the metadata database); flags left out fall
back to the ``[ghl_webhooks]`` Airflow configuration, then to the defaults. A bad key or setting
exits with status 2 and a message naming it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from typing import Any

from airflow_provider_contacts.webhooks.app import EVENTS_PATH, WebhookSettings, create_app, settings_with
from airflow_provider_contacts.webhooks.verify import load_ed25519_public_keys, load_rsa_public_keys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_contacts.webhooks",
        description="HighLevel webhook receiver: verifies signed events and stores them in the target "
        "table ghl_webhook_events (POST /events, GET /health).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8085, help="port (0: a free one; default 8085)")
    p.add_argument("--target-conn-id", help="common-sql connection of the target (default: [ghl_webhooks] "
                   "target_conn_id, else ghl_target)")
    p.add_argument("--schema", help="schema of ghl_webhook_events in the target")
    p.add_argument("--rsa-public-key", help="PEM text or file for x-wh-signature (default: HighLevel's "
                   "published key; 'none' switches the header off)")
    p.add_argument("--ed25519-public-key", help="PEM text, file or raw base64 for x-ghl-signature (default: not checked)")
    p.add_argument("--max-body-bytes", type=int, help="bodies larger than this get 413 (default 1048576)")
    p.add_argument("--retry-after", type=int, dest="retry_after_seconds", help="Retry-After of a 429, seconds (default 600)")
    p.add_argument("--storage-timeout", type=float, dest="storage_timeout_seconds",
                   help="seconds to wait for the database before answering 429 (default 10)")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return p


def _announcer() -> Any:
    """A stream on the real stdout, which then carries only the ``listening`` line: everything else
    written to stdout (Airflow's and uvicorn's logs) goes to stderr from here on."""
    sys.stdout.flush()
    announce = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return announce


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    announce = _announcer()
    try:
        # Keys given as flags are checked first: a bad one fails in a second, before Airflow loads.
        load_rsa_public_keys(args.rsa_public_key, "--rsa-public-key")
        load_ed25519_public_keys(args.ed25519_public_key, "--ed25519-public-key")
        settings = settings_with(
            WebhookSettings.from_airflow_config(),
            target_conn_id=args.target_conn_id,
            schema=args.schema,
            rsa_public_key=args.rsa_public_key,
            ed25519_public_key=args.ed25519_public_key,
            max_body_bytes=args.max_body_bytes,
            retry_after_seconds=args.retry_after_seconds,
            storage_timeout_seconds=args.storage_timeout_seconds,
        )
        app = create_app(settings, warm_up=False)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    sock.listen(128)
    # Resolve the connection and create the table before announcing the URL; a database that is
    # down does not stop the receiver (deliveries get 429 until it answers).
    problem = app.state.store.warm_up()
    if problem:
        print(f"warning: webhook storage not ready: {problem}", file=sys.stderr)
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    url = f"http://{shown_host}:{port}"
    line = {"event": "listening", "url": url, "events_url": url + EVENTS_PATH, "health_url": url + "/health"}
    announce.write(json.dumps(line) + "\n")
    announce.flush()
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="off")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler
    # in place before it: a no-op here, so a requested stop exits with status 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
