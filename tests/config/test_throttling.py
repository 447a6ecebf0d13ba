"""The rate limit: exact under concurrency on the database cache, open when its cache is down,
never in the way of the API documentation; and `migrate` alone makes the cache's table."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection, connections
from rest_framework.test import APIClient, APIRequestFactory

from config.throttling import AnonThrottle
from prices.views import DataViewSet
from tests.processes import MANAGE, PYTHON, ROOT, base_env

DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"


def use_cache(settings, **cache: str) -> None:
    settings.CACHES = {**settings.CACHES, "throttle": cache}
    settings.THROTTLE_CACHE = "throttle"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_from_one_client_pass_exactly_the_limit(settings):
    """Threads with their own database connections, as gunicorn workers are, all counting one
    client at once: the database cache lets exactly the limit through."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes every write; concurrency is PostgreSQL's case")
    caches[settings.THROTTLE_CACHE].clear()
    # Per day: no window edge falls inside the test, short of one at midnight UTC.
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "40/day"}
    threads, per_thread = 8, 15
    start = threading.Barrier(threads)
    allowed: list[bool] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            request = APIRequestFactory().get("/data", REMOTE_ADDR="203.0.113.9")
            request.user = None
            view = DataViewSet()
            start.wait()
            results = [AnonThrottle().allow_request(request, view) for _ in range(per_thread)]
            with lock:
                allowed.extend(results)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert not errors
    assert len(allowed) == threads * per_thread
    assert allowed.count(True) == 40


@pytest.mark.django_db
def test_a_database_cache_without_its_table_lets_requests_through_with_a_warning(settings, caplog):
    use_cache(settings, BACKEND=DATABASE_CACHE, LOCATION="no_such_cache_table")
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "1/minute"}

    statuses = [APIClient().get("/api/assets/").status_code for _ in range(2)]

    assert statuses == [200, 200]
    assert "throttle anon: cache 'throttle' unreachable, request let through" in caplog.text


@pytest.mark.django_db
def test_an_unreachable_redis_lets_requests_through_with_a_warning(settings, caplog):
    # Port 1 on this machine: nothing listens there, the connection is refused at once.
    use_cache(
        settings,
        BACKEND="django.core.cache.backends.redis.RedisCache",
        LOCATION="redis://127.0.0.1:1/0",
    )

    response = APIClient().get("/data")

    assert response.status_code == 200
    assert "unreachable, request let through" in caplog.text


@pytest.mark.django_db
def test_the_api_documentation_is_never_throttled(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "1/minute"}
    client = APIClient()

    documentation = [client.get(url).status_code for url in ("/docs", "/api/schema/") * 3]
    data = [client.get("/data").status_code for _ in range(2)]

    assert documentation == [200] * 6
    assert data == [200, 429]


def cache_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE name = 'django_cache'")
        return [name for (name,) in rows]


def manage(url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(MANAGE), *args],
        env=base_env(DATABASE_URL=url, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


REQUESTS = """
import django
django.setup()
from django.test import Client
client = Client()
print(*[client.get("/api/assets/").status_code for _ in range(3)])
"""


def test_migrate_alone_makes_the_rate_limit_work(tmp_path: Path):
    """A fresh database and `migrate`, nothing else: the API answers, and counts."""
    path = tmp_path / "fresh.sqlite3"
    url = f"sqlite:///{path}"
    assert manage(url, "migrate", "--verbosity", "0").returncode == 0

    result = subprocess.run(
        [PYTHON, "-c", REQUESTS],
        env=base_env(
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="config.settings",
            ALLOWED_HOSTS="testserver",
            THROTTLE_ANON_RATE="2/day",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.stdout.split() == ["200", "200", "429"], result.stderr
    assert "unreachable" not in result.stderr


def test_the_cache_table_migration_reverses_and_tolerates_an_existing_table(tmp_path: Path):
    path = tmp_path / "fresh.sqlite3"
    url = f"sqlite:///{path}"
    # The table made the old way, before any migration: migrate must not trip over it.
    assert manage(url, "createcachetable").returncode == 0
    migrated = manage(url, "migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    assert cache_tables(path) == ["django_cache"]

    assert manage(url, "migrate", "runs", "0003", "--verbosity", "0").returncode == 0
    assert cache_tables(path) == []
    assert manage(url, "migrate", "--verbosity", "0").returncode == 0
    assert cache_tables(path) == ["django_cache"]
