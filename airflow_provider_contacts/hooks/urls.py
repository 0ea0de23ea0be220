"""Credentials in URLs never leave the hook.

:func:`redact_url_secrets` rewrites every ``scheme://user:password@host`` in a text to
``scheme://user:***@host`` (a user without a password, which may itself be a token, becomes
``***``). It is the one helper the hook, its settings, its transports and
:class:`~airflow_provider_contacts.errors.GHLAPIError` use for every log line, error message and
``repr`` that could hold a URL. :func:`split_url_credentials` takes credentials out of a base URL:
HighLevel authenticates with a Bearer token only, so the hook never sends them (see
:class:`~airflow_provider_contacts.hooks.settings.ConnectionSettings`).

What goes into request paths (ids) is checked by :mod:`.paths`. This module imports nothing from
the provider (``errors`` imports it).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

#: ``scheme://userinfo@``: the user-info runs to the last ``@`` before the host (a password may
#: hold an unencoded ``@``) and never crosses ``/ ? #``, whitespace or quotes.
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#@'\"<>]+(?:@[^\s/?#@'\"<>]+)*)@"
)
REDACTED = "***"


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


__all__ = ["REDACTED", "redact_url_secrets", "split_url_credentials"]
