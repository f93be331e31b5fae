"""API tokens and session ids: random secrets that are shown once and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "mb_"
PREFIX_LENGTH = 10


def generate_token() -> str:
    """A new API token, e.g. mb_3q2X...; shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def generate_session_id() -> str:
    return secrets.token_urlsafe(32)


def generate_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a token or session id (hex SHA-256; the secret has 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    """The first characters, kept in clear so a person can tell tokens apart."""
    return token[:PREFIX_LENGTH]


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 20 <= len(value) <= 200
