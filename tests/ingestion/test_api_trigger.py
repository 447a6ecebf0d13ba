"""POST /run-etl and POST /api/runs/: token auth, 202 at once, 409 when busy, throttling."""

import os
import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prices.models import Quote
from runs.models import Run
from tests.conftest import FIXTURES
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db

FIXTURE_CSV = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
TRIGGER_URLS = ["/run-etl", "/api/runs/"]


@pytest.fixture
def token() -> str:
    user = User.objects.create_user("operator")
    return Token.objects.create(user=user).key


@pytest.fixture
def authed(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def launched(monkeypatch) -> list[dict]:
    """Record the ingest processes the trigger would start, instead of starting them."""
    calls: list[dict] = []
    monkeypatch.setattr("ingestion.trigger.launch", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize("url", TRIGGER_URLS)
def test_trigger_without_a_valid_token_is_refused(url, launched):
    anonymous = APIClient().post(url, {"source": "csv"}, format="json")
    forged = APIClient(HTTP_AUTHORIZATION="Token not-a-real-token").post(
        url, {"source": "csv"}, format="json"
    )

    assert anonymous.status_code == 401
    assert forged.status_code == 401
    assert launched == []
    assert not Run.objects.exists()


@pytest.mark.parametrize("url", TRIGGER_URLS)
def test_trigger_answers_202_with_the_run_that_then_finishes_outside_the_request(
    url, authed, launched, settings
):
    settings.CSV_PATH = FIXTURE_CSV

    response = authed.post(url, {"source": "csv"}, format="json")

    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response["Location"].endswith(f"/api/runs/{run_id}/")
    assert launched == [{"run_id": run_id, "source": "csv"}]
    run = Run.objects.get(pk=run_id)
    # Queued until the process that does the work takes it up (and its lock).
    assert (run.status, run.trigger) == (Run.Status.QUEUED, Run.Trigger.API)

    # What the detached process does: continue that very run.
    call_command("ingest", "--source", "csv", "--trigger", "api", "--run-id", str(run_id))

    listed = APIClient().get("/runs", {"source": "csv"}).json()["results"]
    assert [(r["id"], r["trigger"]) for r in listed] == [(run_id, "api")]
    assert listed[0]["status"] == Run.Status.SUCCEEDED
    assert listed[0]["records_inserted"] == Quote.objects.count() > 0


@pytest.mark.parametrize("url", TRIGGER_URLS)
def test_trigger_answers_409_while_that_source_runs(url, authed, launched):
    busy = RunFactory(source="csv", status=Run.Status.RUNNING, finished_at=None)

    response = authed.post(url, {"source": "csv"}, format="json")

    assert response.status_code == 409
    assert response.json()["run"] == busy.pk
    assert launched == []


@pytest.mark.parametrize("body", [{"source": "nasdaq"}, {}, {"source": ["csv"]}])
def test_trigger_with_a_bad_source_is_a_400_naming_it(authed, launched, body):
    response = authed.post("/run-etl", body, format="json")

    assert response.status_code == 400
    assert "source" in response.json()["errors"]


def test_trigger_is_throttled_per_token(authed, launched, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "trigger": "2/hour"}

    first = authed.post("/run-etl", {"source": "csv"}, format="json")
    second = authed.post("/run-etl", {"source": "csv"}, format="json")  # busy: 409
    third = authed.post("/run-etl", {"source": "csv"}, format="json")

    assert (first.status_code, second.status_code, third.status_code) == (202, 409, 429)
    assert 0 < int(third["Retry-After"]) <= 3600
    assert len(launched) == 1


def test_anonymous_reads_are_throttled_and_token_holders_are_not(authed, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "3/minute"}
    anonymous = APIClient()

    statuses = [anonymous.get("/data").status_code for _ in range(4)]
    limited = anonymous.get("/api/runs/")

    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    assert limited.json()["detail"]
    assert [authed.get("/data").status_code for _ in range(5)] == [200] * 5
    # Monitors are not throttled.
    assert anonymous.get("/health").status_code == 200


def test_throttle_counters_live_in_a_cache_every_worker_shares():
    assert isinstance(caches["default"], DatabaseCache | RedisCache)


@pytest.mark.django_db(transaction=True)
def test_triggered_run_finishes_in_its_own_process(token, monkeypatch):
    """End to end: the real detached `manage.py ingest --run-id` process, on PostgreSQL (the
    SQLite test database lives in memory, invisible to another process)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a database another process can open")
    db = connection.settings_dict
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    )
    monkeypatch.setenv("CSV_PATH", str(FIXTURE_CSV))
    monkeypatch.setenv("DEBUG", "true")
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")

    run_id = client.post("/run-etl", {"source": "csv"}, format="json").json()["id"]

    deadline = time.monotonic() + 60
    while Run.objects.get(pk=run_id).status in Run.ACTIVE_STATUSES:
        assert time.monotonic() < deadline, "the triggered run did not finish within 60 s"
        time.sleep(0.2)
    run = client.get(f"/api/runs/{run_id}/").json()
    assert run["trigger"] == "api"
    assert run["finished_at"] is not None
    assert run["options"]["requested_via"] == "http"


def test_a_made_up_forwarded_for_header_does_not_dodge_the_limit(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "2/minute"}
    client = APIClient()

    statuses = [
        client.get("/data", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(3)
    ]

    assert statuses == [200, 200, 429]


@pytest.fixture
def redis_cache(settings):
    """The throttle's Redis path, against the local Redis when there is one."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url}")
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url},
    }
    settings.THROTTLE_CACHE = "throttle"
    caches["throttle"].clear()
    yield caches["throttle"]
    caches["throttle"].clear()


def test_throttle_on_redis_counts_atomically_and_expires_with_the_window(redis_cache, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "3/minute"}
    client = APIClient()

    statuses = [client.get("/data").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    (key,) = redis_cache._cache.get_client(None).keys("*throttle:anon*")
    assert 0 < redis_cache._cache.get_client(None).ttl(key) <= 61
