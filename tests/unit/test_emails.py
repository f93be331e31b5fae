"""Email addresses for user accounts: valid by the RFCs, no DNS lookups."""

from __future__ import annotations

import pytest

from mediabeat.auth.emails import InvalidEmail, check_email


@pytest.mark.parametrize(
    "address",
    ["editor@example.org", "admin@localhost", "a@example.test", "ops@corp.internal", "é@exämple.org", "a+b@x.io"],
)
def test_valid_addresses_are_accepted(address: str) -> None:
    assert check_email(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "a@",
        "@example.org",
        "a",
        "a@@example.org",
        "a b@example.org",
        "a@exa mple.org",
        "a\x00@example.org",
        "a\n@example.org",
        "a..b@example.org",
        "a@-example.org",
        "a@example..org",
        "x@[127.0.0.1]",
        '"quoted"@example.org',
        "a@host.local",
        "<a@example.org>",
        "a@example.org, b@example.org",
        "a" * 310 + "@example.org",
    ],
)
def test_invalid_addresses_are_refused_with_a_reason(address: str) -> None:
    with pytest.raises(InvalidEmail, match=r"not an email address|at most 320"):
        check_email(address)
