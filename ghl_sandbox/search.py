"""Contact search: filters, sort and the ``searchAfter`` cursor of ``POST /contacts/search``.

Filters (HighLevel's advanced search syntax): a list of clauses, all of which must hold; a clause
is ``{"field": f, "operator": op, "value": v}`` or a group ``{"group": "AND" | "OR", "filters": [...]}``.
Operators: ``eq``, ``not_eq``, ``contains``, ``not_contains``, ``exists``, ``not_exists``,
``range`` (value ``{"gt"|"gte"|"lt"|"lte": date-or-number}``; dates as ISO-8601 or epoch ms).
Fields: any top-level contact field (``email``, ``tags``, ``dateAdded``, ``firstNameLowerCase``...;
``address`` and ``address1`` both name the street address; ``dateOfBirth`` compares as a date) and
``customFields.<id>`` (DATE values are epoch ms: ``range`` takes ISO dates or epoch ms for them).
String comparisons ignore case; on arrays (``tags``) ``eq`` means "has".

Sort: ``[{"field": f, "direction": "asc" | "desc"}]``, default ``dateAdded asc``; the contact id
always breaks ties (ascending). Each returned contact carries ``searchAfter``: its sort values
(dates as epoch ms, strings lower-cased) followed by its id; a request with that list returns the
contacts strictly after it. Matching ids are kept as one sorted list per (filters, sort, query),
cached until the location's data changes, so a page is a ``bisect`` and a slice.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .dates import parse_datetime_ms
from .errors import unprocessable
from .shapes import date_of_birth_ms

DATE_FIELDS = frozenset({"dateAdded", "dateUpdated", "dateOfBirth", "lastActivity"})
OPERATORS = ("eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range")
RANGE_KEYS = ("gt", "gte", "lt", "lte")
SORTABLE = ("dateAdded", "dateUpdated", "firstNameLowerCase", "lastNameLowerCase", "fullNameLowerCase",
            "email", "emailLowerCase", "firstName", "lastName", "companyName", "city", "country", "source")

Predicate = Callable[[dict[str, Any], tuple[int, int]], bool]
"""Called with the contact dict and its ``(dateAdded_ms, dateUpdated_ms)``."""


class Desc:
    """Reverses the order of a string sort key (for ``direction: desc``)."""

    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: Desc) -> bool:
        return self.v > other.v

    def __gt__(self, other: Desc) -> bool:
        return self.v < other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Desc) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _field_value(contact: dict[str, Any], times: tuple[int, int], field: str) -> Any:
    if field == "dateAdded":
        return times[0]
    if field == "dateUpdated":
        return times[1]
    if field == "address":
        return contact.get("address1")
    if field == "dateOfBirth":
        value = date_of_birth_ms(contact.get("dateOfBirth"))
        return value if isinstance(value, int) else None
    if field.startswith(("customFields.", "customField.")):
        fid = field.split(".", 1)[1]
        for cf in contact.get("customFields") or ():
            if cf.get("id") == fid:
                return cf.get("value")
        return None
    return contact.get(field)


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _compile_clause(clause: Any, where: str) -> Predicate:
    if not isinstance(clause, dict):
        raise unprocessable(f"{where} must be an object with field, operator and value (or group and filters)")
    if "group" in clause or "filters" in clause:
        group = str(clause.get("group", "AND")).upper()
        if group not in ("AND", "OR"):
            raise unprocessable(f"{where}.group must be AND or OR")
        subs = clause.get("filters")
        if not isinstance(subs, list) or not subs:
            raise unprocessable(f"{where}.filters must be a non-empty array of filters")
        preds = [_compile_clause(c, f"{where}.filters[{i}]") for i, c in enumerate(subs)]
        if group == "AND":
            return lambda c, t: all(p(c, t) for p in preds)
        return lambda c, t: any(p(c, t) for p in preds)
    field = clause.get("field")
    op = clause.get("operator")
    if not isinstance(field, str) or not field:
        raise unprocessable(f"{where}.field should not be empty")
    if op not in OPERATORS:
        raise unprocessable(f"{where}.operator must be one of the following values: {', '.join(OPERATORS)}")
    value = clause.get("value")
    is_date = field in DATE_FIELDS
    if op in ("exists", "not_exists"):
        want = op == "exists"
        return lambda c, t: (not _is_empty(_field_value(c, t, field))) == want
    if op == "range":
        if not isinstance(value, dict) or not value or not set(value) <= set(RANGE_KEYS):
            raise unprocessable(
                f"{where}.value must be an object with any of {', '.join(RANGE_KEYS)} for operator range"
            )
        def bound(k: str, v: Any) -> float:
            if is_date:
                return parse_datetime_ms(v, f"{where}.value.{k}")
            try:
                return float(v)
            except (TypeError, ValueError):  # a date bound on a DATE custom field (stored as epoch ms)
                return parse_datetime_ms(v, f"{where}.value.{k}")

        try:
            bounds = {k: bound(k, v) for k, v in value.items()}
        except (TypeError, ValueError) as exc:
            raise unprocessable(str(exc)) from None

        def in_range(c: dict[str, Any], t: tuple[int, int]) -> bool:
            raw = _field_value(c, t, field)
            if raw is None:
                return False
            try:
                x = raw if isinstance(raw, (int, float)) else (
                    parse_datetime_ms(raw, field) if is_date else float(raw))
            except (TypeError, ValueError):
                return False
            return (("gt" not in bounds or x > bounds["gt"]) and ("gte" not in bounds or x >= bounds["gte"])
                    and ("lt" not in bounds or x < bounds["lt"]) and ("lte" not in bounds or x <= bounds["lte"]))

        return in_range
    if value is None:
        raise unprocessable(f"{where}.value should not be empty for operator {op}")
    if is_date and op in ("eq", "not_eq"):
        try:
            target_ms = parse_datetime_ms(value, f"{where}.value")
        except ValueError as exc:
            raise unprocessable(str(exc)) from None
        positive = op == "eq"
        return lambda c, t: (_field_value(c, t, field) == target_ms) == positive
    targets = [_norm(v) for v in (value if isinstance(value, list) else [value])]
    if op in ("eq", "not_eq"):
        positive = op == "eq"

        def eq(c: dict[str, Any], t: tuple[int, int]) -> bool:
            raw = _field_value(c, t, field)
            items = raw if isinstance(raw, list) else [raw]
            hit = any(_norm(x) in targets for x in items)
            return hit == positive

        return eq
    needles = [str(x) for x in targets]
    positive = op == "contains"

    def contains(c: dict[str, Any], t: tuple[int, int]) -> bool:
        raw = _field_value(c, t, field)
        items = raw if isinstance(raw, list) else [raw]
        hit = any(n in str(x).lower() for x in items if x is not None for n in needles)
        return hit == positive

    return contains


def compile_filters(filters: list[Any] | None, query: str | None) -> Predicate | None:
    """One predicate for the whole filter list plus the free-text ``query`` (or ``None`` for all)."""
    preds = [_compile_clause(c, f"filters[{i}]") for i, c in enumerate(filters or [])]
    if query:
        q = query.strip().lower()
        digits = "".join(ch for ch in q if ch.isdigit())

        def text(c: dict[str, Any], t: tuple[int, int]) -> bool:
            for key in ("fullNameLowerCase", "emailLowerCase", "companyName"):
                v = c.get(key)
                if v and q in v.lower():
                    return True
            phone = c.get("phone")
            return bool(digits and phone and digits in "".join(ch for ch in phone if ch.isdigit()))

        preds.append(text)
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    return lambda c, t: all(p(c, t) for p in preds)


SortSpec = tuple[tuple[str, bool], ...]
"""``((field, descending), ...)``."""


def parse_sort(sort: list[Any] | None) -> SortSpec:
    """Validate the ``sort`` list; default ``dateAdded asc``."""
    if not sort:
        return (("dateAdded", False),)
    spec: list[tuple[str, bool]] = []
    for i, item in enumerate(sort):
        if not isinstance(item, dict):
            raise unprocessable(f"sort[{i}] must be an object with field and direction")
        field, direction = item.get("field"), str(item.get("direction", "asc")).lower()
        if field not in SORTABLE:
            raise unprocessable(f"sort[{i}].field must be one of the following values: {', '.join(SORTABLE)}")
        if direction not in ("asc", "desc"):
            raise unprocessable(f"sort[{i}].direction must be one of the following values: asc, desc")
        spec.append((field, direction == "desc"))
    return tuple(spec)


def _raw_sort_value(contact: dict[str, Any], times: tuple[int, int], field: str) -> Any:
    v = _field_value(contact, times, field)
    if field in DATE_FIELDS:
        return v if isinstance(v, int) else 0
    return (v or "").lower() if isinstance(v, str) or v is None else str(v).lower()


def _key_part(raw: Any, field: str, desc: bool) -> Any:
    if field in DATE_FIELDS:
        return -raw if desc else raw
    return Desc(raw) if desc else raw


def sort_key(contact: dict[str, Any], times: tuple[int, int], spec: SortSpec) -> tuple[Any, ...]:
    """The comparable key of a contact under ``spec`` (id last)."""
    return (*(_key_part(_raw_sort_value(contact, times, f), f, d) for f, d in spec), contact["id"])


def cursor_of(contact: dict[str, Any], times: tuple[int, int], spec: SortSpec) -> list[Any]:
    """The ``searchAfter`` value shown on a contact."""
    return [*(_raw_sort_value(contact, times, f) for f, _ in spec), contact["id"]]


def cursor_key(search_after: list[Any], spec: SortSpec) -> tuple[Any, ...]:
    """Turn a client's ``searchAfter`` list back into a comparable key (422 if malformed)."""
    if not isinstance(search_after, list) or len(search_after) != len(spec) + 1:
        raise unprocessable(
            f"searchAfter must be the searchAfter array of the last contact of the previous page "
            f"({len(spec) + 1} values for this sort: sort values then the contact id)"
        )
    parts: list[Any] = []
    for (field, desc), raw in zip(spec, search_after):
        if field in DATE_FIELDS:
            try:
                raw = parse_datetime_ms(raw, "searchAfter")
            except ValueError as exc:
                raise unprocessable(str(exc)) from None
        else:
            raw = "" if raw is None else str(raw).lower()
        parts.append(_key_part(raw, field, desc))
    last = search_after[-1]
    if not isinstance(last, str):
        raise unprocessable("searchAfter must end with the contact id (a string)")
    return (*parts, last)


