"""The SSRF guard: which addresses the crawler may connect to, checked after DNS resolution.

The guard resolves a host once, refuses it if any of its addresses is forbidden, and
hands back the vetted addresses; the HTTP client then connects to those IPs directly,
so a second (rebinding) resolution can never sneak a private address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints: refused even inside an allowed range.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192")
)


class BlockedAddress(Exception):
    """The crawler refused to connect: the host resolves to an address it must not reach."""


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def forbidden_reason(
    address: IPAddress, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...] = ()
) -> str | None:
    """Why the crawler must not connect to `address`, or None if it may.

    Only public addresses by default. `allow_loopback` opens 127.0.0.0/8 and ::1 (the tests,
    the demo site); `allowed_networks` opens chosen ranges (an intranet's feeds). Metadata,
    unspecified and multicast addresses stay refused whatever is allowed.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_reason(address.ipv4_mapped, allow_loopback=allow_loopback, allowed_networks=allowed_networks)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in allowed_networks):
        return None
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


class NetGuard:
    """Resolves hosts and vets every address before the client may connect."""

    def __init__(self, *, allow_loopback: bool, allowed_networks: tuple[IPNetwork, ...] = ()) -> None:
        self.allow_loopback = allow_loopback
        self.allowed_networks = allowed_networks

    def check_ip(self, host: str, address: IPAddress) -> None:
        reason = forbidden_reason(address, allow_loopback=self.allow_loopback, allowed_networks=self.allowed_networks)
        if reason is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise BlockedAddress(f"refused to connect to {shown}: {reason}{_hint(reason)}")

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


def _hint(reason: str) -> str:
    if reason == "a loopback address":
        return " (set MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS=true to allow loopback)"
    if reason in ("a private address", "a link-local address", "a reserved address", "a non-public address"):
        return " (list its range in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS to allow it)"
    return ""
