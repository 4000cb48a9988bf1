"""Merchant secrets at rest: AES-256-GCM under a key derived from the configured secret key."""
from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import Settings
from gateway.errors import ConfigError

_VERSION = b"v1"


class SecretBox:
    """Encrypts a secret bound to its owner (the AAD), so a ciphertext cannot be moved to another row."""

    def __init__(self, key_material: str) -> None:
        if len(key_material) < 16:
            raise ConfigError("secret_key must be at least 16 characters")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"paymux secretbox v1").derive(
            key_material.encode()
        )
        self._aead = AESGCM(key)
        self._material = key_material.encode()
        self._mac_key = self.subkey(b"paymux fingerprint v1")

    @classmethod
    def from_settings(cls, settings: Settings) -> "SecretBox":
        key = settings.secret_key
        if not key:
            raise ConfigError("no secret_key: set PAYMUX_SECRET_KEY or secret_key in the config")
        if key.startswith("file:"):
            raise ConfigError(f"secret key file {key[5:]} does not exist: run `paymux init` to create it")
        return cls(key)

    def seal(self, plaintext: str, owner: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), owner.encode())
        return (_VERSION + b"." + base64.urlsafe_b64encode(nonce + sealed)).decode()

    def subkey(self, purpose: bytes) -> bytes:
        """A key of its own for one purpose (HKDF with `purpose` as info), never the encryption key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(self._material)

    def fingerprint(self, text: str) -> str:
        """A keyed digest (HMAC-SHA256) to compare sensitive values by, without storing them readably:
        a plain hash of a card number could be reversed by trying every number."""
        mac = hmac.HMAC(self._mac_key, hashes.SHA256())
        mac.update(text.encode())
        return mac.finalize().hex()

    def open(self, token: str, owner: str) -> str:
        version, _, body = token.encode().partition(b".")
        if version != _VERSION:
            raise ValueError("unknown secret format")
        raw = base64.urlsafe_b64decode(body)
        return self._aead.decrypt(raw[:12], raw[12:], owner.encode()).decode()


def ensure_key_file(reference: str | None) -> Path | None:
    """Create the key file a `file:` secret_key names, if it is missing. Returns the path created."""
    if not reference or not reference.startswith("file:"):
        return None
    path = Path(reference[5:]).expanduser()
    if path.exists():
        if path.stat().st_mode & 0o077:   # left readable by others (an earlier paymux, a copy): made private
            with contextlib.suppress(PermissionError):
                path.chmod(0o600)
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return path
