"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so both cases take the same time.

    Made when the web app is built (`prepare_sign_in`) or on the first check, not at import:
    hashing costs tens of milliseconds (more on a busy machine) that a CLI command which never
    checks a password should not pay.
    """
    return _hasher.hash(secrets.token_urlsafe(16))


def prepare_sign_in() -> None:
    """Make the dummy hash now, so that the first sign-in to an unknown account takes no longer than the others."""
    _dummy_hash()


class WeakPassword(ValueError):
    """The password breaks the policy; the message says how."""


def check_policy(password: str, *, email: str | None = None) -> None:
    """Raise WeakPassword with a clear message unless the password is acceptable."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters (it has {len(password)})")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise WeakPassword("the password must not start or end with whitespace")
    if len(set(password)) < 4:
        raise WeakPassword("the password must use at least 4 different characters")
    if email and password.lower() == email.lower():
        raise WeakPassword("the password must not be the email address")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if the password matches; with no hash, spends the same time and returns False."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters and should be replaced at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_password() -> str:
    """A random password that meets the policy, for a first admin."""
    return secrets.token_urlsafe(18)
