"""Headless Chromium on the Airflow UI, for tests that click what a user clicks.

The browser is the system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``), driven
by Playwright for Python (the ``test`` extra). Playwright's own browser downloads are never used.
:func:`chromium_or_skip` skips the calling test, naming what is missing, where there is no browser.

:class:`AirflowUI` knows the Airflow 3 UI's forms by the attributes Airflow gives them (``data-testid``,
``name="element_<param or field>"``, ``aria-label``), saves a screenshot per step into the test's
``tmp_path`` and lists the shots in :meth:`AirflowUI.evidence` for assertion messages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

#: Where Debian / Ubuntu put Chromium; ``GHL_TEST_CHROMIUM`` names another binary.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Milliseconds a UI step may take: the api-server renders slowly on a busy 2-core CI machine.
STEP_TIMEOUT_MS = 90_000


def chromium_path() -> str | None:
    """The Chromium binary to drive, or ``None`` when none is installed."""
    override = os.environ.get("GHL_TEST_CHROMIUM")
    for candidate in ((override,) if override else CHROMIUM_CANDIDATES):
        if candidate and (Path(candidate).is_file() or shutil.which(candidate)):
            return candidate
    return None


def chromium_or_skip() -> str:
    """The Chromium binary; skips the test (with the reason) when it or Playwright is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium to drive: install Debian's package (apt-get install -y chromium) or set "
            "GHL_TEST_CHROMIUM to a Chromium binary"
        )
    return path