class SearchIndex:
    """Sorted, filtered id lists per query shape, invalidated by the location's data version."""

    def __init__(self, max_entries: int = 32) -> None:
        self._cache: OrderedDict[str, tuple[int, list[tuple[Any, ...]]]] = OrderedDict()
        self._max = max_entries

    def clear(self) -> None:
        """Forget every cached list."""
        self._cache.clear()

    def matching(
        self,
        version: int,
        contacts: dict[str, dict[str, Any]],
        times: dict[str, tuple[int, int]],
        filters: list[Any] | None,
        sort: SortSpec,
        query: str | None,
    ) -> list[tuple[Any, ...]]:
        """Sorted keys (last element: contact id) of the contacts matching ``filters``/``query``."""
        cache_key = json.dumps([filters, sort, query], sort_keys=True, default=str)
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] == version:
            self._cache.move_to_end(cache_key)
            return hit[1]
        pred = compile_filters(filters, query)
        keys = [
            sort_key(c, times[cid], sort)
            for cid, c in contacts.items()
            if pred is None or pred(c, times[cid])
        ]
        keys.sort()
        self._cache[cache_key] = (version, keys)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return keys


def page_after(keys: list[tuple[Any, ...]], after: tuple[Any, ...], limit: int) -> list[str]:
    """Ids of up to ``limit`` keys strictly after ``after``."""
    start = bisect.bisect_right(keys, after)
    return [k[-1] for k in keys[start:start + limit]]
