"""Encryption at rest for provider credentials and webhook secrets (Fernet, MultiFernet).

The first key encrypts; every key decrypts, so a new key can be put in front of the old one
and stored values re-encrypted at leisure (``rotate``).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class UndecryptableSecret(Exception):
    """A stored value was encrypted under a key that is no longer configured."""


class Vault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise UndecryptableSecret(
                "a stored secret cannot be decrypted with the configured OKR_SYNC_SECRET_KEY"
            ) from exc

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        value = json.loads(self.decrypt(token))
        assert isinstance(value, dict)
        return value

    def rotate(self, token: str) -> str:
        """The value re-encrypted under the first key."""
        return self._fernet.rotate(token.encode()).decode()
