"""/data and /health as a first user meets them."""

import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import AssetFactory, QuoteFactory

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


def test_health_reports_database_ok():
    response = APIClient().get("/health")

    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_secret_key_is_required_when_debug_is_off():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "false", "SECRET_KEY": ""},
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr
