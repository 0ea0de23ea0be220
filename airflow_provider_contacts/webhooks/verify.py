"""Signature verification of HighLevel webhook deliveries, over the exact body bytes.

HighLevel signs every delivery twice (``WebhookAuthentication.md``; ``ghl-live-notes.md``,
"Webhooks"):

``x-wh-signature``
    base64 of an RSA-SHA256 signature (PKCS#1 v1.5) of the exact request body, made with
    HighLevel's 4096-bit key. The public half is published in ``WebhookAuthentication.md`` and
    shipped here as :data:`HIGHLEVEL_RSA_PUBLIC_KEY_PEM`; it is the default RSA key.
``x-ghl-signature``
    base64 of an Ed25519 signature of the exact request body. HighLevel's documentation
    publishes no Ed25519 key, so this header is checked only when an Ed25519 public key is
    configured (``[ghl_webhooks] ed25519_public_key``, ``--ed25519-public-key``).

Rules (:meth:`WebhookVerifier.verify`):

* the body is verified as received, byte for byte: never re-serialised JSON;
* an event is accepted when **at least one** signature it carries verifies with a configured
  key (a key rotated on one side still lets the other signature through; a mismatch on the other
  header is reported in :attr:`Verification.failed` and logged by the receiver);
* an event is rejected when it carries no signature header, when no configured key can check the
  signatures it carries, or when every signature it carries fails;
* there is **no replay window** on the body's ``timestamp``: HighLevel retries an event (after a
  429) with its original ``timestamp`` and ``webhookId`` for about an hour, so a window would
  reject every retry. Replays are harmless instead: the store dedupes by ``webhookId``.

Keys are given as PEM text, a path to a PEM file, or (Ed25519 only) the base64 of the raw 32-byte
key. A PEM text or file may hold several keys (one ``BEGIN PUBLIC KEY`` block each): a signature
verifying with any of them counts, which lets a deployment accept both keys across a rotation.
Verification uses the ``cryptography`` library.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "DISABLED_KEY_VALUES",
    "ED25519_SIGNATURE_HEADER",
    "HIGHLEVEL_RSA_PUBLIC_KEY_PEM",
    "RSA_SIGNATURE_HEADER",
    "Verification",
    "WebhookVerifier",
    "load_ed25519_public_keys",
    "load_rsa_public_keys",
]

#: Header of the RSA-SHA256 (PKCS#1 v1.5) signature, base64 (``WebhookAuthentication.md``).
RSA_SIGNATURE_HEADER = "x-wh-signature"
#: Header of the Ed25519 signature, base64 (``ghl-live-notes.md``, "Webhooks").
ED25519_SIGNATURE_HEADER = "x-ghl-signature"

#: HighLevel's published webhook public key (RSA 4096), copied from ``WebhookAuthentication.md``
#: ("The public key in this doc is the one to use to validate the webhook payload"). HighLevel
#: announces rotations by email and in its developer Slack; configure the new key (or both, in one
#: PEM text) through ``[ghl_webhooks] rsa_public_key``.
HIGHLEVEL_RSA_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""

#: Key setting values that switch a signature header off (case-insensitive).
DISABLED_KEY_VALUES = frozenset({"none", "off", "disabled"})

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
PublicKey = Union[RSAPublicKey, Ed25519PublicKey]


def _key_text(value: str, setting: str) -> str:
    """The PEM (or raw base64) text of a key setting: the value itself, or the file it names."""
    text = value.strip().replace("\\n", "\n")  # PEMs pasted into env vars often carry literal \n
    if "-----BEGIN" in text:
        return text
    path = Path(text).expanduser()
    try:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    except OSError as exc:  # unreadable file, name too long for a path, ...
        raise ValueError(f"{setting}: cannot read key file {str(path)!r}: {exc}") from exc
    return text


def _load_keys(value: str, setting: str, expected: type, kind: str) -> tuple[PublicKey, ...]:
    text = _key_text(value, setting)
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    keys: list[PublicKey] = []
    if not blocks and expected is Ed25519PublicKey:
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return (Ed25519PublicKey.from_public_bytes(raw),)
    if not blocks:
        accepted = "PEM text ('-----BEGIN PUBLIC KEY-----...'), a path to a PEM file"
        if expected is Ed25519PublicKey:
            accepted += ", or the base64 of the raw 32-byte key"
        raise ValueError(
            f"{setting}: not a {kind} public key and not a readable file; give {accepted}, "
            f"or 'none' to switch the header off"
        )
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block.encode("ascii"))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"{setting}: a PEM block does not hold a public key ({exc})") from exc
        if not isinstance(key, expected):
            raise ValueError(f"{setting}: expected a {kind} public key, got {type(key).__name__.lstrip('_')}")
        keys.append(key)
    return tuple(keys)


def load_rsa_public_keys(value: str | None, setting: str = "rsa_public_key") -> tuple[RSAPublicKey, ...]:
    """RSA public keys for ``x-wh-signature`` from PEM text or a PEM file path.

    ``None`` or ``""``: HighLevel's published key (:data:`HIGHLEVEL_RSA_PUBLIC_KEY_PEM`);
    ``none``/``off``/``disabled``: no key (the header is not checked).
    Raises ``ValueError`` naming ``setting`` for anything that is not an RSA public key.
    """
    if value is None or not value.strip():
        value = HIGHLEVEL_RSA_PUBLIC_KEY_PEM
    if value.strip().lower() in DISABLED_KEY_VALUES:
        return ()
    return _load_keys(value, setting, RSAPublicKey, "RSA")  # type: ignore[return-value]


def load_ed25519_public_keys(value: str | None, setting: str = "ed25519_public_key") -> tuple[Ed25519PublicKey, ...]:
    """Ed25519 public keys for ``x-ghl-signature`` from PEM text, a PEM file path or base64 of the
    raw 32 bytes. ``None``, ``""`` or ``none``: no key (HighLevel publishes none; the header is
    then not checked). Raises ``ValueError`` naming ``setting`` for anything else."""
    if value is None or not value.strip() or value.strip().lower() in DISABLED_KEY_VALUES:
        return ()
    return _load_keys(value, setting, Ed25519PublicKey, "Ed25519")  # type: ignore[return-value]


def _decode_signature(value: str) -> bytes | None:
    """base64 (standard or URL-safe, padding optional) -> bytes; ``None`` when not base64."""
    text = "".join(value.split())
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class Verification:
    """Outcome of :meth:`WebhookVerifier.verify`.

    ``valid``: headers whose signature verified; ``failed``: headers whose signature did not
    (or was not base64); ``unchecked``: headers present but with no key configured to check them.
    ``reason``: why the event is rejected (empty when ``ok``). Never holds signature values.
    """

    ok: bool
    valid: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class WebhookVerifier:
    """Checks ``x-wh-signature`` (RSA) and ``x-ghl-signature`` (Ed25519) of a delivery.

    Build with :meth:`from_settings`; ``rsa_keys``/``ed25519_keys`` may be empty (that header is
    then not checked).
    """

    rsa_keys: tuple[RSAPublicKey, ...] = field(default_factory=tuple)
    ed25519_keys: tuple[Ed25519PublicKey, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, rsa_public_key: str | None = None, ed25519_public_key: str | None = None) -> WebhookVerifier:
        """Keys from settings (see :func:`load_rsa_public_keys`, :func:`load_ed25519_public_keys`):
        by default HighLevel's RSA key and no Ed25519 key. Raises ``ValueError`` for a bad key,
        and when both headers end up switched off (nothing could ever be accepted)."""
        verifier = cls(load_rsa_public_keys(rsa_public_key), load_ed25519_public_keys(ed25519_public_key))
        if not verifier.rsa_keys and not verifier.ed25519_keys:
            raise ValueError(
                "rsa_public_key is 'none' and no ed25519_public_key is set: no signature could be checked; "
                "configure at least one public key"
            )
        return verifier

    @property
    def headers(self) -> tuple[str, ...]:
        """The signature headers this verifier can check."""
        return tuple(h for h, keys in ((RSA_SIGNATURE_HEADER, self.rsa_keys), (ED25519_SIGNATURE_HEADER, self.ed25519_keys)) if keys)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verification:
        """Verify ``body`` (the exact bytes received) against the signature headers.

        ``headers``: any mapping of the request headers (names matched case-insensitively).
        """
        lowered = {str(k).lower(): v for k, v in headers.items()}
        present = [h for h in (RSA_SIGNATURE_HEADER, ED25519_SIGNATURE_HEADER) if str(lowered.get(h) or "").strip()]
        if not present:
            return Verification(False, reason=f"no signature: neither {RSA_SIGNATURE_HEADER} nor {ED25519_SIGNATURE_HEADER} is present")
        valid: list[str] = []
        failed: list[str] = []
        unchecked: list[str] = []
        for header in present:
            keys = self.rsa_keys if header == RSA_SIGNATURE_HEADER else self.ed25519_keys
            if not keys:
                unchecked.append(header)
                continue
            signature = _decode_signature(str(lowered[header]))
            if signature is not None and any(self._check(key, signature, body) for key in keys):
                valid.append(header)
            else:
                failed.append(header)
        if valid:
            return Verification(True, tuple(valid), tuple(failed), tuple(unchecked))
        if failed:
            reason = f"signature does not match the body: {', '.join(failed)}"
        else:
            setting = {RSA_SIGNATURE_HEADER: "rsa_public_key", ED25519_SIGNATURE_HEADER: "ed25519_public_key"}
            reason = "no key configured for the signature present: " + ", ".join(
                f"{h} (set {setting[h]})" for h in unchecked
            )
        return Verification(False, (), tuple(failed), tuple(unchecked), reason)

    @staticmethod
    def _check(key: PublicKey, signature: bytes, body: bytes) -> bool:
        try:
            if isinstance(key, RSAPublicKey):
                key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(signature, body)
        except InvalidSignature:
            return False
        return True
