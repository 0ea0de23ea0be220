"""Identifiers shaped like HighLevel's: 20 characters of ``[A-Za-z0-9]``."""

from __future__ import annotations

import random
import secrets
import string

ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 20


_BYTE_TO_CHAR = bytes((ID_ALPHABET * 5)[:256], "ascii")  # byte value -> id character


def seeded_id(rng: random.Random) -> str:
    """A deterministic id drawn from ``rng`` (fast: one ``randbytes`` call mapped onto the alphabet)."""
    return rng.randbytes(ID_LENGTH).translate(_BYTE_TO_CHAR).decode("ascii")


def new_id() -> str:
    """A fresh random id for objects created at run time."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_secret(prefix: str = "", nbytes: int = 24) -> str:
    """An unguessable token string (``prefix`` + url-safe random text)."""
    return prefix + secrets.token_urlsafe(nbytes)
