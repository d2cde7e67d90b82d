"""Encryption at rest for portal secrets and saved browser sessions (Fernet, with key rotation).

Keys come from settings (`PORTAL_AGENT_VAULT_KEYS`, comma-separated, newest first). Encrypting always
uses the newest key; decrypting tries every key, so old rows keep working during a rotation and
`rotate()` re-encrypts them under the newest key. Without configured keys a key file is created once in
the data directory (mode 0600), so the demo works with no configuration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """Raised when a ciphertext cannot be decrypted with any configured key (no secret in the message)."""


class Vault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise VaultError("vault: no encryption key configured")
        self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])

    @classmethod
    def from_settings(cls, keys: str, data_dir: Path) -> Vault:
        if keys.strip():
            return cls([k.strip() for k in keys.split(",") if k.strip()])
        path = data_dir / "vault.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls([path.read_text().strip()])

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as e:
            raise VaultError("vault: ciphertext does not decrypt with any configured key") from e

    def encrypt_json(self, obj) -> bytes:
        return self.encrypt(json.dumps(obj, separators=(",", ":")).encode())

    def decrypt_json(self, token: bytes):
        return json.loads(self.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as e:
            raise VaultError("vault: ciphertext does not decrypt with any configured key") from e
