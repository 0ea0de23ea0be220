"""The sandbox's front door, tried as a new user would: every URL it prints answers, and the API docs
render with no internet (assets served by the sandbox itself, no URL off 127.0.0.1)."""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghl_sandbox import front_door
from ghl_sandbox.app import create_app
from ghl_sandbox.testing import SandboxConfig, SandboxServer

URL = re.compile(r"https?://[^\s'\"<>)]+")
DOC_PAGES = ("/docs", "/redoc", "/_sandbox/docs", "/_sandbox/redoc", "/_sandbox/docs/plain", "/_sandbox")


def _external_urls(text: str) -> list[str]:
    """Every http(s) URL in ``text`` that is not on the sandbox's own loopback origin."""
    return [u for u in URL.findall(text) if not re.match(r"https?://127\.0\.0\.1(:\d+)?(/|$)", u)]


def _local_refs(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/[^"]*)"', page) + re.findall(r"url: '(/[^']*)'", page)


@pytest.fixture
def cli_banner(tmp_path: Path) -> Iterator[str]:
    """Start ``python -m ghl_sandbox`` as a user would and give what it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "ghl_sandbox", "--port", "0", "--contacts", "5"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner ends with the curl line
            lines.append(line)
            if "curl -s -X POST" in line:
                break
        assert lines and "curl -s -X POST" in lines[-1], "".join(lines)
        yield "".join(lines)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_every_url_the_cli_prints_answers_usefully(cli_banner: str) -> None:
    urls = URL.findall(cli_banner)
    assert len(urls) >= 4, cli_banner  # base URL, admin URL, API docs, the token URL
    base = urls[0]
    for url in urls:
        r = httpx.get(url, follow_redirects=True, timeout=10)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        assert r.content, url
    docs_url = next(u for u in urls if u.endswith("/docs"))
    assert _external_urls(httpx.get(docs_url).text) == []
    # the printed curl line works as printed
    token_url = next(u for u in urls if u.endswith("/tokens"))
    minted = httpx.post(token_url, timeout=10)
    assert minted.status_code == 200 and minted.json()["access_token"]
    # the base URL says where everything is; the admin URL indexes the admin surface
    assert httpx.get(base).json()["admin_url"] == f"{base}/_sandbox"
    index = httpx.get(f"{base}/_sandbox").json()
    assert {"method": "POST", "path": "/_sandbox/tokens"}.items() <= next(
        r for r in index["routes"] if r["path"] == "/_sandbox/tokens" and r["method"] == "POST").items()


def test_docs_pages_reference_nothing_off_the_machine_and_their_assets_are_served(sandbox: SandboxServer) -> None:
    assert front_door.assets_dir() is not None, "fastapi-offline (Swagger UI / ReDoc assets) is not installed"
    for path in DOC_PAGES:
        r = httpx.get(sandbox.base_url + path, follow_redirects=True, headers={"Accept": "text/html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert _external_urls(r.text) == [], path
        for ref in _local_refs(r.text):
            asset = httpx.get(sandbox.base_url + ref)
            assert asset.status_code == 200 and asset.content, (path, ref)
    swagger = httpx.get(sandbox.base_url + "/_sandbox/docs").text
    assert "/_sandbox/static/swagger-ui-bundle.js" in swagger and "/_sandbox/openapi.json" in swagger
    assert '"validatorUrl": null' in swagger  # no call to swagger.io's validator either


def test_admin_index_lists_every_admin_route_as_json_or_html(sandbox: SandboxServer) -> None:
    admin = sandbox.base_url + "/_sandbox"
    for url in (admin, admin + "/"):
        body = httpx.get(url).json()
        assert body["loopback_only"] is True and body["docs"]["swagger_ui"] == admin + "/docs"
        listed = {(r["method"], r["path"]) for r in body["routes"]}
        assert {("GET", "/_sandbox/info"), ("POST", "/_sandbox/tokens"), ("POST", "/_sandbox/reset"),
                ("GET", "/_sandbox/config"), ("POST", "/_sandbox/config"), ("GET", "/_sandbox/dump")} <= listed
        assert all(r["summary"] for r in body["routes"])
    page = httpx.get(admin, headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="/_sandbox/info"' in page.text and "/_sandbox/docs" in page.text
    assert httpx.get(admin, params={"format": "html"}).headers["content-type"].startswith("text/html")
    usage = httpx.get(admin + "/tokens").json()
    assert usage["usage"].startswith("POST ")


def test_front_door_is_not_counted_and_admin_pages_stay_loopback_only(sandbox: SandboxServer) -> None:
    for path in ("/", "/docs", "/redoc"):
        assert httpx.get(sandbox.base_url + path, follow_redirects=True).status_code == 200
    assert httpx.get(sandbox.base_url + "/_sandbox/counters").json()["total"] == 0
    app = create_app(SandboxConfig(contacts=3))
    admin_pages = ["/_sandbox", "/_sandbox/docs", "/_sandbox/redoc", "/_sandbox/docs/plain",
                   "/_sandbox/static/swagger-ui-bundle.js", "/_sandbox/openapi.json"]
    remote = _get_all(app, "192.0.2.7", [*admin_pages, "/", "/docs"])
    for path in admin_pages:
        assert remote[path].status_code == 403, path
    root = remote["/"]  # says what this is and where to look, to anyone; nothing secret
    assert root.status_code == 200 and root.json()["admin_url"].endswith("/_sandbox")
    assert remote["/docs"].status_code == 307 and remote["/docs"].headers["location"] == "/_sandbox/docs"


def test_without_the_assets_package_docs_fall_back_to_a_self_contained_operation_list(monkeypatch) -> None:
    monkeypatch.setattr(front_door, "assets_dir", lambda: None)
    app = create_app(SandboxConfig(contacts=3))
    pages = ["/_sandbox/docs", "/_sandbox/redoc", "/_sandbox/docs/plain"]
    got = _get_all(app, "127.0.0.1", ["/_sandbox/openapi.json", "/_sandbox/static/swagger-ui-bundle.js",
                                      "/_sandbox", *pages])
    schema = got["/_sandbox/openapi.json"].json()
    for path in pages:
        page = got[path].text
        assert got[path].status_code == 200 and "<script" not in page and _external_urls(page) == [], path
        for item in schema["paths"].values():
            for op in item.values():
                assert op["operationId"] in page, (path, op["operationId"])
    assert got["/_sandbox/static/swagger-ui-bundle.js"].status_code == 404
    assert "swagger_ui" not in got["/_sandbox"].json()["docs"]


def _get_all(app, client_host: str, paths: list[str]) -> dict[str, httpx.Response]:
    """GET ``paths`` from ``app`` in process, as a client at ``client_host``."""

    async def run() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{client_host}") as client:
            return {p: await client.get(p) for p in paths}

    return asyncio.run(run())


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what chromium writes) into rows of raw pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.mark.parametrize("path", ["/_sandbox/docs", "/_sandbox/redoc"])
def test_docs_render_in_headless_chromium_with_no_network(sandbox: SandboxServer, tmp_path: Path, path: str) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless chromium on this machine (`which chromium` finds nothing)")
    shot = tmp_path / "docs.png"
    # --virtual-time-budget: let the page's scripts fetch the schema and render before the screenshot
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    f"--screenshot={shot}", "--window-size=1200,900", "--virtual-time-budget=10000",
                    sandbox.base_url + path], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 0, "chromium wrote no screenshot"
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    distinct_rows = len(set(rows))
    colours = {row[i:i + 3] for row in rows[::10] for i in range(0, len(row), 30)}
    # a blank (or unstyled error) page is a handful of identical rows in one or two colours
    assert distinct_rows > 100 and len(colours) > 20, (distinct_rows, len(colours))
