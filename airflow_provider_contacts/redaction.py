"""Credentials inside URLs (``http://user:pass@host``, ``https://user:token@files.example.com/...``)
kept out of what operators, sensors and triggers log, render or return.

Airflow masks a connection's password and sensitive extras, but not credentials written into a
URL: a connection host such as ``http://user:pass@proxy.example.com``, or a templated
``output_path`` such as ``https://user:token@files.example.com/contacts.jsonl``. Two tools, built
on the hook's own URL helpers (:mod:`airflow_provider_contacts.hooks.urls`, the one place that
parses URL credentials):

* :func:`redact_url_credentials` rewrites a text (or a list/dict of texts), replacing the password
  of every URL in it with ``***`` (``http://user:***@host``; a lone user-info, which may be a
  token, becomes ``***``): for the texts this provider writes itself - log lines, error messages,
  trigger events, XCom values.
* :func:`mask_url_credentials` registers those credentials with Airflow's secrets masker
  (``mask_secret``), so that Airflow redacts them from everything else the process logs or renders
  afterwards: the hook's log lines, tracebacks, the rendered template fields shown in the UI.

Both are no-ops for values without credentials, and never raise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_contacts.hooks.urls import redact_url_secrets, split_url_credentials

#: Every URL in a text, overlapping ones too (``file:///x?u=https://user:pw@host``); the hook's
#: :func:`split_url_credentials` then takes the credentials out of each.
_URLS = re.compile(r"(?=(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+))")
_MAX_DEPTH = 5


def redact_url_credentials(value: Any, _depth: int = 0) -> Any:
    """``value`` with the password of every URL in it replaced by ``***`` (strings; lists, tuples
    and dicts item by item; anything else unchanged)."""
    if isinstance(value, str):
        return redact_url_secrets(value)
    if _depth < _MAX_DEPTH and isinstance(value, Mapping):
        return {k: redact_url_credentials(v, _depth + 1) for k, v in value.items()}
    if _depth < _MAX_DEPTH and isinstance(value, (list, tuple)):
        return type(value)(redact_url_credentials(v, _depth + 1) for v in value)
    return value


def mask_url_credentials(value: Any, _depth: int = 0) -> None:
    """Register the credentials of every URL in ``value`` (a string, or a list/dict of them, e.g. a
    rendered template field or an error message) with Airflow's secrets masker."""
    if isinstance(value, str):
        if "@" not in value or "://" not in value:
            return
        from airflow_provider_contacts.auth import mask_secret  # never raises

        for url in _URLS.findall(value):
            for secret in split_url_credentials(url)[1]:
                mask_secret(secret)
    elif _depth < _MAX_DEPTH and isinstance(value, Mapping):
        for item in value.values():
            mask_url_credentials(item, _depth + 1)
    elif _depth < _MAX_DEPTH and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            mask_url_credentials(item, _depth + 1)


__all__ = ["mask_url_credentials", "redact_url_credentials"]
