"""Rate limits that hold across gunicorn workers: counters live in the shared cache.

A fixed-window counter per client and scope: one small integer per key whatever the rate, where
DRF's built-in throttles keep a list of every request time (a large pickle at high rates, read and
rewritten on each request). The cost is a possible burst of twice the rate across a window edge.

Rates come from Django settings at request time (`THROTTLE_RATES`), so they can be changed per
environment, and per test with `override_settings`. A rate of `None` or "" disables that scope.
The 429 carries `Retry-After`: the seconds left in the current window.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while it defines APIView.
    from rest_framework.request import Request
    from rest_framework.views import APIView

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """'120/min' -> (120, 60); None or '' -> None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0].lower()]


class WindowThrottle(BaseThrottle):
    """Counts requests per (scope, client) in fixed windows of the rate's period."""

    scope = ""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def client_key(self, request: Request, view: APIView) -> str | None:
        """Who is counted; None exempts the request from this throttle."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        limit = parse_rate(settings.THROTTLE_RATES.get(self.scope))
        if limit is None:
            return True
        client = self.client_key(request, view)
        if client is None:
            return True
        count_allowed, period = limit
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{client}:{window}"
        cache = caches[settings.THROTTLE_CACHE]
        timeout = int((window + 1) * period - now) + 1
        if isinstance(cache, RedisCache):
            # INCR is atomic, so every worker's request is counted: one round trip per request,
            # plus setting the expiry when the window's first request created the counter.
            redis_key = cache.make_and_validate_key(key)
            client = _redis_client(cache, redis_key)
            count = client.incr(redis_key)
            if count == 1:
                client.expire(redis_key, timeout)
        else:
            # The database cache has no atomic increment (its incr() is a read and a write that
            # also resets the expiry): read and write with the window's own expiry. Two workers
            # racing on one client's key can each miss the other's write, so a burst can exceed
            # the limit by at most the number of requests in flight at once.
            count = (cache.get(key) or 0) + 1
            cache.set(key, count, timeout=timeout)
        if count <= count_allowed:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


def _redis_client(cache: RedisCache, key: str) -> Any:
    """The cache's client for writes, made once per cache object: Django's RedisCache builds a
    new client object (over its shared connection pool) for every call."""
    client = getattr(cache, "_throttle_client", None)
    if client is None:
        client = cache._cache.get_client(key, write=True)
        cache._throttle_client = client
    return client


class AnonThrottle(WindowThrottle):
    """Anonymous clients, by address (X-Forwarded-For per DRF's NUM_PROXIES setting)."""

    scope = "anon"

    def client_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class TriggerThrottle(WindowThrottle):
    """Starting ETL runs over HTTP, per token owner."""

    scope = "trigger"

    def client_key(self, request: Request, view: APIView) -> str | None:
        if request.method != "POST":
            return None
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return self.get_ident(request)
