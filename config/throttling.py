"""Rate limits that hold across gunicorn workers: counters live in the shared cache.

A fixed-window counter per client and scope: one small integer per key whatever the rate, where
DRF's built-in throttles keep a list of every request time (a large pickle at high rates, read and
rewritten on each request). The cost is a possible burst of twice the rate across a window edge.

Rates come from Django settings at request time (`THROTTLE_RATES`), so they can be changed per
environment, and per test with `override_settings`. A rate of `None` or "" disables that scope.
The 429 carries `Retry-After`: the seconds left in the current window.

Counting is atomic on both shared caches, so the limit is exact however many workers serve:
Redis INCR, or on the database cache one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on the
cache table (PostgreSQL and SQLite both have it). Django's DatabaseCache has no atomic
increment, so the throttle writes its counters itself, as plain integers in the table's `value`
column: only the throttle reads them (`cache.get()` would expect a pickle), and `cache.clear()`
and Django's culling treat them as any other entry.

A cache that cannot be reached (no table yet, Redis down) lets the request through, with a
warning in the log: a broken rate limit must not take the API down with it. The API
documentation (`/docs`, `/api/schema/`) is never throttled: one page view fetches both.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, connections, router, transaction
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while it defines APIView.
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# drf-spectacular's views: the schema and the Swagger UI page that loads it.
DOCUMENTATION_MODULE = "drf_spectacular.views"


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
        if type(view).__module__ == DOCUMENTATION_MODULE:
            return True
        count_allowed, period = limit
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{client}:{window}"
        cache = caches[settings.THROTTLE_CACHE]
        # The counter lives until the window ends (and a second more, for clock differences).
        expires_at = (window + 1) * period + 1
        try:
            count = _increment(cache, key, now=now, expires_at=expires_at)
        except (DatabaseError, RedisError, OSError) as exc:
            logger.warning(
                "throttle %s: cache %r unreachable, request let through: %s",
                self.scope,
                settings.THROTTLE_CACHE,
                exc,
            )
            return True
        if count <= count_allowed:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


def _increment(cache: BaseCache, key: str, *, now: float, expires_at: float) -> int:
    """Add one to the counter `key` and return its new value, atomically."""
    if isinstance(cache, RedisCache):
        # One round trip per request, plus setting the expiry when the window's first request
        # created the counter.
        redis_key = cache.make_and_validate_key(key)
        client = _redis_client(cache, redis_key)
        count: int = client.incr(redis_key)
        if count == 1:
            client.expire(redis_key, int(expires_at - now) + 1)
        return count
    if isinstance(cache, BaseDatabaseCache):
        return _increment_in_table(cache, key, now=now, expires_at=expires_at)
    # Other backends (a test's local memory cache): as atomic as the backend's own incr().
    if cache.add(key, 1, timeout=expires_at - now):
        return 1
    return cache.incr(key)


def _increment_in_table(
    cache: BaseDatabaseCache, key: str, *, now: float, expires_at: float
) -> int:
    """The database cache's counter: one upsert, which the database serializes per key, so two
    workers counting the same client at once both count. Expired entries (earlier windows) are
    deleted first, so the table holds one row per client and scope, not one per window."""
    db = router.db_for_write(cache.cache_model_class)
    connection = connections[db]
    # Set by BaseDatabaseCache.__init__; django-stubs leave it out.
    table = connection.ops.quote_name(cache._table)  # type: ignore[attr-defined]
    cache_key, value, expires = (
        connection.ops.quote_name(name) for name in ("cache_key", "value", "expires")
    )
    adapt = connection.ops.adapt_datetimefield_value
    current = adapt(datetime.fromtimestamp(now, tz=UTC))
    # Whole seconds, as the cache itself writes them.
    until = adapt(datetime.fromtimestamp(int(expires_at), tz=UTC))
    # A savepoint inside a transaction (on PostgreSQL a failed statement, such as a missing
    # table, would otherwise spoil the request's transaction); a short transaction outside one.
    with transaction.atomic(using=db), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {expires} < %s", [current])
        cursor.execute(
            f"INSERT INTO {table} ({cache_key}, {value}, {expires}) VALUES (%s, '1', %s) "
            f"ON CONFLICT ({cache_key}) DO UPDATE "
            f"SET {value} = CAST(CAST({table}.{value} AS INTEGER) + 1 AS TEXT) "
            f"RETURNING {value}",
            [cache.make_and_validate_key(key), until],
        )
        return int(cursor.fetchone()[0])


def _redis_client(cache: RedisCache, key: str) -> Any:
    """The cache's client for writes, made once per cache object: Django's RedisCache builds a
    new client object (over its shared connection pool) for every call.

    Private (`_cache`) on purpose: RedisCache's public API has no "increment, creating with an
    expiry"; `add()` then `incr()` would cost three round trips per request (SET NX, EXISTS,
    INCRBY) where INCR costs one."""
    client = getattr(cache, "_throttle_client", None)
    if client is None:
        # RedisCache's private client (not in django-stubs), memoized on the cache object.
        client = cache._cache.get_client(key, write=True)  # type: ignore[attr-defined]
        cache._throttle_client = client  # type: ignore[attr-defined]
    return client


class AnonThrottle(WindowThrottle):
    """Anonymous clients, by address (X-Forwarded-For per DRF's NUM_PROXIES setting)."""

    scope = "anon"

    def client_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class ScopedThrottle(WindowThrottle):
    """The writes (POST) of a view that names a `throttle_scope` (DRF's convention, as its
    ScopedRateThrottle), per token owner: the HTTP trigger's scope is "trigger". The view
    needs to import nothing; the rate is THROTTLE_RATES[scope]."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = getattr(view, "throttle_scope", "")
        return not self.scope or super().allow_request(request, view)

    def client_key(self, request: Request, view: APIView) -> str | None:
        if request.method != "POST":
            return None
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return self.get_ident(request)
