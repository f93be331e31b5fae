"""Whether a string is an email address a user account may have, by the rules of RFC 5321/5322 and IDNA."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# A self-hosted service's own accounts live here: the first admin defaults to admin@localhost.
# email-validator refuses it as a special-use name, so its local part is checked on a stand-in domain.
LOCAL_DOMAINS = frozenset({"localhost"})
STAND_IN_DOMAIN = "example.test"
MAX_LENGTH = 320


class InvalidEmail(ValueError):
    """Not an email address; the message says what is wrong with it."""


def check_email(address: str) -> str:
    """`address` when it is a valid email address, else InvalidEmail. Nothing is looked up (no DNS).

    Accepts internationalised addresses and the .test and .internal names that test and
    intranet installations use; refuses spaces, control characters, quoted or empty local parts,
    IP-literal domains and anything that is not one address.
    """
    if len(address) > MAX_LENGTH:
        raise InvalidEmail(f"an email address has at most {MAX_LENGTH} characters")
    local, at, domain = address.rpartition("@")
    probe = f"{local}@{STAND_IN_DOMAIN}" if at and domain.lower() in LOCAL_DOMAINS else address
    try:
        validate_email(
            probe, check_deliverability=False, test_environment=True, allow_quoted_local=False, allow_empty_local=False
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{address!r} is not an email address: {exc}") from None
    return address
