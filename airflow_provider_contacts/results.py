"""Hook results as the small JSON values operators, sensors and triggers return (XCom, trigger
events) and log.

* :func:`to_jsonable`: pydantic models (the hook's answers), lists of them, datetimes -> JSON data
  with the API's field names; one form in every sensor mode and in the triggerer;
* :func:`pick`: the key fields of a record (XCom values stay small: ids and key fields, never a
  whole location);
* :func:`api_record`: one record as written to XCom, a table or a file (without paging state);
* :func:`succeeded`: the success flag of a write's answer;
* :func:`log_summary`: ids, flags and counts of a result for the task log (no personal data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    """Turn hook results (pydantic models, lists of them, datetimes) into JSON-able data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def pick(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The ``fields`` of ``record`` that are present and not ``None`` (key fields for XCom)."""
    return {f: record[f] for f in fields if record.get(f) is not None}


def api_record(model: Any) -> dict[str, Any]:
    """An API record as JSON data, without the search cursor (``searchAfter`` is paging state)."""
    data = to_jsonable(model)
    data.pop("searchAfter", None)
    return data


def succeeded(result: Any) -> bool:
    """Whether a hook result reports success (``True``, or a ``succeded``/``success`` flag)."""
    if isinstance(result, bool):
        return result
    data = to_jsonable(result)
    if isinstance(data, Mapping):
        for key in ("succeded", "succeeded", "success"):
            if key in data:
                return bool(data[key])
    return result is not None


def log_summary(value: Any) -> str:
    """A short description of an XCom value for the task log: ids, flags and counts only.

    Personal data (names, emails, phones, note bodies) stays out of the logs.
    """
    if isinstance(value, Mapping):
        keys = ", ".join(
            f"{k}={v!r}"
            for k, v in value.items()
            if isinstance(v, (bool, int, float)) or (isinstance(v, str) and (k == "id" or k.endswith(("_id", "Id"))))
        )
        counts = ", ".join(f"{k}: {len(v)} item(s)" for k, v in value.items() if isinstance(v, (list, dict)))
        return "; ".join(p for p in (keys, counts) if p) or "{}"
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    return type(value).__name__


__all__ = ["api_record", "log_summary", "pick", "succeeded", "to_jsonable"]
