"""Paging through contacts both ways HighLevel offers: advanced search (page/pageLimit capped at
10,000 records, or the searchAfter cursor) and the deprecated GET /contacts/ with startAfter."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ghl_sandbox.testing import SandboxServer


@pytest.fixture
def api(sandbox: SandboxServer) -> httpx.Client:
    with sandbox.client() as client:
        yield client


def _search(api: httpx.Client, location_id: str, **body: Any) -> dict[str, Any]:
    r = api.post("/contacts/search", json={"locationId": location_id, **body})
    assert r.status_code == 200, r.text
    return r.json()


def _walk_search_after(api: httpx.Client, location_id: str, page_limit: int, **body: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _search(api, location_id, pageLimit=page_limit, **({"searchAfter": cursor} if cursor else {}), **body)
        seen.extend(page["contacts"])
        if len(page["contacts"]) < page_limit:
            return seen
        cursor = page["contacts"][-1]["searchAfter"]


def test_page_based_paging_returns_every_contact_once_in_date_added_order(sandbox: SandboxServer,
                                                                          api: httpx.Client) -> None:
    pages = [_search(api, sandbox.location_id, page=p, pageLimit=60) for p in (1, 2, 3, 4)]
    ids = [c["id"] for page in pages for c in page["contacts"]]
    assert all(page["total"] == 200 for page in pages)
    assert len(ids) == len(set(ids)) == 200
    keys = [tuple(c["searchAfter"]) for page in pages for c in page["contacts"]]
    assert keys == sorted(keys)


def test_page_limit_above_500_is_rejected(sandbox: SandboxServer, api: httpx.Client) -> None:
    r = api.post("/contacts/search", json={"locationId": sandbox.location_id, "pageLimit": 501})
    assert r.status_code == 422 and "pageLimit must not be greater than 500" in r.json()["message"][0]


def test_page_window_beyond_10000_is_rejected_but_search_after_is_not(sandbox: SandboxServer,
                                                                      api: httpx.Client) -> None:
    r = api.post("/contacts/search", json={"locationId": sandbox.location_id, "page": 21, "pageLimit": 500})
    assert r.status_code == 400 and "searchAfter" in r.json()["message"]
    assert api.post("/contacts/search", json={"locationId": sandbox.location_id, "page": 20,
                                              "pageLimit": 500}).status_code == 200


def test_search_after_walks_all_contacts_with_ties_on_date_added(sandbox: SandboxServer, api: httpx.Client) -> None:
    contacts = _walk_search_after(api, sandbox.location_id, 7)
    assert len({c["id"] for c in contacts}) == len(contacts) == 200
    added = [c["searchAfter"][0] for c in contacts]
    assert len(set(added)) < len(added), "the seed has contacts sharing dateAdded (tie-break by id)"


def test_search_after_with_descending_sort_and_filters(sandbox: SandboxServer, api: httpx.Client) -> None:
    body = {"sort": [{"field": "dateUpdated", "direction": "desc"}],
            "filters": [{"field": "tags", "operator": "eq", "value": "vip"}]}
    contacts = _walk_search_after(api, sandbox.location_id, 5, **body)
    expected = [c for c in sandbox.admin.dump()["contacts"] if "vip" in c["tags"]]
    assert {c["id"] for c in contacts} == {c["id"] for c in expected}
    updated = [c["searchAfter"][0] for c in contacts]
    assert updated == sorted(updated, reverse=True)


def test_filters_eq_not_eq_contains_exists_range(sandbox: SandboxServer, api: httpx.Client) -> None:
    everyone = sandbox.admin.dump()["contacts"]

    def ids(filters: list[dict[str, Any]]) -> set[str]:
        return {c["id"] for c in _search(api, sandbox.location_id, pageLimit=500, filters=filters)["contacts"]}

    assert ids([{"field": "country", "operator": "eq", "value": "de"}]) == {
        c["id"] for c in everyone if c["country"] == "DE"}
    assert ids([{"field": "country", "operator": "not_eq", "value": "DE"}]) == {
        c["id"] for c in everyone if c["country"] != "DE"}
    assert ids([{"field": "email", "operator": "contains", "value": "EXAMPLE.org"}]) == {
        c["id"] for c in everyone if c["email"] and "example.org" in c["email"].lower()}
    assert ids([{"field": "email", "operator": "exists"}]) == {c["id"] for c in everyone if c["email"]}
    without_email = ids([{"field": "email", "operator": "not_exists"}])
    assert without_email and without_email == {c["id"] for c in everyone if not c["email"]}
    mid = sorted(c["dateUpdated"] for c in everyone)[100]
    assert ids([{"field": "dateUpdated", "operator": "range", "value": {"gte": mid}}]) == {
        c["id"] for c in everyone if c["dateUpdated"] >= mid}
    either = ids([{"group": "OR", "filters": [{"field": "country", "operator": "eq", "value": "DE"},
                                              {"field": "country", "operator": "eq", "value": "JP"}]}])
    assert either == {c["id"] for c in everyone if c["country"] in ("DE", "JP")}


def test_custom_field_filter_and_free_text_query(sandbox: SandboxServer, api: httpx.Client) -> None:
    dump = sandbox.admin.dump()
    # custom fields differ per location: take whichever single-choice field this one has
    picked = next(f for f in dump["customFields"] if f["dataType"] in ("SINGLE_OPTIONS", "RADIO", "TEXT"))
    values = [v["value"] for c in dump["contacts"] for v in c["customFields"] if v["id"] == picked["id"]]
    wanted = max(set(values), key=values.count)
    on_it = {c["id"] for c in dump["contacts"]
             if any(v["id"] == picked["id"] and v["value"] == wanted for v in c["customFields"])}
    found = _search(api, sandbox.location_id, pageLimit=500,
                    filters=[{"field": f"customFields.{picked['id']}", "operator": "eq", "value": wanted}])
    assert on_it and {c["id"] for c in found["contacts"]} == on_it and found["total"] == len(on_it)
    someone = next(c for c in dump["contacts"] if c["lastName"] == "Müller")
    by_name = _search(api, sandbox.location_id, pageLimit=500, query="MÜLLER")
    assert someone["id"] in {c["id"] for c in by_name["contacts"]}
    assert all("müller" in c["fullNameLowerCase"] or "müller" in (c["emailLowerCase"] or "")
               or "müller" in (c["companyName"] or "").lower() for c in by_name["contacts"])


def test_bad_filter_is_422_naming_it(sandbox: SandboxServer, api: httpx.Client) -> None:
    r = api.post("/contacts/search", json={"locationId": sandbox.location_id,
                                           "filters": [{"field": "email", "operator": "like", "value": "x"}]})
    assert r.status_code == 422 and r.json()["message"][0].startswith("filters[0].operator must be one of")
    r = api.post("/contacts/search", json={"locationId": sandbox.location_id,
                                           "sort": [{"field": "shoeSize", "direction": "asc"}]})
    assert r.status_code == 422 and "sort[0].field" in r.json()["message"][0]


def test_search_sees_contacts_changed_after_the_first_page(sandbox: SandboxServer, api: httpx.Client) -> None:
    first = _search(api, sandbox.location_id, pageLimit=10, sort=[{"field": "dateUpdated", "direction": "asc"}])
    changed = sandbox.admin.update_contact(first["contacts"][0]["id"], lastName="Changed")
    cursor = first["contacts"][-1]["searchAfter"]
    later = _search(api, sandbox.location_id, pageLimit=500, searchAfter=cursor,
                    sort=[{"field": "dateUpdated", "direction": "asc"}])
    assert later["contacts"][-1]["id"] == changed["id"]


def test_legacy_listing_pages_with_start_after_and_meta(sandbox: SandboxServer, api: httpx.Client) -> None:
    ids: list[str] = []
    params: dict[str, Any] = {"locationId": sandbox.location_id, "limit": 70}
    next_urls: list[str] = []
    while True:
        body = api.get("/contacts/", params=params).json()
        ids.extend(c["id"] for c in body["contacts"])
        assert body["meta"]["total"] == 200 and body["meta"]["currentPage"] == len(next_urls) + 1
        if not body["meta"]["nextPageUrl"]:
            break
        next_urls.append(body["meta"]["nextPageUrl"])
        params = {**params, "startAfter": body["meta"]["startAfter"], "startAfterId": body["meta"]["startAfterId"]}
    assert len(next_urls) == 2 and len(ids) == len(set(ids)) == 200
    via_url = api.get(next_urls[0]).json()["contacts"]
    assert [c["id"] for c in via_url] == ids[70:140]


def test_legacy_listing_limit_is_capped_at_100(sandbox: SandboxServer, api: httpx.Client) -> None:
    r = api.get("/contacts/", params={"locationId": sandbox.location_id, "limit": 101})
    assert r.status_code == 422 and "limit must not be greater than 100" in r.json()["message"]


@pytest.mark.slow
def test_more_than_10000_contacts_come_through_search_after(sandbox_factory) -> None:
    big = sandbox_factory(contacts=10_500, seed=11, tasks_per_contact=0, notes_per_contact=0)
    with big.client() as api:
        over = api.post("/contacts/search", json={"locationId": big.location_id, "page": 21, "pageLimit": 500})
        assert over.status_code == 400
        contacts = _walk_search_after(api, big.location_id, 500)
    assert len(contacts) == len({c["id"] for c in contacts}) == 10_500
