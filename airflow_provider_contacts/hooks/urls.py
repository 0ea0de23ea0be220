"""What the hook puts into URLs, and what it lets out of them.

Ids are path segments, never paths
    HighLevel ids are short ASCII strings (``sx6wyHhbFdRXh302LLNR``, 20 characters, in every
    example of contacts.json and locations.json; Mongo-style 24-hex ids elsewhere). Every id the
    hook interpolates into a URL path is checked by :func:`check_id` first: 1 to
    :data:`MAX_ID_LENGTH` characters of ``A-Z a-z 0-9 _ -``. Anything else - an empty id, a dot
    segment (``.``, ``..``), ``/``, ``?``, ``#``, ``%``, whitespace, control or non-ASCII
    characters - is refused with :class:`~airflow_provider_contacts.errors.GHLValidationError`
    naming the parameter, before any request. Without it ``delete_note(C, "..")`` sent
    ``DELETE /contacts/C/notes/..``, which HTTP clients and servers normalise to
    ``DELETE /contacts/C``: the contact itself was deleted (issue #14).

    The paths themselves are built by one function,
    :func:`~airflow_provider_contacts.hooks.operations.api_path`, used by every operation (sync and
    async); the transports refuse any path that is not a sequence of such plain segments
    (:func:`check_request_path`) as a last line of defence for code that builds paths by hand.

Credentials in URLs never leave the hook
    :func:`redact_url_secrets` rewrites every ``scheme://user:password@host`` in a text to
    ``scheme://user:***@host`` (a user without a password, which may itself be a token, becomes
    ``***``). It is the one helper the hook, its settings, its transports and
    :class:`~airflow_provider_contacts.errors.GHLAPIError` use for every log line, error message
    and ``repr`` that could hold a URL. :func:`split_url_credentials` takes credentials out of a
    base URL: HighLevel authenticates with a Bearer token only, so the hook never sends them (see
    :class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings`).

This module imports nothing from the provider at import time (``errors`` imports it).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

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

#: ``scheme://userinfo@``: the user-info runs to the last ``@`` before the host (a password may
#: hold an unencoded ``@``) and never crosses ``/ ? #``, whitespace or quotes.
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@'\"<>]+(?:@[^\s/?#@'\"<>]+)*)@"
)
REDACTED = "***"


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
    from airflow_provider_contacts.errors import GHLValidationError

    noun = ID_NOUNS.get(name, name.removesuffix("_id").replace("_", " "))
    raise GHLValidationError(
        f"parameter '{name}': {_shown(value)} is not a HighLevel id (letters, digits, _ and -, 1 to "
        f"{MAX_ID_LENGTH} characters); pass the {noun}'s id",
        operation=operation,
    )


def check_request_path(method: str, path: str, operation: str | None = None) -> None:
    """Refuse a request path that is not ``/`` followed by plain segments (letters, digits, ``_``,
    ``-``): no dot segment, ``%``, ``?``, ``#``, whitespace or empty segment in the middle.

    The transports call it before every request, so a path built without
    :func:`~airflow_provider_contacts.hooks.operations.api_path` cannot reach another record.

    :raises GHLValidationError: the path is refused (nothing is sent).
    """
    if isinstance(path, str) and _REQUEST_PATH.fullmatch(path):
        return
    from airflow_provider_contacts.errors import GHLValidationError

    raise GHLValidationError(
        f"refusing to send {method} {_shown(path)}: every path segment must be a plain name or a "
        "HighLevel id (letters, digits, _ and -); build paths with api_path(), which checks each id",
        operation=operation,
    )


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{REDACTED}@" if sep else f"{match.group('scheme')}{REDACTED}@"


def redact_url_secrets(text: Any) -> Any:
    """``text`` with the password of every URL in it replaced by ``***``.

    ``http://user:pass@host/x`` -> ``http://user:***@host/x``; ``https://token@host`` ->
    ``https://***@host`` (a lone user-info part may be a token). Strings are rewritten; anything
    else is returned unchanged. Texts without ``://`` and ``@`` are returned as they are (e-mail
    addresses stay intact). Never raises.
    """
    if not isinstance(text, str) or "@" not in text or "://" not in text:
        return text
    return _URL_USERINFO.sub(_mask_userinfo, text)


def split_url_credentials(url: str) -> tuple[str, list[str]]:
    """``url`` without its user-info, and the secrets that were in it.

    :returns: ``(url without "user:password@", secrets)``; ``secrets`` holds the password (raw and
        percent-decoded) or, for a user-info without a password, the user; ``[]`` when the URL had
        no user-info.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, []
    if "@" not in parts.netloc:
        return url, []
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    secret = password if sep else user
    secrets = [s for s in dict.fromkeys([secret, unquote(secret)]) if s]
    return parts._replace(netloc=hostport).geturl(), secrets


__all__ = [
    "HIGHLEVEL_ID",
    "ID_NOUNS",
    "MAX_ID_LENGTH",
    "REDACTED",
    "check_id",
    "check_request_path",
    "is_highlevel_id",
    "redact_url_secrets",
    "split_url_credentials",
]
