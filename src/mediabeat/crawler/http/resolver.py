"""aiohttp's resolver, through the SSRF guard: the connector only ever sees addresses it vetted."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from mediabeat.crawler.http.guard import NetGuard


class GuardedResolver(AbstractResolver):
    """Resolves through `guard`. aiohttp does not ask a resolver about IP literals; SafeClient vets those."""

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.guard.resolve(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        return None