@contextmanager
def chromium(executable: str) -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def api_request(base_url: str, method: str, path: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    """One call of the Airflow REST API the UI uses (``/api/v2/...``): ``(status, JSON body)``.

    A 500 "Database error" is sent again (up to 5 times, 1 s apart): the test deployments' metadata
    DB is SQLite, which the scheduler and dag-processor lock for moments at a time on a busy
    machine (the failed request was rolled back)."""
    for _ in range(5):
        status, answer = _api_request_once(base_url, method, path, body, timeout)
        if status != 500 or "Database error" not in json.dumps(answer):
            break
        time.sleep(1.0)
    return status, answer


def _api_request_once(base_url: str, method: str, path: str, body: Any, timeout: float) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


class AirflowUI:
    """One browser page on the Airflow UI at ``base_url``; screenshots go to ``shots``.

    :param browser: a Playwright ``Browser`` (:func:`chromium`).
    :param base_url: the api-server's root URL.
    :param shots: directory for the screenshots (created).
    """

    def __init__(self, browser: Any, base_url: str, shots: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)
        self.page = browser.new_page(viewport={"width": 1400, "height": 2200})
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.taken: list[Path] = []
        self.api_calls: list[str] = []
        self.page.on("response", self._note_api_call)

    def _note_api_call(self, response: Any) -> None:
        if "/api/v2/" in response.url and response.request.method != "GET":
            self.api_calls.append(f"{response.request.method} {response.url} -> {response.status}")

    # -- evidence --------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        """Screenshot the whole page as ``<shots>/<nn>-<name>.png``; returns its path."""
        path = self.shots / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path

    def evidence(self) -> str:
        """The screenshots taken and the API calls the page made, for assertion messages."""
        shots = "\n".join(f"  {p}" for p in self.taken) or "  (none)"
        calls = "\n".join(f"  {c}" for c in self.api_calls[-10:]) or "  (none)"
        return f"\nscreenshots:\n{shots}\nUI's API calls (last 10):\n{calls}"

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    # -- the Trigger form ------------------------------------------------------------------
    def open_trigger_form(self, dag_id: str, *, has_params: bool = True) -> Any:
        """Open the DAG's page, click *Trigger* and return the dialog (a Playwright locator), once
        its param fields are there (``has_params``)."""
        self.goto(f"/dags/{dag_id}")
        self.page.get_by_test_id("trigger-dag-button").click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_test_id("trigger-dag-submit").wait_for()
        if has_params:
            dialog.locator("[name^=element_]").first.wait_for()
        return dialog

    @staticmethod
    def param_fields(dialog: Any) -> dict[str, Any]:
        """The dialog's param fields by param name (``name="element_<param>"``)."""
        fields = dialog.locator("[name^=element_]")
        return {fields.nth(i).get_attribute("name").removeprefix("element_"): fields.nth(i) for i in range(fields.count())}

    @staticmethod
    def field_value(field: Any) -> Any:
        """What a form field shows: ``bool`` for a switch, else the text (``""`` when empty)."""
        if field.get_attribute("type") == "checkbox":
            return field.is_checked()
        return field.input_value()

    @staticmethod
    def clear_field(field: Any) -> None:
        """Empty a text, number or list field (as typing over it does; select all + delete where
        the field keeps a value)."""
        field.fill("")
        if field.input_value():
            field.click()
            field.press("ControlOrMeta+a")
            field.press("Delete")

    def submit_trigger(self, dialog: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """Click the dialog's *Trigger*; returns the UI's request to the REST API (status, request
        body, response body)."""
        submit = dialog.get_by_test_id("trigger-dag-submit")
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and re.search(r"/api/v2/dags/[^/]+/dagRuns$", r.url) is not None
        ) as info:
            submit.click()
        response = info.value
        return response.status, json.loads(response.request.post_data or "{}"), response.json()

    # -- the connection form ---------------------------------------------------------------
    def open_add_connection(self) -> Any:
        """Admin > Connections > *Add Connection*; returns the dialog."""
        self.goto("/connections")
        self.page.get_by_role("button", name="Add Connection").first.click()
        dialog = self.page.get_by_role("dialog")
        dialog.locator("input[name=connection_id]").wait_for()
        return dialog

    def choose_connection_type(self, dialog: Any, hook_name: str) -> None:
        """Pick the connection type by the hook's display name; the type's fields appear."""
        dialog.get_by_role("combobox").first.fill(hook_name)
        self.page.get_by_role("option", name=hook_name, exact=True).click()
        dialog.locator("input[name=host]").wait_for()

    @staticmethod
    def expand_extra_fields(dialog: Any) -> None:
        """Open the *Extra Fields* section (the provider's ``conn-fields``) if it is closed."""
        toggle = dialog.get_by_role("button", name="Extra Fields", exact=True)
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()

    def open_edit_connection(self, conn_id: str) -> Any:
        """The connection list's *Edit Connection* on ``conn_id``'s row; returns the dialog."""
        self.goto("/connections")
        row = self.page.get_by_role("row").filter(has_text=conn_id)
        row.get_by_role("button", name="Edit Connection").click()
        dialog = self.page.get_by_role("dialog")
        dialog.locator("input[name=connection_id]").wait_for()
        return dialog

    def select_option(self, dialog: Any, name: str, value: str) -> None:
        """Set the select (enum) field ``element_<name>`` to ``value``."""
        combobox = dialog.locator(
            f"xpath=//input[@name='element_{name}']/ancestor::*[.//input[@role='combobox']][1]"
            "//input[@role='combobox']"
        )
        combobox.fill(value)
        self.page.get_by_role("option", name=value, exact=True).click()

    def save_connection(self, dialog: Any) -> tuple[int, Any]:
        """Click *Save*; returns the status and body of the UI's POST/PATCH to the REST API."""
        with self.page.expect_response(
            lambda r: r.request.method in ("POST", "PATCH") and "/api/v2/connections" in r.url
            and "/test" not in r.url
        ) as info:
            dialog.get_by_role("button", name="Save").click()
        response = info.value
        dialog.wait_for(state="hidden")
        return response.status, response.json()

    def test_connection_button(self, conn_id: str) -> tuple[int, dict[str, Any], Any, float]:
        """The connection list's *Test Connection* on ``conn_id``'s row: ``(status, request body,
        response body, seconds until the answer)``."""
        import time

        self.goto("/connections")
        row = self.page.get_by_role("row").filter(has_text=conn_id)
        button = row.get_by_role("button", name="Test Connection")
        button.wait_for()
        started = time.monotonic()
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/connections/test"),
            timeout=STEP_TIMEOUT_MS,
        ) as info:
            button.click()
        response = info.value
        took = time.monotonic() - started
        try:
            body = response.json()
        except Exception:  # noqa: BLE001 - a non-JSON error page: keep its text
            body = response.text()
        return response.status, json.loads(response.request.post_data or "{}"), body, took
