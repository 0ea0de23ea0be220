"""The sandbox's front door: what a person finds at the URLs the CLI prints, with no internet.

==============================  =====================================================================
``GET /``                       what this server is, where the API, the admin surface and the docs are
                                (JSON; HTML for a browser). Answered to anyone, never counted
``GET /docs``, ``GET /redoc``   307 to ``/_sandbox/docs`` / ``/_sandbox/redoc`` (loopback only there)
``GET /_sandbox``               index of the admin surface: every admin route with what it does, links
                                (JSON; HTML for a browser, or ``?format=html``)
``GET /_sandbox/docs``          Swagger UI of the whole app, its JS/CSS served by the sandbox itself
``GET /_sandbox/redoc``         ReDoc, likewise
``GET /_sandbox/docs/plain``    a self-contained HTML list of every operation (no JavaScript at all)
``GET /_sandbox/static/...``    the Swagger UI / ReDoc assets
``GET /_sandbox/tokens``        how to mint a token (``POST`` it)
==============================  =====================================================================

The Swagger UI and ReDoc assets come from the ``fastapi-offline`` package (MIT; Swagger UI 5 and
ReDoc 2 bundles, the versions FastAPI's own pages load from a CDN). Without that package installed,
``/_sandbox/docs`` and ``/_sandbox/redoc`` serve the plain list instead: the docs never depend on
the network. No page here references any URL off the sandbox's own origin.
"""

from __future__ import annotations

import html
import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from .gate import ADMIN_PREFIX

STATIC_PREFIX = f"{ADMIN_PREFIX}/static"
OPENAPI_URL = f"{ADMIN_PREFIX}/openapi.json"
DOCS_URL = f"{ADMIN_PREFIX}/docs"
REDOC_URL = f"{ADMIN_PREFIX}/redoc"
PLAIN_DOCS_URL = f"{ADMIN_PREFIX}/docs/plain"
_ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_dir() -> Path | None:
    """The directory of the offline Swagger UI / ReDoc assets (package ``fastapi-offline``), or None."""
    try:
        root = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    except (ModuleNotFoundError, TypeError):
        return None
    return root if all((root / name).is_file() for name in _ASSET_FILES) else None


