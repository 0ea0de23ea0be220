"""What the hook puts into request paths: HighLevel ids as path segments, never paths.

HighLevel ids are short ASCII strings (``sx6wyHhbFdRXh302LLNR``, 20 characters, in every example of
contacts.json and locations.json; Mongo-style 24-hex ids elsewhere). Every id the hook interpolates
into a URL path is checked by :func:`check_id` first: 1 to :data:`MAX_ID_LENGTH` characters of
``A-Z a-z 0-9 _ -``. Anything else - an empty id, a dot segment (``.``, ``..``), ``/``, ``?``,
``#``, ``%``, whitespace, control or non-ASCII characters - is refused with
:class:`~airflow_provider_contacts.errors.GHLValidationError` naming the parameter, before any
request. Without it ``delete_note(C, "..")`` sent ``DELETE /contacts/C/notes/..``, which HTTP
clients and servers normalise to ``DELETE /contacts/C``: the contact itself was deleted (issue #14).

The paths themselves are built by one function, :func:`api_path`, used by every operation of the
hook, sync and async (through :class:`~airflow_provider_contacts.hooks.operations.Endpoint`); the
transports refuse any path that is not a sequence of such plain segments
(:func:`check_request_path`) as a last line of defence for code that builds paths by hand.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from airflow_provider_contacts.errors import GHLValidationError

#: Longest id accepted in a URL path (HighLevel's are 20 characters; generous for other id styles).
MAX_ID_LENGTH = 64

#: A HighLevel id as the hook accepts it in a URL path: ASCII letters, digits, ``_`` and ``-``.
HIGHLEVEL_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")

#: A request path the transports send: ``/`` then plain segments (``/contacts/``, ``/contacts/abc/notes``).
_REQUEST_PATH = re.compile(r"/(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]*")

#: What each path parameter of the hook is the id of (for the "pass the note's id" hint).
ID_NOUNS = {
    "contact_id": "contact",
    "task_id": "task",
    "note_id": "note",
    "location_id": "location",
    "business_id": "business",
    "workflow_id": "workflow",
    "campaign_id": "campaign",
    "field_id": "custom field",
}

_FORMATTER = string.Formatter()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def is_highlevel_id(value: Any) -> bool:
    """Whether ``value`` may be used as one URL path segment (see the module docstring)."""
    return isinstance(value, str) and HIGHLEVEL_ID.fullmatch(value) is not None


def check_id(value: Any, name: str, operation: str | None = None) -> str:
    """``value`` if it is a HighLevel id (letters, digits, ``_``, ``-``; 1..64 characters).

    :param name: the hook's parameter name (``note_id``), named in the error.
    :param operation: the contacts.json operationId, carried by the error.
    :raises GHLValidationError: (``status`` None: nothing was sent) e.g. ``parameter 'note_id':
        '..' is not a HighLevel id (letters, digits, _ and -); pass the note's id``.
    """
    if is_highlevel_id(value):
        return value
    noun = ID_NOUNS.get(name, name.removesuffix("_id").replace("_", " "))
    raise GHLValidationError(f"parameter '{name}': {not_an_id(value)}; pass the {noun}'s id", operation=operation)


def not_an_id(value: Any) -> str:
    """What is wrong with a value that fails :func:`is_highlevel_id`, for an error message that
    adds where the value came from and the fix: ``'..' is not a HighLevel id (letters, digits, _
    and -, 1 to 64 characters)``. Location ids are checked with it where they enter (the
    connection's extra, the hook's and the operators' ``location_id``), so that a bad one gets the
    same words wherever it is given."""
    return f"{_shown(value)} is not a HighLevel id (letters, digits, _ and -, 1 to {MAX_ID_LENGTH} characters)"


def check_request_path(method: str, path: str, operation: str | None = None) -> None:
    """Refuse a request path that is not ``/`` followed by plain segments (letters, digits, ``_``,
    ``-``): no dot segment, ``%``, ``?``, ``#``, whitespace or empty segment in the middle.

    The transports call it before every request, so a path built without :func:`api_path` cannot
    reach another record.

    :raises GHLValidationError: the path is refused (nothing is sent).
    """
    if isinstance(path, str) and _REQUEST_PATH.fullmatch(path):
        return
    raise GHLValidationError(
        f"refusing to send {method} {_shown(path)}: every path segment must be a plain name or a "
        "HighLevel id (letters, digits, _ and -); build paths with api_path(), which checks each id",
        operation=operation,
    )


def api_path(template: str, /, operation: str | None = None, **ids: Any) -> str:
    """The request path of ``template`` with each ``{name}`` replaced by the checked id ``ids[name]``.

    ``api_path("/contacts/{contact_id}/notes/{note_id}", "get-note", contact_id=c, note_id=n)``.
    The placeholders are the hook's parameter names, so an error names the parameter the caller
    passed. Every id must be a HighLevel id (:func:`check_id`: ``A-Z a-z 0-9 _ -``, 1..64
    characters); it is percent-encoded all the same. Ids are checked in the order of the template,
    so the first bad one is named.

    :param operation: the operationId the error carries.
    :raises GHLValidationError: an id that is empty, a dot segment, or holds ``/ ? # %``,
        whitespace, control or other characters - before any request (``status`` None), e.g.
        ``parameter 'note_id': '..' is not a HighLevel id (letters, digits, _ and -, 1 to 64
        characters); pass the note's id``.
    :raises ValueError: a placeholder without a value, or a value without a placeholder (a bug).
    """
    names = [field for _, field, _, _ in _FORMATTER.parse(template) if field is not None]
    if sorted(names) != sorted(ids):
        raise ValueError(f"api_path({template!r}): ids {sorted(ids)} do not match the placeholders {names}")
    encoded = {name: quote(check_id(ids[name], name, operation), safe="") for name in names}
    return template.format(**encoded)


def id_list(values: Sequence[str] | None, name: str, operation: str) -> list[str]:
    """A non-empty list of ids sent in a body (a single string is one id); otherwise a validation
    error naming ``name``."""
    if isinstance(values, str):
        values = [values]
    cleaned = [v for v in (values or []) if isinstance(v, str) and v.strip()]
    if not cleaned:
        raise GHLValidationError(f"parameter '{name}' must be a non-empty list of ids", operation=operation)
    return cleaned


__all__ = [
    "HIGHLEVEL_ID",
    "ID_NOUNS",
    "MAX_ID_LENGTH",
    "api_path",
    "check_id",
    "check_request_path",
    "id_list",
    "is_highlevel_id",
    "not_an_id",
]
