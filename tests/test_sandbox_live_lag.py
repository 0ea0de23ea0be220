"""``search_lag_s``: as on HighLevel, whose search index lags, a change shows in ``POST /contacts/search``
only that many seconds after it was made; every other endpoint sees it at once. Default 0."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ghl_sandbox.testing import SandboxServer

LAG_S = 0.8


def _search(api: httpx.Client, location_id: str, **body: Any) -> dict[str, Any]:
    r = api.post("/contacts/search", json={"locationId": location_id, "pageLimit": 500, **body})
    assert r.status_code == 200, r.text
    return r.json()


def _ids(api: httpx.Client, location_id: str) -> set[str]:
    return {c["id"] for c in _search(api, location_id)["contacts"]}


def test_search_lags_creates_updates_and_deletes(sandbox_factory) -> None:
    sb = sandbox_factory(contacts=20, search_lag_s=LAG_S)
    loc = sb.location_id
    with sb.client() as api:
        before = _ids(api, loc)
        victim = sorted(before)[0]
        renamed = sorted(before)[1]
        started = time.monotonic()
        created = api.post("/contacts/", json={"locationId": loc, "firstName": "Fresh"}).json()["contact"]["id"]
        api.put(f"/contacts/{renamed}", json={"lastName": "Renamed"})
        api.delete(f"/contacts/{victim}")
        assert api.get(f"/contacts/{created}").status_code == 200  # GET sees it at once
        early = _search(api, loc)
        if time.monotonic() - started < LAG_S:  # (a very slow machine may already be past the lag)
            assert {c["id"] for c in early["contacts"]} == before and early["total"] == 20
            assert next(c for c in early["contacts"] if c["id"] == renamed)["lastName"] != "Renamed"
        time.sleep(max(0.0, LAG_S - (time.monotonic() - started)) + 0.2)
        late = _search(api, loc)
        assert {c["id"] for c in late["contacts"]} == before - {victim} | {created} and late["total"] == 20
        assert next(c for c in late["contacts"] if c["id"] == renamed)["lastName"] == "Renamed"


def test_no_lag_by_default_and_lag_switched_at_run_time(sandbox: SandboxServer) -> None:
    assert sandbox.admin.config()["search_lag_s"] == 0
    loc = sandbox.location_id
    with sandbox.client() as api:
        first = api.post("/contacts/", json={"locationId": loc, "firstName": "Now"}).json()["contact"]["id"]
        assert first in _ids(api, loc)
        sandbox.admin.configure(search_lag_s=30)
        second = api.post("/contacts/", json={"locationId": loc, "firstName": "Later"}).json()["contact"]["id"]
        seen = _ids(api, loc)
        assert first in seen and second not in seen
        assert second in {c["id"] for c in api.get("/contacts/", params={"locationId": loc, "limit": 100,
                                                                         "query": "later"}).json()["contacts"]}
        sandbox.admin.configure(search_lag_s=0)  # back to the data itself
        assert second in _ids(api, loc)