def _wants_html(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt in ("html", "json"):
        return fmt == "html"
    return "text/html" in request.headers.get("accept", "")


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _summary(route: APIRoute) -> str:
    text = route.summary or route.description or (route.endpoint.__doc__ or "")
    return " ".join(text.split()) if text else route.name.replace("_", " ")


def admin_routes(app: FastAPI) -> list[dict[str, str]]:
    """Every admin route (method, path, what it does), in the order they were declared."""
    rows = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(ADMIN_PREFIX + "/") and route.include_in_schema:
            for method in sorted(route.methods):
                rows.append({"method": method, "path": route.path, "summary": _summary(route)})
    return rows


def operations(app: FastAPI) -> list[dict[str, str]]:
    """Every operation of the app's OpenAPI schema (method, path, operationId, summary, tag)."""
    rows = []
    for path, item in app.openapi().get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            rows.append({"method": method.upper(), "path": path, "operationId": op.get("operationId", ""),
                         "summary": op.get("summary") or "", "description": op.get("description") or "",
                         "tag": (op.get("tags") or ["admin" if path.startswith(ADMIN_PREFIX) else "API"])[0]})
    return rows


_STYLE = """<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;
color:#1b1f23;background:#fff}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;
vertical-align:top}th{background:#f3f4f6}code{background:#f3f4f6;padding:0 .25em;border-radius:3px}
.m{font-weight:bold;font-family:monospace;white-space:nowrap}.GET{color:#0b7285}.POST{color:#2b8a3e}
.PUT{color:#e67700}.DELETE{color:#c92a2a}.note{color:#555}
</style>"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                        f"{_STYLE}</head><body>{body}</body></html>")


def _link(href: str, text: str | None = None) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text or href)}</a>'


def _rows(rows: list[dict[str, str]], link_gets: bool = True) -> str:
    out = []
    for r in rows:
        path = html.escape(r["path"])
        if link_gets and r["method"] == "GET" and "{" not in r["path"]:
            path = _link(r["path"])
        out.append(f'<tr><td class="m {r["method"]}">{r["method"]}</td><td><code>{path}</code></td>'
                   f"<td>{html.escape(r['summary'])}</td></tr>")
    return "<table><tr><th>method</th><th>path</th><th>what</th></tr>" + "".join(out) + "</table>"


def _docs_links(origin: str, offline_ui: bool) -> dict[str, str]:
    links = {"openapi": origin + OPENAPI_URL, "docs_plain": origin + PLAIN_DOCS_URL}
    if offline_ui:
        links = {"swagger_ui": origin + DOCS_URL, "redoc": origin + REDOC_URL, **links}
    else:
        links = {"docs": origin + DOCS_URL, **links}
    return links


def install(app: FastAPI) -> None:
    """Add the front-door routes and the static assets to ``app`` (created with docs_url=None)."""
    assets = assets_dir()
    if assets is not None:
        app.mount(STATIC_PREFIX, StaticFiles(directory=str(assets)), name="sandbox-static")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        origin = _origin(request)
        body = {"name": app.title, "api_base_url": origin,
                "api": "HighLevel's Contacts, Locations (tasks search, custom fields) and OAuth operations; "
                       "send 'Authorization: Bearer <token>' and 'Version: 2021-07-28'",
                "admin_url": origin + ADMIN_PREFIX, "docs": _docs_links(origin, assets is not None),
                "note": "the admin surface and the docs answer loopback clients only"}
        if not _wants_html(request):
            return JSONResponse(body)
        links = "".join(f"<li>{html.escape(k)}: {_link(v)}</li>" for k, v in body["docs"].items())
        return _page(app.title, f"<h1>{html.escape(app.title)}</h1><p>API base URL: <code>{html.escape(origin)}"
                                f"</code><br>{html.escape(body['api'])}.</p><p>Admin surface: "
                                f"{_link(body['admin_url'])}</p><ul>{links}</ul>"
                                f"<p class=note>{html.escape(body['note'])}.</p>")

    @app.get("/docs", include_in_schema=False)
    async def docs_redirect() -> RedirectResponse:
        return RedirectResponse(DOCS_URL, status_code=307)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_redirect() -> RedirectResponse:
        return RedirectResponse(REDOC_URL, status_code=307)

    async def admin_index(request: Request) -> Response:
        origin = _origin(request)
        rows = admin_routes(app)
        body = {"name": f"{app.title}: admin surface", "admin_url": origin + ADMIN_PREFIX,
                "api_base_url": origin, "loopback_only": True,
                "about": "play the CRM user (contacts, tasks, notes), mint tokens, install OAuth apps, change "
                         "the configuration (faults, rate limits, live/strict mode), read counters, reset",
                "docs": _docs_links(origin, assets is not None),
                "examples": [f"curl -s {origin}{ADMIN_PREFIX}/info",
                             f"curl -s -X POST {origin}{ADMIN_PREFIX}/tokens",
                             f"curl -s -X POST {origin}{ADMIN_PREFIX}/config -d '{{\"fault_rate\": 0.1}}'"],
                "routes": rows}
        if not _wants_html(request):
            return JSONResponse(body)
        links = "".join(f"<li>{html.escape(k)}: {_link(v)}</li>" for k, v in body["docs"].items())
        examples = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in body["examples"])
        return _page(body["name"], f"<h1>{html.escape(body['name'])}</h1><p>{html.escape(body['about'])}. "
                                   f"Loopback clients only; no auth, never counted, limited or faulted.</p>"
                                   f"<ul>{links}</ul><h2>Try</h2><ul>{examples}</ul><h2>Routes</h2>"
                                   f"{_rows(rows)}<p class=note>JSON: {_link(ADMIN_PREFIX + '?format=json')}</p>")

    for path in (ADMIN_PREFIX, ADMIN_PREFIX + "/"):
        app.add_api_route(path, admin_index, methods=["GET"], include_in_schema=False)

    @app.get(f"{ADMIN_PREFIX}/tokens", include_in_schema=False)
    async def tokens_usage(request: Request) -> JSONResponse:
        url = _origin(request) + f"{ADMIN_PREFIX}/tokens"
        return JSONResponse({"usage": f"POST {url} mints an access token",
                             "body": {"scopes": "[...] (default: the configured default scopes)",
                                      "missing_scopes": "[...]", "lifetime_s": "seconds",
                                      "location_id": "default: the primary location"},
                             "example": f"curl -s -X POST {url} -d '{{\"missing_scopes\": "
                                        f"[\"locations/tasks.readonly\"]}}'"})

    @app.get(PLAIN_DOCS_URL, include_in_schema=False)
    async def plain_docs() -> HTMLResponse:
        return plain_docs_page(app)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        if assets is None:
            return plain_docs_page(app)
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png", oauth2_redirect_url=None,
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        if assets is None:
            return plain_docs_page(app)
        return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC_PREFIX}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png", with_google_fonts=False)


def plain_docs_page(app: FastAPI) -> HTMLResponse:
    """Every operation of the OpenAPI schema as one self-contained HTML page (no script, no external URL)."""
    rows = operations(app)
    groups: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault(r["tag"], []).append(r)
    parts = [f"<h1>{html.escape(app.title)}</h1><p>{len(rows)} operations. Machine-readable: "
             f"{_link(OPENAPI_URL)}. Admin index: {_link(ADMIN_PREFIX)}.</p>"]
    for tag, items in groups.items():
        body = []
        for r in items:
            desc = r["description"] if r["description"] != r["summary"] else ""
            body.append(f'<tr><td class="m {r["method"]}">{r["method"]}</td><td><code>{html.escape(r["path"])}'
                        f"</code><br><span class=note>{html.escape(r['operationId'])}</span></td>"
                        f"<td>{html.escape(r['summary'])}<br><span class=note>{html.escape(desc)}</span></td></tr>")
        parts.append(f"<h2>{html.escape(tag)}</h2><table><tr><th>method</th><th>path / operationId</th>"
                     f"<th>what</th></tr>{''.join(body)}</table>")
    return _page(f"{app.title} - operations", "".join(parts))

