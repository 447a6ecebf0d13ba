"""/data and /health as a first user meets them."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.factories import AssetFactory, QuoteFactory
from tests.processes import ROOT

pytestmark = pytest.mark.django_db


def test_data_filters_by_symbol_case_insensitively_newest_first():
    btc = AssetFactory(symbol="BTC", name="Bitcoin")
    eth = AssetFactory(symbol="ETH", name="Ethereum")
    older, newer = QuoteFactory(asset=btc), QuoteFactory(asset=btc)
    QuoteFactory(asset=eth)

    body = APIClient().get("/data", {"symbol": "btc"}).json()

    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    assert {row["asset_symbol"] for row in body["results"]} == {"BTC"}
    assert body["results"][0]["asset"] == btc.pk
    assert isinstance(body["results"][0]["price_usd"], str)  # exact, not a float


def test_data_pages_with_a_cursor():
    asset = AssetFactory()
    quotes = [QuoteFactory(asset=asset) for _ in range(5)]
    client = APIClient()

    first = client.get("/data", {"limit": 3}).json()
    second = client.get(first["next"]).json()

    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == [q.pk for q in reversed(quotes)]
    assert second["next"] is None


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("get", "/data", 200),
        ("get", "/data?limit=0", 400),
        ("get", "/api/runs/12345/", 404),
        ("get", "/no/such/path", 404),
        ("post", "/run-etl", 401),
        ("get", "/health", 200),
    ],
)
def test_every_response_carries_a_request_id_and_server_time_as_json(method, url, status):
    before = datetime.now(UTC)
    response = getattr(APIClient(), method)(url)

    assert response.status_code == status
    assert len(response["X-Request-ID"]) == 32
    assert response["Server-Timing"].startswith("app;dur=")
    server_time = datetime.fromisoformat(response["X-Server-Time"])
    assert before - timedelta(seconds=1) <= server_time <= datetime.now(UTC)
    assert response["Content-Type"].startswith("application/json")


def test_the_callers_request_id_is_echoed_only_when_sane():
    client = APIClient()

    kept = client.get("/health", HTTP_X_REQUEST_ID="lb-7f3a.42")
    replaced = client.get("/health", HTTP_X_REQUEST_ID="bad id\r\nX-Evil: 1")

    assert kept["X-Request-ID"] == "lb-7f3a.42"
    assert replaced["X-Request-ID"] != "bad id\r\nX-Evil: 1"


def test_health_reports_database_ok():
    response = APIClient().get("/health")

    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def run_without_secret_key(*args: str) -> subprocess.CompletedProcess:
    """A process in a bare environment: DEBUG off, no SECRET_KEY, no .env."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "false", "SECRET_KEY": ""},
        capture_output=True,
        text=True,
    )


def test_serving_needs_a_secret_key_when_debug_is_off():
    result = run_without_secret_key("-c", "import config.wsgi")

    assert result.returncode != 0
    assert "SECRET_KEY is required to serve when DEBUG is off" in result.stderr


def test_commands_that_sign_nothing_run_without_a_secret_key():
    result = run_without_secret_key("manage.py", "makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
