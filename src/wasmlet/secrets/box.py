"""The key and the cipher secrets are stored with: AES-256-GCM, the name as associated data.

The key comes from `WASMLET_SECRETS_KEY` (32 bytes, base64) or is generated on first start
into `secrets.key` in the data directory (mode 0600). Every node of a cluster needs the same
key, so a cluster sets `WASMLET_SECRETS_KEY`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ENV = "WASMLET_SECRETS_KEY"


class SecretKeyError(ValueError):
    """A configured key that is not 32 bytes of base64."""


class UndecryptableSecret(Exception):
    """A stored secret this key cannot open (another key, or a changed row)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the secrets key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._digest_key = hmac.digest(key, b"wasmlet secret digest", hashlib.sha256)

    def seal(self, name: str, value: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), name.encode())

    def open(self, name: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode())
        except (InvalidTag, ValueError) as exc:
            raise UndecryptableSecret(name) from exc
        return plain.decode()

    def digest(self, value: str) -> str:
        """A keyed digest: tells a changed value from an unchanged one and, unlike a plain
        hash, lets no one without the key test guesses against it."""
        return hmac.new(self._digest_key, value.encode(), hashlib.sha256).hexdigest()


def load_key(configured: str | None, path: Path) -> bytes:
    """The configured key, else the one in `path`, else a new one written there (0600)."""
    if configured:
        return _decode(configured, KEY_ENV)
    if path.is_file():
        return _decode(path.read_text("ascii").strip(), str(path))
    key = os.urandom(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(key).decode() + "\n")
    os.replace(tmp, path)
    return key


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"{where} must be {KEY_BYTES} random bytes in base64 (e.g. `openssl rand -base64 32`)"
        )
    return key
