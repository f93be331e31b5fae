"""The crawler's HTTP client and what it is made of; the public names are re-exported here.

errors (FetchErrorKind, FetchError), guard (the SSRF rules), resolver (the guard inside aiohttp),
target (URL checks), limiter (per-host politeness), retry_after, body (decoding and size caps),
redirects (the pure redirect decision) and client (SafeClient, which carries it all out).
"""

from mediabeat.crawler.http.client import ClientConfig, FetchResult, SafeClient
from mediabeat.crawler.http.errors import FetchError, FetchErrorKind
from mediabeat.crawler.http.guard import AddressRefusal, BlockedAddress, IPNetwork, NetGuard, forbidden_reason
from mediabeat.crawler.http.limiter import (
    MAX_COOL_DOWN_S,
    MAX_CRAWL_DELAY_S,
    HostCoolingDown,
    HostLimiter,
    SharedLayer,
    SharedPoliteness,
)
from mediabeat.crawler.http.redirects import RedirectRefusal, RedirectRequest, next_redirect
from mediabeat.crawler.http.retry_after import retry_after_seconds

__all__ = [
    "MAX_COOL_DOWN_S",
    "MAX_CRAWL_DELAY_S",
    "AddressRefusal",
    "BlockedAddress",
    "ClientConfig",
    "FetchError",
    "FetchErrorKind",
    "FetchResult",
    "HostCoolingDown",
    "HostLimiter",
    "IPNetwork",
    "NetGuard",
    "RedirectRefusal",
    "RedirectRequest",
    "SafeClient",
    "SharedLayer",
    "SharedPoliteness",
    "forbidden_reason",
    "next_redirect",
    "retry_after_seconds",
]
