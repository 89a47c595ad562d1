"""Token material: random, shown once, stored only as a SHA-256 hash.

The tokens carry 256 bits of entropy, so a fast hash is safe here (no dictionary to guess
from) and keeps authentication to one indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "okr_"
_DISPLAY_PREFIX_LEN = 12


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:_DISPLAY_PREFIX_LEN]
