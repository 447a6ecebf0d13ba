"""CoinPaprika runs end to end against a local server serving recorded /v1/tickers bodies."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingestion.pipeline import ingest
from ingestion.sources.coinpaprika import FREE_BASE_URL, PRO_BASE_URL, CoinPaprikaSource
from runs.models import Run
from tests.conftest import stored
from tests.provider_helpers import (
    COINPAPRIKA_PATH,
    SECRET,
    coinpaprika_rows,
    fixture_path,
    json_response,
    quotes_by_provider_id,
    rejections,
    requests_to,
    stored_counts,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

TICKERS = f"{COINPAPRIKA_PATH}/tickers"


@pytest.fixture(autouse=True)
def local_providers(settings, httpserver):
    use_local_providers(settings, httpserver)


def serve(httpserver, body, *, status=200, headers=None):
    httpserver.expect_request(TICKERS, headers=headers or {}).respond_with_response(
        json_response(body, status=status)
    )


def test_real_tickers_become_exact_quotes_at_each_rows_own_time(httpserver):
    serve(httpserver, coinpaprika_rows())

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.SUCCEEDED
    quotes = quotes_by_provider_id("coinpaprika")
    assert set(quotes) == {"btc-bitcoin", "ada-cardano"}
    bitcoin = quotes["btc-bitcoin"]
    assert bitcoin.price_usd == stored("18971.41529377382")
    assert bitcoin.volume_24h_usd == stored("41913627724.47431")
    assert bitcoin.market_cap_usd == stored("363426751817")
    assert bitcoin.percent_change_24h == Decimal("-2.81")
    assert bitcoin.observed_at == datetime(2022, 9, 21, 6, 24, 51, tzinfo=UTC)
    assert quotes["ada-cardano"].observed_at == datetime(2021, 5, 17, 4, 48, 39, tzinfo=UTC)
    assert requests_to(httpserver, TICKERS)[0].args["quotes"] == "USD"
    assert "Authorization" not in requests_to(httpserver, TICKERS)[0].headers


def test_empty_string_numbers_are_missing_values_not_rejections(httpserver):
    rows = coinpaprika_rows()
    rows[0]["quotes"]["USD"]["market_cap"] = ""
    rows[0]["quotes"]["USD"]["ath_price"] = None
    serve(httpserver, rows)

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.SUCCEEDED
    assert quotes_by_provider_id("coinpaprika")["btc-bitcoin"].market_cap_usd is None
    assert run.drift["type_changes"] == []


def test_ticker_without_a_usd_quote_or_price_is_rejected(httpserver):
    rows = coinpaprika_rows()
    rows[0]["quotes"] = {"BTC": rows[0]["quotes"]["USD"]}
    rows[1]["quotes"]["USD"]["price"] = ""
    serve(httpserver, rows)

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.PARTIAL
    reasons = rejections("coinpaprika")
    assert reasons == {
        "btc-bitcoin": "missing quotes.USD",
        "ada-cardano": "missing quotes.USD.price",
    }


def test_rerun_adds_nothing(httpserver):
    serve(httpserver, coinpaprika_rows())
    ingest(source="coinpaprika")

    again = ingest(source="coinpaprika")

    assert (again.records_inserted, again.records_unchanged) == (0, 2)
    assert stored_counts("coinpaprika") == (2, 1)


def test_key_goes_to_the_pro_host_by_default():
    keyed = CoinPaprikaSource(base_url="", api_key=SECRET, auth_scheme="bearer")
    free = CoinPaprikaSource(base_url="", api_key="", auth_scheme="bearer")

    assert (keyed.base_url, free.base_url) == (PRO_BASE_URL, FREE_BASE_URL)
    assert keyed.configuration_error() is None


@pytest.mark.parametrize(("scheme", "header"), [("bearer", f"Bearer {SECRET}"), ("raw", SECRET)])
def test_key_is_sent_in_the_configured_authorization_scheme(settings, httpserver, scheme, header):
    settings.COINPAPRIKA_API_KEY = SECRET
    settings.COINPAPRIKA_AUTH_SCHEME = scheme
    serve(httpserver, coinpaprika_rows(), headers={"Authorization": header})

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.SUCCEEDED
    assert SECRET not in str(run.options)


def test_key_on_the_free_host_is_a_configuration_error(settings, httpserver):
    settings.COINPAPRIKA_API_KEY = SECRET
    settings.COINPAPRIKA_BASE_URL = FREE_BASE_URL

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("CoinPaprika is misconfigured: an API key is only accepted")
    assert len(httpserver.log) == 0


def test_403_for_a_bad_key_fails_the_run(settings, httpserver):
    settings.COINPAPRIKA_API_KEY = SECRET
    serve(httpserver, {"error": "invalid api key"}, status=403)

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert "CoinPaprika: GET" in run.error
    assert "refused (HTTP 403): error 'invalid api key'" in run.error
    assert "COINPAPRIKA_API_KEY is set but was not accepted" in run.error
    assert stored_counts("coinpaprika") == (0, 0)


def test_documented_429_then_success(httpserver, caplog):
    body = fixture_path("coinpaprika_429_DOC_EXAMPLE.json").read_bytes()
    httpserver.expect_oneshot_request(TICKERS).respond_with_data(
        body, status=429, content_type="application/json"
    )
    serve(httpserver, coinpaprika_rows())

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.SUCCEEDED
    assert "error 'you have reached maximum request limit'" in caplog.text


def test_json_error_object_where_the_list_belongs_fails_the_run(httpserver):
    serve(httpserver, {"error": "id not found"})

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert "CoinPaprika: /tickers: expected a list, got an error 'id not found'" in run.error


def test_nested_required_field_removed_fails_the_run(httpserver):
    rows = coinpaprika_rows()
    for row in rows:
        row["quotes"]["USD"]["last_price"] = row["quotes"]["USD"].pop("price")
    serve(httpserver, rows)

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert "required field(s) quotes.USD.price missing from every item" in run.error
    assert {"field": "quotes.USD.last_price", "count": 2, "share": 1.0} in run.drift["added"]


def test_plan_dependent_circulating_supply_may_be_absent_without_drift(httpserver):
    rows = coinpaprika_rows()
    for row in rows:
        del row["circulating_supply"]
    serve(httpserver, rows)

    run = ingest(source="coinpaprika")

    assert run.drift == {"items": 2, "added": [], "missing": [], "type_changes": []}


def test_a_host_that_does_not_resolve_fails_at_once_without_retries(settings, monkeypatch, caplog):
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The resolver is outside the project: answer as it does when the network is down.
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    settings.COINPAPRIKA_BASE_URL = "http://api.coinpaprika.example/v1"
    settings.HTTP_MAX_RETRIES = 4

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert "cannot resolve 'api.coinpaprika.example'" in run.error
    assert "retrying" not in caplog.text


def test_empty_ticker_list_fails_the_run_saying_why(httpserver):
    serve(httpserver, [])

    run = ingest(source="coinpaprika")

    assert run.status == Run.Status.FAILED
    assert run.records_read == 0
    assert "CoinPaprika: /tickers is an empty list" in run.error
    assert "always lists every active coin" in run.error
    assert stored_counts("coinpaprika") == (0, 0)
