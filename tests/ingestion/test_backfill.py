"""`backfill`: the providers' history endpoints served from real captures by a local server."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from werkzeug import Response

from ingestion.backfill import backfill
from ingestion.models import RawUnit
from ingestion.sources.base import SourceError
from prices.models import Quote
from runs.models import Checkpoint, Run
from tests.conftest import FIXTURES, stored
from tests.provider_helpers import (
    COINCAP_PATH,
    COINGECKO_PATH,
    COINPAPRIKA_PATH,
    use_local_providers,
)

pytestmark = pytest.mark.django_db

HISTORY = FIXTURES / "history"
DAILY = "coingecko_market-chart_bitcoin_daily_2023-06-10.json"
HOURLY = "coingecko_market-chart_cardano_hourly_2023-04-01.json"
RANGE = "coingecko_market-chart-range_bitcoin_hourly_2022-08-08.json"
PLAN_LIMIT = "coingecko_market-chart_ERROR-401-10012_wax_days-max_2024-04-20.json"


def body(name: str) -> bytes:
    return (HISTORY / name).read_bytes()


def raw(data: bytes, status: int = 200) -> Response:
    return Response(data, status=status, content_type="application/json")


@pytest.fixture
def providers(settings, httpserver):
    use_local_providers(settings, httpserver)
    settings.HTTP_MAX_RETRIES = 0
    return httpserver


def chart(httpserver, coin: str, handler) -> None:
    httpserver.expect_request(
        f"{COINGECKO_PATH}/coins/{coin}/market_chart/range"
    ).respond_with_handler(handler)


def requests_to(httpserver, coin: str) -> list[dict]:
    return [
        dict(r.args)
        for r, _ in httpserver.log
        if r.path == f"{COINGECKO_PATH}/coins/{coin}/market_chart/range"
    ]


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_daily_backfill_stores_every_point_and_a_repeat_fetches_nothing(providers):
    chart(providers, "bitcoin", lambda request: raw(body(DAILY)))

    run = backfill(
        source="coingecko", slugs=["bitcoin"], start=day("2022-06-11"), end=day("2023-06-11")
    )

    assert run.kind == Run.Kind.BACKFILL
    assert run.status == Run.Status.SUCCEEDED
    assert (run.records_read, run.records_inserted) == (1001, 1001)
    quotes = Quote.objects.filter(asset__slug="bitcoin", source="coingecko")
    assert quotes.count() == 1001
    first = quotes.order_by("observed_at").first()
    assert first.observed_at == datetime(2020, 9, 14, tzinfo=UTC)
    assert first.price_usd == stored("10328.866065987393")
    assert first.market_cap_usd is not None
    # The last point is "now" when it was fetched, off the daily grid: kept as observed.
    assert quotes.order_by("observed_at").last().observed_at == datetime(
        2023, 6, 10, 17, 18, 48, tzinfo=UTC
    )
    (unit,) = RawUnit.objects.filter(run=run)
    assert "market_chart/range" in unit.url and "from=1654905600" in unit.url
    assert bytes(unit.data()) == body(DAILY)
    (asked,) = requests_to(providers, "bitcoin")
    assert asked["vs_currency"] == "usd" and asked["to"] == "1686441600"
    assert Checkpoint.objects.get(source="coingecko:backfill").cursor["done"]
    # Backfills are not hourly ingests: /health and the ingest checkpoint are untouched.
    assert not Checkpoint.objects.filter(source="coingecko").exists()

    again = backfill(
        source="coingecko", slugs=["bitcoin"], start=day("2022-06-11"), end=day("2023-06-11")
    )
    assert again.status == Run.Status.SUCCEEDED
    assert again.records_read == 0
    assert len(requests_to(providers, "bitcoin")) == 1


def test_a_slice_cut_short_by_its_end_is_fetched_again_when_the_range_grows(providers):
    chart(providers, "bitcoin", lambda request: raw(body(DAILY)))
    backfill(source="coingecko", slugs=["bitcoin"], start=day("2022-06-11"), end=day("2023-01-01"))

    later = backfill(
        source="coingecko", slugs=["bitcoin"], start=day("2022-06-11"), end=day("2023-06-11")
    )

    assert [r["to"] for r in requests_to(providers, "bitcoin")] == ["1672531200", "1686441600"]
    assert later.records_read == 1001


def test_an_overlapping_range_adds_nothing(providers):
    chart(providers, "bitcoin", lambda request: raw(body(DAILY)))
    backfill(source="coingecko", slugs=["bitcoin"], start=day("2022-06-11"), end=day("2023-06-11"))

    overlap = backfill(
        source="coingecko", slugs=["bitcoin"], start=day("2022-07-01"), end=day("2023-06-11")
    )

    assert overlap.records_read == 1001
    assert (overlap.records_inserted, overlap.records_updated) == (0, 0)
    assert overlap.records_unchanged == 1001
    assert Quote.objects.count() == 1001


def test_a_plan_limit_fails_that_asset_only_and_the_run_names_it(providers):
    chart(providers, "bitcoin", lambda request: raw(body(RANGE)))
    chart(providers, "ethereum", lambda request: raw(body(PLAN_LIMIT), status=401))

    run = backfill(
        source="coingecko",
        slugs=["bitcoin", "ethereum"],
        start=day("2022-08-01"),
        end=day("2022-08-20"),
        interval="1h",
    )

    assert run.status == Run.Status.PARTIAL
    assert "ethereum 2022-08-01 00:00 to 2022-08-20 00:00" in run.error
    assert "365 days" in run.error
    assert Quote.objects.filter(asset__slug="bitcoin").count() == 6
    assert not Quote.objects.filter(asset__slug="ethereum").exists()


def test_a_backfill_stopped_by_an_outage_resumes_with_the_unfinished_slice(providers):
    outage = {"on": True}

    def answer(request):
        start = int(request.args["from"])
        if start >= int(day("2023-03-01").timestamp()) and outage["on"]:
            return Response("upstream down", status=503)
        return raw(body(HOURLY))

    chart(providers, "cardano", answer)
    # 1h slices are 90 days: [Dec 1, Mar 1) and [Mar 1, Apr 2).
    window = {"start": day("2022-12-01"), "end": day("2023-04-02"), "interval": "1h"}

    stopped = backfill(source="coingecko", slugs=["cardano"], **window)
    assert stopped.status == Run.Status.FAILED
    assert stopped.records_read == 723  # the first slice committed before the outage
    outage["on"] = False
    resumed = backfill(source="coingecko", slugs=["cardano"], **window)

    assert resumed.status == Run.Status.SUCCEEDED
    starts = [int(r["from"]) for r in requests_to(providers, "cardano")]
    first_slice = int(day("2022-12-01").timestamp())
    assert starts.count(first_slice) == 1  # never asked again
    assert starts[-1] == int(day("2023-03-01").timestamp())


def test_gaps_fills_exactly_the_missing_buckets(providers):
    chart(providers, "cardano", lambda request: raw(body(HOURLY)))
    window = {"start": day("2023-03-03"), "end": day("2023-04-01"), "interval": "1h"}
    backfill(source="coingecko", slugs=["cardano"], **window)
    hole = Quote.objects.filter(
        observed_at__gte=day("2023-03-10"), observed_at__lt=day("2023-03-11")
    )
    deleted = hole.count()
    hole.delete()
    # Another source's quotes in the hole neither fill it nor confuse the report.
    cardano = Quote.objects.values_list("asset_id", flat=True).first()
    Quote.objects.create(
        asset_id=cardano, source="coincap", observed_at=day("2023-03-10"), price_usd=1
    )
    providers.log.clear()

    filled = backfill(source="coingecko", slugs=["cardano"], gaps=True, **window)

    (asked,) = requests_to(providers, "cardano")
    assert int(asked["from"]) == int(day("2023-03-10").timestamp())
    assert int(asked["to"]) == int(day("2023-03-11").timestamp())
    assert filled.records_inserted == deleted


def test_zero_and_null_market_caps_are_unknown(providers):
    data = json.loads(body(RANGE))
    data["market_caps"][0][1] = 0.0
    data["market_caps"][1][1] = None
    chart(providers, "bitcoin", lambda request: raw(json.dumps(data).encode()))

    backfill(
        source="coingecko",
        slugs=["bitcoin"],
        start=day("2022-08-08"),
        end=day("2022-08-09"),
        interval="1h",
    )

    caps = list(Quote.objects.order_by("observed_at").values_list("market_cap_usd", flat=True))
    assert caps[:2] == [None, None]
    assert all(cap for cap in caps[2:])


@pytest.mark.parametrize(
    ("name", "interval", "points"),
    [
        ("coincap_v2-history_bitcoin_m5_2023-03-17.json", "5m", 288),
        ("coincap_v2-history_ethereum_d1_2022-04-24.json", "1d", 30),
    ],
)
def test_coincap_history(providers, name, interval, points):
    coin = "bitcoin" if "bitcoin" in name else "ethereum"
    providers.expect_request(f"{COINCAP_PATH}/assets/{coin}/history").respond_with_handler(
        lambda request: raw(body(name))
    )

    run = backfill(
        source="coincap",
        slugs=[coin],
        start=day("2022-03-26") if interval == "1d" else day("2023-03-16"),
        end=day("2022-04-25") if interval == "1d" else day("2023-03-17"),
        interval=interval,
    )

    assert run.status == Run.Status.SUCCEEDED
    assert Quote.objects.filter(asset__slug=coin, source="coincap").count() == points
    (request, _) = providers.log[0]
    assert request.args["interval"] == {"5m": "m5", "1d": "d1"}[interval]
    assert int(request.args["end"]) - int(request.args["start"]) in (86_400_000, 30 * 86_400_000)


def test_coinpaprika_daily_bars_keep_ohlc_and_a_plan_refusal_is_a_clear_error(providers):
    path = f"{COINPAPRIKA_PATH}/coins/btc-bitcoin/ohlcv/historical"
    providers.expect_request(path).respond_with_handler(
        lambda request: raw(
            body("coinpaprika_ohlcv-historical_btc-bitcoin_daily_2019-01-02_TRUNCATED_2rows.json")
        )
    )
    run = backfill(
        source="coinpaprika",
        slugs=["bitcoin"],
        start=day("2019-01-01"),
        end=day("2019-01-03"),
        bars=True,
    )
    assert run.status == Run.Status.SUCCEEDED
    bar = Quote.objects.order_by("observed_at").first()
    assert bar.interval == "1d"
    assert bar.observed_at == datetime(2019, 1, 1, 23, 59, 59, tzinfo=UTC)
    assert (bar.open_usd, bar.price_usd) == (
        Decimal("3743.13383814").quantize(bar.open_usd),
        Decimal("3846.6792974").quantize(bar.price_usd),
    )
    assert providers.log[0][0].args["end"] == "2019-01-02"

    providers.clear()
    providers.expect_request(path).respond_with_handler(
        lambda request: raw(b'{"error": "Your plan does not allow this range"}', status=402)
    )
    refused = backfill(
        source="coinpaprika",
        slugs=["bitcoin"],
        start=day("2018-01-01"),
        end=day("2018-02-01"),
        bars=True,
    )
    assert refused.status == Run.Status.FAILED
    assert "bitcoin 2018-01-01" in refused.error


def test_bars_that_a_provider_does_not_have_and_an_unknown_asset_are_named(providers):
    with pytest.raises(SourceError, match="no 1h data"):
        backfill(
            source="coinpaprika",
            slugs=["bitcoin"],
            start=day("2024-01-01"),
            end=day("2024-01-02"),
            interval="1h",
            bars=True,
        )
    with pytest.raises(SourceError, match="backfill bar sources: coingecko, coinpaprika"):
        backfill(
            source="coincap", slugs=["bitcoin"], start=day("2024-01-01"), bars=True, end=utc_now()
        )
    with pytest.raises(SourceError, match="no-such-coin"):
        backfill(
            source="coingecko",
            slugs=["no-such-coin"],
            start=day("2024-01-01"),
            end=day("2024-01-02"),
        )


def test_the_command_backfills_the_top_assets_and_refuses_bad_arguments(providers):
    chart(providers, "bitcoin", lambda request: raw(body(RANGE)))
    chart(providers, "ethereum", lambda request: raw(body(RANGE)))
    out = StringIO()

    call_command(
        "backfill",
        "--source",
        "coingecko",
        "--top",
        "2",
        "--from",
        "2022-08-08",
        "--to",
        "2022-08-09",
        "--interval",
        "1h",
        stdout=out,
    )

    assert "coingecko succeeded" in out.getvalue()
    # Off a terminal, a plain line per batch counts the slices (a terminal gets a bar with ETA).
    assert "; 2 of 2 slices" in out.getvalue()
    assert {r[0].path.split("/")[-3] for r in providers.log} == {"bitcoin", "ethereum"}
    with pytest.raises(CommandError) as refused:
        call_command(
            "backfill",
            "--source",
            "coingecko",
            "--asset",
            "bitcoin",
            "--from",
            "2024-02-01",
            "--to",
            "2024-01-01",
        )
    assert refused.value.returncode == 2
    with pytest.raises(CommandError) as bad_date:
        call_command(
            "backfill", "--source", "coingecko", "--asset", "bitcoin", "--from", "last week"
        )
    assert bad_date.value.returncode == 2
    assert Run.objects.filter(kind=Run.Kind.BACKFILL).count() == 1


def utc_now() -> datetime:
    return datetime.now(UTC)


OHLC_30M = "coingecko_ohlc_bitcoin_30min-days1_2025-10-28.json"
OHLC_4H = "coingecko_ohlc_bitcoin_4h-days7_2025-10-28.json"


def ohlc(httpserver, coin: str, name: str) -> None:
    httpserver.expect_request(f"{COINGECKO_PATH}/coins/{coin}/ohlc").respond_with_handler(
        lambda request: raw(body(name))
    )


def test_coingecko_bars_are_stored_in_their_last_second_and_make_hourly_candles(providers, client):
    ohlc(providers, "bitcoin", OHLC_30M)

    run = backfill(
        source="coingecko",
        slugs=["bitcoin"],
        start=utc_now() - timedelta(hours=20),
        end=utc_now(),
        interval="30m",
        bars=True,
    )

    assert run.status == Run.Status.SUCCEEDED
    ((request, _),) = providers.log
    assert dict(request.args) == {"vs_currency": "usd", "days": "1"}
    bars = Quote.objects.filter(source="coingecko").order_by("observed_at")
    assert bars.count() == 48
    first = bars.first()
    # [1761552000000 (2025-10-27 08:00 close), 115812.0, 115812.0, 115538.0, 115579.0]
    assert first.interval == "30m"
    assert first.observed_at == datetime(2025, 10, 27, 7, 59, 59, tzinfo=UTC)
    assert (first.open_usd, first.high_usd, first.low_usd, first.price_usd) == tuple(
        stored(v) for v in ("115812", "115812", "115538", "115579")
    )
    # The hour 08:00-09:00 is the two bars closing at 08:30 and 09:00.
    response = client.get(
        "/api/assets/bitcoin/candles",
        {"interval": "1h", "from": "2025-10-27T08:00:00Z", "to": "2025-10-27T09:00:00Z"},
    )
    (candle,) = response.json()["results"]
    assert candle["start"].startswith("2025-10-27T08:00")
    assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (
        "115527",
        "115571",
        "114936",
        "114936",
    )
    assert candle["quotes"] == 2 and candle["bars"] is True


def test_coingecko_4h_bars_ask_the_shortest_span_that_covers_from_and_refuse_what_none_does(
    providers,
):
    ohlc(providers, "bitcoin", OHLC_4H)

    run = backfill(
        source="coingecko",
        slugs=["bitcoin"],
        start=utc_now() - timedelta(days=20),
        end=utc_now(),
        interval="4h",
        bars=True,
    )

    assert run.status == Run.Status.SUCCEEDED
    assert providers.log[0][0].args["days"] == "30"
    assert set(Quote.objects.values_list("interval", flat=True)) == {"4h"}
    assert Quote.objects.count() == 42
    reach = r"30m bars reach back 1 day at most, and --from is 3 days ago; 4h bars reach 30"
    with pytest.raises(SourceError, match=reach):
        backfill(
            source="coingecko",
            slugs=["bitcoin"],
            start=utc_now() - timedelta(days=3),
            end=utc_now(),
            interval="30m",
            bars=True,
        )
    with pytest.raises(SourceError, match="leave out --to"):
        backfill(
            source="coingecko",
            slugs=["bitcoin"],
            start=day("2025-10-01"),
            end=day("2025-10-20"),
            interval="4h",
            bars=True,
        )
    with pytest.raises(SourceError, match="no 1d data"):
        backfill(
            source="coingecko",
            slugs=["bitcoin"],
            start=utc_now() - timedelta(days=20),
            end=utc_now(),
            interval="1d",
            bars=True,
        )


def test_coinpaprika_ticks_are_points_asked_per_slice_and_a_refusal_fails_that_slice(providers):
    # No capture of this endpoint exists; the body has the documented shape (timestamp, price,
    # volume_24h, market_cap), with the documentation's one example row first.
    ticks = [
        {
            "timestamp": "2021-02-14T00:00:00Z",
            "price": 1.67,
            "volume_24h": 77673000,
            "market_cap": 937904172,
        },
        {
            "timestamp": "2021-02-14T01:00:00Z",
            "price": 1.71,
            "volume_24h": 78110000,
            "market_cap": 0,
        },
    ]
    path = f"{COINPAPRIKA_PATH}/tickers/btc-bitcoin/historical"

    def answer(request):
        if request.args["start"] == str(int(day("2021-02-14").timestamp())):
            return raw(json.dumps(ticks).encode())
        return raw(b'{"error": "Getting historical ticks is not allowed on this plan"}', 402)

    providers.expect_request(path).respond_with_handler(answer)

    run = backfill(
        source="coinpaprika",
        slugs=["bitcoin"],
        start=day("2021-02-14") - timedelta(days=180),
        end=day("2021-02-15"),
        interval="1h",
    )

    assert [r.args["interval"] for r, _ in providers.log] == ["1h", "1h"]
    assert providers.log[0][0].args["limit"] == "5000"
    assert run.status == Run.Status.PARTIAL
    assert "bitcoin 2020-08-18 00:00 to 2021-02-14 00:00" in run.error
    assert "not allowed on this plan" in run.error
    points = Quote.objects.filter(source="coinpaprika").order_by("observed_at")
    assert [(q.observed_at.hour, q.interval) for q in points] == [(0, ""), (1, "")]
    assert points[0].price_usd == stored("1.67")
    assert points[0].market_cap_usd == stored("937904172")
    # A market cap of 0 is unknown, as CoinGecko's is.
    assert points[1].market_cap_usd is None
