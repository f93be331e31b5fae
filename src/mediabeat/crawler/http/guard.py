"""The SSRF guard: which addresses the crawler may connect to, checked after DNS resolution.

The guard resolves a host once, refuses it if any of its addresses is forbidden, and
hands back the vetted addresses; the HTTP client then connects to those IPs directly,
so a second (rebinding) resolution can never sneak a private address in.

A refusal's message names the host and why, never the address a name resolved to: members
read it on their feeds and jobs, and must not learn the internal network from it. The
address goes to the server log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from enum import StrEnum
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger(__name__)

# Cloud metadata endpoints: refused even inside an allowed range.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192")
)
# IPv6 ranges that carry an IPv4 address a relay or translator would connect to (RFC 3056,
# RFC 4380, RFC 6052, RFC 8215, RFC 4291): the embedded address is vetted as if it were the target.
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
TEREDO = ipaddress.IPv6Network("2001::/32")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_MASK = 0xFFFFFFFF


class AddressRefusal(StrEnum):
    """Why an address is refused, in words a member can read."""

    METADATA = "cloud metadata"
    UNSPECIFIED = "unspecified address"
    MULTICAST = "multicast"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    PRIVATE = "private network"
    RESERVED = "reserved range"
    NON_PUBLIC = "non-public"


class BlockedAddress(Exception):
    """The crawler refused to connect: the host resolves to an address it must not reach."""

    def __init__(self, host: str, reason: AddressRefusal, *, literal: bool) -> None:
        verb = "is" if literal else "resolves to"
        super().__init__(f"{host} {verb} an address the crawler never fetches ({reason}){_hint(reason)}")
        self.host = host
        self.reason = reason


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64); [] if none."""
    value = int(address)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in SIX_TO_FOUR:
        return [ipaddress.IPv4Address((value >> 80) & IPV4_MASK)]
    if address in TEREDO:
        # The server's address, then the client's: stored inverted (RFC 4380 section 4).
        return [ipaddress.IPv4Address((value >> 64) & IPV4_MASK), ipaddress.IPv4Address(~value & IPV4_MASK)]
    if address in NAT64:
        return [ipaddress.IPv4Address(value & IPV4_MASK)]
    if address in NAT64_LOCAL:
        # A /96 inside it puts the address last; the /48 layout splits it around the u octet (RFC 6052).
        split = (((value >> 64) & 0xFFFF) << 16) | ((value >> 40) & 0xFFFF)
        return [ipaddress.IPv4Address(value & IPV4_MASK), ipaddress.IPv4Address(split)]
    if address in IPV4_COMPATIBLE and value > 1:
        return [ipaddress.IPv4Address(value & IPV4_MASK)]
    return []


def forbidden_reason(
    address: IPAddress, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...] = ()
) -> AddressRefusal | None:
    """Why the crawler must not connect to `address`, or None if it may.

    Only public addresses by default. `allow_loopback` opens 127.0.0.0/8 and ::1 (the tests,
    the demo site); `allowed_networks` opens chosen ranges (an intranet's feeds). Metadata,
    unspecified and multicast addresses stay refused whatever is allowed. An IPv6 address that
    carries an IPv4 one is refused when that one is.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for inner in embedded_ipv4(address):
            reason = forbidden_reason(inner, allow_loopback=allow_loopback, allowed_networks=allowed_networks)
            if reason is not None:
                return reason
        if address.ipv4_mapped is not None:
            return None
    return _refusal(address, allow_loopback=allow_loopback, allowed_networks=allowed_networks)


def _refusal(
    address: IPAddress, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...]
) -> AddressRefusal | None:
    if address in METADATA_ADDRESSES:
        return AddressRefusal.METADATA
    if address.is_unspecified:
        return AddressRefusal.UNSPECIFIED
    if address.is_multicast:
        return AddressRefusal.MULTICAST
    if any(address in network for network in allowed_networks):
        return None
    if address.is_loopback:
        return None if allow_loopback else AddressRefusal.LOOPBACK
    if address.is_link_local:
        return AddressRefusal.LINK_LOCAL
    if address.is_private:
        return AddressRefusal.PRIVATE
    if address.is_reserved:
        return AddressRefusal.RESERVED
    if not address.is_global:
        return AddressRefusal.NON_PUBLIC
    return None


class NetGuard:
    """Resolves hosts and vets every address before the client may connect."""

    def __init__(self, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...] = ()) -> None:
        self.allow_loopback = allow_loopback
        self.allowed_networks = allowed_networks

    def check_ip(self, host: str, address: IPAddress) -> None:
        """Raise BlockedAddress if `host`, at `address`, must not be reached."""
        reason = forbidden_reason(address, allow_loopback=self.allow_loopback, allowed_networks=self.allowed_networks)
        if reason is None:
            return
        literal = host.strip("[]") == str(address)
        if not literal:
            log.warning("crawler refused %s: it resolves to %s (%s)", host, address, reason)
        raise BlockedAddress(host, reason, literal=literal)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, every one vetted; raises BlockedAddress if any is forbidden."""
        literal = host.strip("[]")
        try:
            address = ipaddress.ip_address(literal)
        except ValueError:
            address = None
        if address is not None:
            self.check_ip(host, address)
            return [str(address)]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        vetted: list[str] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            # Any forbidden address refuses the host: a name that mixes public and private
            # answers is exactly what a rebinding attack looks like.
            self.check_ip(host, ip)
            if str(ip) not in vetted:
                vetted.append(str(ip))
        if not vetted:
            raise OSError(f"cannot resolve {host}: no addresses")
        return vetted


_OPENED_BY_ALLOWED_NETWORKS = frozenset(
    {AddressRefusal.PRIVATE, AddressRefusal.LINK_LOCAL, AddressRefusal.RESERVED, AddressRefusal.NON_PUBLIC}
)


def literal_address_refusal(
    url: str, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...] = ()
) -> str | None:
    """Why the crawler would refuse `url` whose host is an IP address literal, in one sentence; None when
    it may be fetched or when the host is a name (a name is vetted when it is resolved, at fetch time)."""
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = forbidden_reason(address, allow_loopback=allow_loopback, allowed_networks=allowed_networks)
    if reason is None:
        return None
    return f"{host} is an address the crawler never fetches ({reason}){_hint(reason)}"


def _hint(reason: AddressRefusal) -> str:
    if reason is AddressRefusal.LOOPBACK:
        return "; set MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS=true to allow loopback"
    if reason in (
        AddressRefusal.PRIVATE,
        AddressRefusal.LINK_LOCAL,
        AddressRefusal.RESERVED,
        AddressRefusal.NON_PUBLIC,
    ):
        return "; list its range in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS to allow it"
    return ""
