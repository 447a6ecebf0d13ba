"""One asset, many providers: identity resolution and operator corrections."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingestion.identity import ProviderAsset, resolve_assets
from ingestion.models import Rejection
from ingestion.pipeline import ingest
from prices.models import Asset, AssetIdentifier, Quote
from prices.services import merge_assets, remap_identifier
from runs.models import Checkpoint, Run
from tests.conftest import FIXTURES
from tests.factories import AssetFactory, AssetIdentifierFactory, QuoteFactory

pytestmark = pytest.mark.django_db

KAGGLE_HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap"


@pytest.fixture
def small_reference(settings):
    settings.REFERENCE_ASSETS_PATH = FIXTURES / "reference_assets_small.csv"


def resolve(source: str, external_id: str, symbol: str, name: str) -> Asset:
    asset_id = resolve_assets(source=source, assets=[ProviderAsset(external_id, symbol, name)])[
        external_id
    ]
    return Asset.objects.get(pk=asset_id)


def test_bitcoin_from_every_provider_and_a_csv_is_one_asset(write_csv):
    gecko = resolve("coingecko", "bitcoin", "btc", "Bitcoin")
    paprika = resolve("coinpaprika", "btc-bitcoin", "BTC", "Bitcoin")
    coincap = resolve("coincap", "bitcoin", "BTC", "Bitcoin")
    path = write_csv(
        f"{KAGGLE_HEADER}\n1,Bitcoin,BTC,2013-04-29 23:59:59,147.48,134.0,134.44,144.54,0.0,"
        "1603768864.5\n"
    )
    ingest(source="csv", path=str(path))
    from_csv = Quote.objects.get(source="csv").asset

    assert gecko == paprika == coincap == from_csv
    assert (gecko.slug, gecko.symbol, gecko.verified) == ("bitcoin", "BTC", True)
    assert set(AssetIdentifier.objects.filter(asset=gecko).values_list("source", "method")) == {
        ("coingecko", "reference"),
        ("coinpaprika", "reference"),
        ("coincap", "reference"),
        ("csv", "reference"),
    }


def test_bnb_ids_of_three_providers_are_one_asset():
    ids = {
        resolve("coingecko", "binancecoin", "bnb", "BNB").pk,
        resolve("coinpaprika", "bnb-binance-coin", "BNB", "Binance Coin").pk,
        resolve("coincap", "binance-coin", "BNB", "BNB").pk,
    }
    assert len(ids) == 1


def test_colliding_symbols_stay_separate(small_reference):
    usdc = resolve("coingecko", "usd-coin", "usdc", "USDC")
    bridged = resolve("coingecko", "bridged-usdc-polygon", "usdc", "Bridged USDC (Polygon)")
    symbol_only = resolve("csv", "USDC", "USDC", "")

    assert usdc != bridged
    assert usdc.verified and not bridged.verified
    assert AssetIdentifier.objects.get(external_id="bridged-usdc-polygon").method == "new"
    # A file row with no name is a guess onto the one reference USDC, recorded as a guess.
    assert symbol_only == usdc
    assert AssetIdentifier.objects.get(source="csv").method == "reference_symbol"


def test_unknown_coin_matches_across_providers_on_name_and_symbol(small_reference):
    gecko = resolve("coingecko", "foo-token", "foo", "Foo Token")
    paprika = resolve("coinpaprika", "foo-foo-token", "FOO", "Foo-Token")
    other_name = resolve("coincap", "foo", "FOO", "Foo Finance")

    assert gecko == paprika != other_name
    identifier = AssetIdentifier.objects.get(source="coinpaprika")
    assert (identifier.method, identifier.confidence) == ("cross_provider", Decimal("0.80"))


def test_two_ids_of_one_provider_are_never_merged(small_reference):
    first = resolve("coingecko", "zzfoo", "zzf", "ZZ Foo")
    # Two ids of one batch would both match `first`: neither may claim it.
    together = resolve_assets(
        source="coinpaprika",
        assets=[ProviderAsset("zzf-a", "ZZF", "ZZ Foo"), ProviderAsset("zzf-b", "ZZF", "ZZ Foo")],
    )
    # The only QQ asset is CoinGecko's already, under another id.
    qq = AssetFactory(symbol="QQ", name="QQ Coin", slug="qq-coin")
    AssetIdentifierFactory(asset=qq, source="coingecko", external_id="qq")
    second = resolve("coingecko", "qq-2", "qq", "QQ Coin")

    assert len({first.pk, *together.values()}) == 3
    assert second.slug != "qq-coin"


def test_ambiguous_name_and_symbol_match_creates_a_new_asset(small_reference):
    AssetFactory(symbol="FOO", name="Foo Token", slug="foo-1")
    AssetFactory(symbol="FOO", name="Foo Token", slug="foo-2")

    asset = resolve("coinpaprika", "foo-foo-token", "FOO", "Foo Token")

    assert asset.slug not in {"foo-1", "foo-2"}
    assert not asset.verified


def test_a_new_asset_never_takes_a_reference_slug(small_reference):
    asset = resolve("coinpaprika", "xrp-fake", "XRPF", "Ripple")  # name slugifies to 'ripple'

    assert asset.slug != "ripple"
    assert resolve("coingecko", "ripple", "xrp", "XRP").slug == "ripple"


def test_resolving_ten_thousand_new_ids_takes_a_bounded_number_of_queries(small_reference):
    items = [ProviderAsset(f"coin-{n}", f"C{n}", f"Coin {n}") for n in range(10_000)]

    with CaptureQueriesContext(connection) as queries:
        resolved = resolve_assets(source="coingecko", assets=items)

    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements.count("SELECT") <= 4  # lookups are per batch, not per item
    # Inserts are multi-row (SQLite caps the variables of one statement, so it needs more).
    assert statements.count("INSERT") <= 20_000 / 100
    assert len(set(resolved.values())) == 10_000
    assert AssetIdentifier.objects.count() == 10_000


def test_merge_keeps_every_quote_and_moves_identifiers():
    keep, other = AssetFactory(), AssetFactory()
    AssetIdentifierFactory(asset=keep, source="coingecko")
    AssetIdentifierFactory(asset=other, source="coinpaprika")
    quotes = [QuoteFactory(asset=keep, source="coingecko") for _ in range(3)]
    quotes += [QuoteFactory(asset=other, source="coinpaprika") for _ in range(2)]

    report = merge_assets(target=keep, others=[other])

    assert Quote.objects.filter(asset=keep).count() == 5
    assert set(Quote.objects.values_list("pk", flat=True)) == {q.pk for q in quotes}
    assert AssetIdentifier.objects.filter(asset=keep).count() == 2
    assert not Asset.objects.filter(pk=other.pk).exists()
    assert (report.quotes_moved, report.identifiers_moved, report.duplicates_dropped) == (2, 1, 0)


def test_merge_drops_only_exact_duplicate_observations_and_says_so():
    keep, other = AssetFactory(), AssetFactory()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    QuoteFactory(asset=keep, source="coincap", observed_at=when)
    QuoteFactory(asset=other, source="coincap", observed_at=when)
    QuoteFactory(asset=other, source="coincap", observed_at=when + timedelta(hours=1))

    report = merge_assets(target=keep, others=[other])

    assert Quote.objects.filter(asset=keep).count() == 2
    assert (report.quotes_moved, report.duplicates_dropped) == (1, 1)
    assert "1 duplicate observations dropped" in str(report)


def test_remap_moves_the_quotes_of_that_source():
    wrong, right = AssetFactory(), AssetFactory()
    identifier = AssetIdentifierFactory(asset=wrong, source="coincap")
    QuoteFactory(asset=wrong, source="coincap")
    QuoteFactory(asset=wrong, source="coingecko")

    report = remap_identifier(identifier=identifier, target=right)

    identifier.refresh_from_db()
    assert (identifier.asset, identifier.method) == (right, "manual")
    assert report.quotes_moved == 1
    assert Quote.objects.get(source="coincap").asset == right
    assert Quote.objects.get(source="coingecko").asset == wrong


def test_remap_of_a_shared_asset_asks_for_renormalize():
    wrong, right = AssetFactory(), AssetFactory()
    identifier = AssetIdentifierFactory(asset=wrong, source="coincap", external_id="ripple")
    AssetIdentifierFactory(asset=wrong, source="coincap", external_id="xrp")
    QuoteFactory(asset=wrong, source="coincap")

    report = remap_identifier(identifier=identifier, target=right)

    assert report.renormalize_needed
    assert "renormalize --source coincap" in str(report)
    assert Quote.objects.get().asset == wrong


def test_csv_asset_option_maps_a_symbol_only_file_to_the_named_asset():
    ether = AssetFactory(slug="ether-canonical", symbol="ETH", name="Ethereum")
    path = FIXTURES / "csv" / "ETH-USD.csv"  # Yahoo layout: a symbol, no name

    ingest(source="csv", path=str(path), asset="ether-canonical")

    assert set(Quote.objects.values_list("asset", flat=True)) == {ether.pk}
    identifier = AssetIdentifier.objects.get(source="csv")
    assert (identifier.external_id, identifier.method) == ("ETH", "manual")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs two concurrent sessions")
def test_a_slug_taken_by_a_concurrent_run_is_retried(small_reference):
    import threading

    import psycopg2

    settings_dict = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        password=settings_dict["PASSWORD"] or None,
    )
    with other.cursor() as cursor:  # another run's transaction, not yet committed
        cursor.execute(
            "INSERT INTO prices_asset (slug, symbol, name, verified, created_at) "
            "VALUES ('zz-race', 'ZZR', 'Other coin', false, now())"
        )
    threading.Timer(0.5, other.commit).start()

    asset = resolve("coinpaprika", "zzr-zz-race", "ZZR", "ZZ Race")

    other.close()
    assert asset.slug == "zz-race-coinpaprika"
    assert Asset.objects.filter(slug="zz-race").exists()


def test_rereading_stored_rows_with_asset_option_maps_them_as_told(write_csv):
    """--asset is the operator's word for every row a run reads, stored before or not: the
    values read are what the asset's quotes hold afterwards."""
    path = write_csv((FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv").read_text())
    ingest(source="csv", path=str(path))
    other = AssetFactory(slug="some-other-coin", symbol="SOC", name="Some other coin")

    Checkpoint.objects.all().delete()  # the whole file is read again
    run = ingest(source="csv", path=str(path), asset=other.slug)

    assert (run.records_read, run.records_inserted, run.records_unchanged) == (10, 10, 0)
    identifier = AssetIdentifier.objects.get(source="csv")
    assert (identifier.asset, identifier.method) == (other, AssetIdentifier.Method.MANUAL)
    assert Quote.objects.filter(asset=other).count() == 10


def test_a_batch_of_rejected_rows_needs_no_asset(write_csv):
    """An unknown --asset fails a run only when a row needs an asset."""
    path = write_csv(f"{KAGGLE_HEADER}\n1,Ethereum,ETH,2015-08-08 23:59:59,1,1,1,null,1,1\n")

    run = ingest(source="csv", path=str(path), asset="no-such-asset")

    assert run.status == Run.Status.PARTIAL
    assert (run.records_read, run.records_rejected) == (1, 1)
    assert Rejection.objects.get().reason == "missing Close"
