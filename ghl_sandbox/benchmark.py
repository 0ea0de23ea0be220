"""Figures for the sandbox itself (printed, never asserted):
``python -m ghl_sandbox.benchmark --contacts 20000``.

Measures seeding, a cold search (filters + sort; builds the sorted index), warm 500-contact pages
through ``searchAfter`` in-process, and a full ``searchAfter`` walk over real HTTP.
"""

from __future__ import annotations

import argparse
import statistics
import time

from .config import SandboxConfig
from .search import parse_sort
from .state import SandboxState
from .testing import SandboxServer

FILTERS = [{"field": "dateUpdated", "operator": "range", "value": {"gte": "2022-06-01T00:00:00Z"}},
           {"field": "email", "operator": "exists"}]
SORT = parse_sort([{"field": "dateUpdated", "direction": "desc"}])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    config = SandboxConfig(seed=args.seed, contacts=args.contacts)

    t0 = time.perf_counter()
    state = SandboxState(config)
    seed_s = time.perf_counter() - t0
    loc = state.store.locations[state.store.primary_location_id]
    print(f"seed {args.contacts} contacts, {len(loc.tasks)} tasks, {len(loc.notes)} notes: {_ms(seed_s)}")

    def page(after: list | None) -> tuple[list, int]:
        return state.store.search(loc, filters=FILTERS, sort=SORT, query=None, page=1, page_limit=500,
                                  search_after=after)

    def page_json(after: list | None) -> bytes:
        return state.store.search_json(loc, filters=FILTERS, sort=SORT, query=None, page=1, page_limit=500,
                                       search_after=after)

    t0 = time.perf_counter()
    contacts, total = page(None)
    print(f"cold search (2 filters, sort dateUpdated desc, index build over {total} matches): "
          f"{_ms(time.perf_counter() - t0)}")
    timings = []
    after = contacts[-1]["searchAfter"]
    while True:
        t0 = time.perf_counter()
        contacts, _ = page(after)
        timings.append(time.perf_counter() - t0)
        if len(contacts) < 500:
            break
        after = contacts[-1]["searchAfter"]
    print(f"warm 500-contact searchAfter pages (in-process, dicts): median {_ms(statistics.median(timings))}, "
          f"max {_ms(max(timings))} over {len(timings)} pages")
    cursors = [None] + [c["searchAfter"] for c in page(None)[0][-1:]]
    for label in ("JSON body, cold cache", "JSON body, warm cache"):
        t0 = time.perf_counter()
        size = len(page_json(cursors[-1]))
        print(f"one 500-contact answer as {label}: {_ms(time.perf_counter() - t0)} ({size:,} bytes)")

    with SandboxServer(config) as sb, sb.client() as api:
        for label in ("first (fills the per-contact JSON cache)", "second"):
            t0 = time.perf_counter()
            cursor = None
            pages = fetched = 0
            while True:
                body = {"locationId": sb.location_id, "pageLimit": 500, **({"searchAfter": cursor} if cursor else {})}
                got = api.post("/contacts/search", json=body).json()["contacts"]
                pages += 1
                fetched += len(got)
                if len(got) < 500:
                    break
                cursor = got[-1]["searchAfter"]
            walk_s = time.perf_counter() - t0
            print(f"HTTP searchAfter walk, {label}: {fetched} contacts in {pages} pages, {_ms(walk_s)} "
                  f"({_ms(walk_s / pages)} per page incl. client JSON parsing, {fetched / walk_s:,.0f} contacts/s)")
        t0 = time.perf_counter()
        n = 200
        for _ in range(n):
            api.get(f"/contacts/{cursor[-1]}")  # type: ignore[index]
        print(f"HTTP get-contact: {_ms((time.perf_counter() - t0) / n)} per request (sequential)")


if __name__ == "__main__":
    main()
