"""The prices admin as the operator reads it: assets to review and merge, provider ids to
re-map, quotes listed readably, filtered and exported."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from prices.models import Asset, AssetIdentifier, Quote
from tests.admin_pages import (
    column,
    filter_choices,
    inline_rows,
    messages,
    page,
    readonly_field,
    result_links,
    result_rows,
    selected_filter_choice,
)
from tests.factories import AssetFactory, AssetIdentifierFactory, QuoteFactory, RunFactory

pytestmark = pytest.mark.django_db

ASSETS = reverse("admin:prices_asset_changelist")
IDENTIFIERS = reverse("admin:prices_assetidentifier_changelist")
QUOTES = reverse("admin:prices_quote_changelist")
EXPORT = reverse("admin:prices_quote_export")


def exported(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


# Assets


def test_asset_list_shows_each_asset_with_its_symbol_name_slug_rank_and_verified(admin_client):
    eth = AssetFactory(symbol="ETH", name="Ethereum", slug="ethereum", rank=2, verified=True)
    btc = AssetFactory(symbol="BTC", name="Bitcoin", slug="bitcoin", rank=1, verified=True)
    new = AssetFactory(symbol="PEPE2", name="Pepe Two", slug="pepe-two", verified=False)

    rows = result_rows(admin_client.get(ASSETS))

    assert rows == [
        {
            "symbol": "BTC",
            "name": "Bitcoin",
            "slug": "bitcoin",
            "rank": "1",
            "verified": "True",
            "created_at": f"{btc.created_at:%Y-%m-%d %H:%M:%S}",
        },
        {
            "symbol": "ETH",
            "name": "Ethereum",
            "slug": "ethereum",
            "rank": "2",
            "verified": "True",
            "created_at": f"{eth.created_at:%Y-%m-%d %H:%M:%S}",
        },
        {
            "symbol": "PEPE2",
            "name": "Pepe Two",
            "slug": "pepe-two",
            "rank": "-",
            "verified": "False",
            "created_at": f"{new.created_at:%Y-%m-%d %H:%M:%S}",
        },
    ]
    assert result_links(admin_client.get(ASSETS))[0]["symbol"] == reverse(
        "admin:prices_asset_change", args=[btc.pk]
    )


def test_needs_review_filter_shows_only_unverified_or_low_confidence_assets(admin_client):
    checked = AssetFactory(slug="checked", verified=True)
    AssetIdentifierFactory(asset=checked, method="reference", confidence=1)
    borderline = AssetFactory(slug="borderline", verified=True)
    AssetIdentifierFactory(asset=borderline, method="cross_provider", confidence="0.90")
    AssetIdentifierFactory(asset=AssetFactory(slug="guessed", verified=True), confidence="0.8")
    AssetFactory(slug="brand-new", verified=False)
    unverified = AssetFactory(slug="unverified-but-sure", verified=False)
    AssetIdentifierFactory(asset=unverified, method="reference", confidence=1)

    everything = admin_client.get(ASSETS)
    review = admin_client.get(
        ASSETS + filter_choices(everything, "needs review")["Unverified or low-confidence mapping"]
    )

    assert set(column(everything, "slug")) == {
        "checked",
        "borderline",
        "guessed",
        "brand-new",
        "unverified-but-sure",
    }
    assert set(column(review, "slug")) == {"guessed", "brand-new", "unverified-but-sure"}
    assert selected_filter_choice(review, "needs review") == "Unverified or low-confidence mapping"


@pytest.mark.parametrize(("choice", "listed"), [("Yes", ["checked"]), ("No", ["new"])])
def test_verified_filter_splits_checked_from_new_assets(admin_client, choice, listed):
    AssetFactory(slug="checked", verified=True)
    AssetFactory(slug="new", verified=False)

    query = filter_choices(admin_client.get(ASSETS), "verified")[choice]

    assert column(admin_client.get(ASSETS + query), "slug") == listed


def test_merge_asks_which_asset_to_keep_offering_the_verified_one_first(admin_client):
    stray = AssetFactory(slug="bitcoin-2", symbol="BTC", verified=False)
    keep = AssetFactory(slug="bitcoin", symbol="BTC", verified=True, rank=1)

    confirm = page(
        admin_client.post(ASSETS, {"action": "merge", ACTION_CHECKBOX_NAME: [stray.pk, keep.pk]})
    )

    table = confirm.find(id="content").find("table")
    offered = [[td.text() for td in tr.find_all("td")][1:] for tr in table.find_all("tr")[1:]]
    assert offered == [
        ["bitcoin", "BTC", keep.name, "yes", "1"],
        ["bitcoin-2", "BTC", stray.name, "no", "-"],
    ]
    checked = [
        i.attrs["value"] for i in confirm.find_all("input", name="target") if "checked" in i.attrs
    ]
    assert checked == [str(keep.pk)]
    assert Asset.objects.count() == 2  # nothing happens before the choice


def test_merge_moves_quotes_and_identifiers_to_the_kept_asset_and_reports_it(admin_client):
    keep = AssetFactory(slug="bitcoin", verified=True, rank=1)
    other = AssetFactory(slug="bitcoin-2")
    at = datetime(2024, 1, 1, tzinfo=UTC)
    QuoteFactory(asset=keep, source="coingecko", observed_at=at)
    QuoteFactory(asset=other, source="coingecko", observed_at=at)  # the same observation
    QuoteFactory(asset=other, source="coincap", observed_at=at)
    AssetIdentifierFactory(asset=other, source="coincap", external_id="bitcoin")
    selected = {"action": "merge", ACTION_CHECKBOX_NAME: [keep.pk, other.pk]}

    done = admin_client.post(ASSETS, {**selected, "target": keep.pk}, follow=True)

    assert messages(done) == [
        (
            "success",
            "Merged bitcoin-2 into bitcoin: 1 quotes and 1 identifiers moved, "
            "1 duplicate observations dropped",
        )
    ]
    assert column(done, "slug") == ["bitcoin"]
    assert sorted(Quote.objects.filter(asset=keep).values_list("source", flat=True)) == [
        "coincap",
        "coingecko",
    ]
    assert AssetIdentifier.objects.get(external_id="bitcoin").asset == keep


def test_merge_keeps_the_asset_the_operator_chose(admin_client):
    default, chosen = AssetFactory(verified=True, rank=1), AssetFactory(slug="chosen")
    QuoteFactory(asset=default)

    admin_client.post(
        ASSETS,
        {"action": "merge", ACTION_CHECKBOX_NAME: [default.pk, chosen.pk], "target": chosen.pk},
    )

    assert list(Asset.objects.values_list("slug", flat=True)) == ["chosen"]
    assert Quote.objects.get().asset == chosen


def test_merge_of_a_single_asset_warns_and_changes_nothing(admin_client):
    alone = AssetFactory()

    done = admin_client.post(
        ASSETS,
        {"action": "merge", ACTION_CHECKBOX_NAME: [alone.pk], "target": alone.pk},
        follow=True,
    )

    assert messages(done) == [("warning", "Select at least two assets to merge.")]
    assert Asset.objects.filter(pk=alone.pk).exists()


def test_asset_page_shows_the_consolidated_price_and_flags_a_deviating_source(admin_client):
    asset = AssetFactory()
    now = timezone.now()
    for source, price in (("coingecko", 100), ("coinpaprika", 101), ("coincap", 150)):
        QuoteFactory(asset=asset, source=source, observed_at=now, price_usd=price)

    response = admin_client.get(reverse("admin:prices_asset_change", args=[asset.pk]))

    consolidated = readonly_field(response, "consolidated")
    assert consolidated.find("p").text().startswith("Median 101.00 USD from 3 source(s)")
    by_source = {
        tr.find_all("td")[0].text(): [td.text() for td in tr.find_all("td")[1:]]
        for tr in consolidated.find("table").find_all("tr")[1:]
    }
    assert {source: cells[0] for source, cells in by_source.items()} == {
        "coingecko": "100.00",
        "coinpaprika": "101.00",
        "coincap": "150.00",
    }
    assert [source for source, cells in by_source.items() if cells[-1] == "deviates"] == ["coincap"]


def test_asset_page_without_fresh_quotes_shows_the_latest_one(admin_client):
    asset = AssetFactory()
    QuoteFactory(asset=asset, source="csv", observed_at=datetime(2021, 7, 5, tzinfo=UTC))
    QuoteFactory(
        asset=asset,
        source="csv",
        observed_at=datetime(2021, 7, 6, 23, 59, tzinfo=UTC),
        price_usd=Decimal("2324.68"),
    )

    response = admin_client.get(reverse("admin:prices_asset_change", args=[asset.pk]))

    assert readonly_field(response, "consolidated").text() == (
        "No source has a fresh quote. Latest: 2,324.68 USD from csv at 2021-07-06 23:59 UTC."
    )


def test_asset_page_of_an_asset_without_quotes_says_so(admin_client):
    asset = AssetFactory()

    response = admin_client.get(reverse("admin:prices_asset_change", args=[asset.pk]))

    assert readonly_field(response, "consolidated").text() == "No quotes yet."
    assert readonly_field(response, "coverage").text() == "No quotes yet."
    assert 'class="chart"' not in response.content.decode()


def test_asset_page_lists_its_provider_identifiers_read_only(admin_client):
    asset = AssetFactory()
    AssetIdentifierFactory(
        asset=asset,
        source="coinpaprika",
        external_id="btc-bitcoin",
        symbol="BTC",
        name="Bitcoin",
        method="cross_provider",
        confidence="0.85",
    )
    AssetIdentifierFactory(
        asset=asset, source="coingecko", external_id="bitcoin", method="reference"
    )
    AssetIdentifierFactory(external_id="someone-else")

    response = admin_client.get(reverse("admin:prices_asset_change", args=[asset.pk]))

    assert inline_rows(response, "identifiers") == [
        {
            "source": "coingecko",
            "external_id": "bitcoin",
            "symbol": "-",
            "name": "-",
            "method": "reference mapping",
            "confidence": "1.00",
        },
        {
            "source": "coinpaprika",
            "external_id": "btc-bitcoin",
            "symbol": "BTC",
            "name": "Bitcoin",
            "method": "cross-provider name and symbol match",
            "confidence": "0.85",
        },
    ]
    assert page(response).find("input", name="identifiers-0-external_id") is None


# Provider identifiers


def test_identifier_list_shows_each_provider_id_with_its_asset_method_and_confidence(admin_client):
    btc = AssetFactory(symbol="BTC", name="Bitcoin")
    AssetIdentifierFactory(
        asset=btc,
        source="coinpaprika",
        external_id="btc-bitcoin",
        symbol="BTC",
        name="Bitcoin",
        method="cross_provider",
        confidence="0.85",
    )
    AssetIdentifierFactory(asset=btc, source="coingecko", external_id="bitcoin", method="reference")

    rows = result_rows(admin_client.get(IDENTIFIERS))

    assert rows == [
        {
            "source": "coingecko",
            "external_id": "bitcoin",
            "symbol": "-",
            "name": "-",
            "asset": "BTC (Bitcoin)",
            "method": "reference mapping",
            "confidence": "1.00",
        },
        {
            "source": "coinpaprika",
            "external_id": "btc-bitcoin",
            "symbol": "BTC",
            "name": "Bitcoin",
            "asset": "BTC (Bitcoin)",
            "method": "cross-provider name and symbol match",
            "confidence": "0.85",
        },
    ]


@pytest.mark.parametrize(
    ("title", "choice", "listed"),
    [
        ("source", "coincap", {"coincap:bitcoin"}),
        ("method", "set by an operator", {"coincap:bitcoin"}),
        ("method", "reference mapping", {"coingecko:bitcoin"}),
        ("verified", "No", {"coincap:bitcoin", "coinpaprika:new-coin"}),
        ("verified", "Yes", {"coingecko:bitcoin"}),
    ],
)
def test_each_sidebar_filter_narrows_the_identifier_list(admin_client, title, choice, listed):
    checked, unchecked = AssetFactory(verified=True), AssetFactory(verified=False)
    AssetIdentifierFactory(
        asset=checked, source="coingecko", external_id="bitcoin", method="reference"
    )
    AssetIdentifierFactory(
        asset=unchecked, source="coincap", external_id="bitcoin", method="manual"
    )
    AssetIdentifierFactory(asset=unchecked, source="coinpaprika", external_id="new-coin")

    query = filter_choices(admin_client.get(IDENTIFIERS), title)[choice]
    rows = result_rows(admin_client.get(IDENTIFIERS + query))

    assert {f"{r['source']}:{r['external_id']}" for r in rows} == listed


def test_remap_asks_for_the_target_showing_each_ids_current_asset(admin_client):
    identifier = AssetIdentifierFactory(
        asset=AssetFactory(slug="wrong"), source="coincap", external_id="xyz"
    )

    confirm = page(
        admin_client.post(IDENTIFIERS, {"action": "remap", ACTION_CHECKBOX_NAME: [identifier.pk]})
    )

    assert [li.text() for li in confirm.find(id="content").find_all("li")] == [
        "coincap:xyz (now wrong)"
    ]
    assert confirm.find("input", name="target_slug") is not None
    identifier.refresh_from_db()
    assert identifier.asset.slug == "wrong"


def test_remap_points_the_identifier_at_the_target_and_moves_its_quotes(admin_client):
    wrong, right = AssetFactory(slug="wrong"), AssetFactory(slug="the-right-one")
    identifier = AssetIdentifierFactory(asset=wrong, source="coincap", external_id="xyz")
    QuoteFactory(asset=wrong, source="coincap")
    QuoteFactory(asset=wrong, source="coingecko")

    done = admin_client.post(
        IDENTIFIERS,
        {"action": "remap", ACTION_CHECKBOX_NAME: [identifier.pk], "target_slug": "the-right-one"},
        follow=True,
    )

    assert messages(done) == [("success", "Coincap:xyz: wrong -> the-right-one, 1 quotes moved")]
    assert result_rows(done)[0]["asset"] == str(right)
    assert result_rows(done)[0]["method"] == "set by an operator"
    identifier.refresh_from_db()
    assert (identifier.asset, identifier.method) == (right, AssetIdentifier.Method.MANUAL)
    assert dict(Quote.objects.values_list("source", "asset__slug")) == {
        "coincap": "the-right-one",
        "coingecko": "wrong",
    }


def test_remap_to_an_unknown_slug_reports_it_and_changes_nothing(admin_client):
    identifier = AssetIdentifierFactory(asset=AssetFactory(slug="wrong"), method="new")

    done = admin_client.post(
        IDENTIFIERS,
        {"action": "remap", ACTION_CHECKBOX_NAME: [identifier.pk], "target_slug": "nope"},
        follow=True,
    )

    assert messages(done) == [("error", "No asset with slug 'nope'.")]
    identifier.refresh_from_db()
    assert (identifier.asset.slug, identifier.method) == ("wrong", "new")


def test_remap_of_an_id_sharing_its_asset_asks_for_a_renormalize(admin_client):
    shared = AssetFactory(slug="shared")
    identifier = AssetIdentifierFactory(asset=shared, source="coincap", external_id="one")
    AssetIdentifierFactory(asset=shared, source="coincap", external_id="two")
    QuoteFactory(asset=shared, source="coincap")
    AssetFactory(slug="target")

    done = admin_client.post(
        IDENTIFIERS,
        {"action": "remap", ACTION_CHECKBOX_NAME: [identifier.pk], "target_slug": "target"},
        follow=True,
    )

    ((level, text),) = messages(done)
    assert level == "success"
    assert text.endswith("none were moved: run `manage.py renormalize --source coincap`")
    assert Quote.objects.get().asset == shared


def test_identifiers_are_changed_only_through_the_actions(admin_client):
    identifier = AssetIdentifierFactory(external_id="original")
    add = reverse("admin:prices_assetidentifier_add")

    admin_client.post(
        reverse("admin:prices_assetidentifier_change", args=[identifier.pk]),
        {"asset": AssetFactory().pk, "external_id": "changed"},
    )
    detail = admin_client.get(reverse("admin:prices_assetidentifier_change", args=[identifier.pk]))

    identifier.refresh_from_db()
    assert identifier.external_id == "original"
    assert readonly_field(detail, "external_id").text() == "original"
    assert page(admin_client.get(IDENTIFIERS)).find("a", href=add) is None
    assert admin_client.get(add).status_code == 403


# Quotes


def test_quote_list_shows_each_quote_readably(admin_client):
    btc = AssetFactory(symbol="BTC", name="Bitcoin")
    run = RunFactory(source="csv")
    QuoteFactory(
        asset=btc,
        source="csv",
        run=run,
        observed_at=datetime(2024, 1, 2, tzinfo=UTC),
        interval="1d",
        open_usd=Decimal("42000"),
        high_usd=Decimal("43500.5"),
        low_usd=Decimal("41000"),
        price_usd=Decimal("43000.25"),
        market_cap_usd=Decimal("840000000000"),
        volume_24h_usd=Decimal("25000000000"),
        percent_change_24h=Decimal("-1.2345"),
    )
    QuoteFactory(
        asset=btc,
        source="coingecko",
        observed_at=datetime(2024, 1, 3, 12, 30, tzinfo=UTC),
        price_usd=Decimal("0.000012345"),
    )

    rows = result_rows(admin_client.get(QUOTES))

    assert rows == [
        {
            "observed_at": "2024-01-03 12:30:00",
            "asset": "BTC (Bitcoin)",
            "source": "coingecko",
            "price": "0.000012345",
            "bar": "-",
            "market_cap": "-",
            "volume": "-",
            "change_24h": "-",
            "run": "-",
        },
        {
            "observed_at": "2024-01-02 00:00:00",
            "asset": "BTC (Bitcoin)",
            "source": "csv",
            "price": "43,000.25",
            "bar": "1d: O 42,000.00 H 43,500.50 L 41,000.00",
            "market_cap": "840,000,000,000",
            "volume": "25,000,000,000",
            "change_24h": "-1.23 %",
            "run": str(run),
        },
    ]


@pytest.mark.parametrize(
    ("title", "choice", "listed"),
    [
        ("source", "coincap", {"snapshot"}),
        ("interval", "1d bar", {"bar", "old bar"}),
        ("interval", "snapshot", {"snapshot"}),
        ("observed at", "Past 7 days", {"bar", "snapshot"}),
    ],
)
def test_each_sidebar_filter_narrows_the_quote_list(admin_client, title, choice, listed):
    now = timezone.now()
    quotes = {
        "bar": QuoteFactory(source="csv", interval="1d", observed_at=now - timedelta(hours=1)),
        "snapshot": QuoteFactory(source="coincap", observed_at=now - timedelta(hours=2)),
        "old bar": QuoteFactory(source="csv", interval="1d", observed_at=now - timedelta(days=400)),
    }
    names = {f"{q.observed_at:%Y-%m-%d %H:%M:%S}": name for name, q in quotes.items()}

    query = filter_choices(admin_client.get(QUOTES), title)[choice]
    shown = column(admin_client.get(QUOTES + query), "observed_at")

    assert {names[at] for at in shown} == listed


def test_asset_filter_lists_one_assets_quotes_until_the_filters_are_cleared(admin_client):
    btc, eth = AssetFactory(symbol="BTC", name="Bitcoin"), AssetFactory(symbol="ETH")
    QuoteFactory(asset=btc)
    QuoteFactory(asset=btc, source="coincap")
    QuoteFactory(asset=eth)

    filtered = admin_client.get(QUOTES, {"asset": btc.pk})
    clear = page(filtered).find(id="changelist-filter-extra-actions").find_all("a")[-1]
    back = admin_client.get(QUOTES + clear.attrs["href"])

    assert column(filtered, "asset") == ["BTC (Bitcoin)", "BTC (Bitcoin)"]
    options = page(filtered).find(id="asset-filter").find_all("option")
    assert [o.text() for o in options if "selected" in o.attrs] == ["BTC (Bitcoin)"]
    any_asset = next(a for a in page(filtered).find_all("a") if a.text() == "Any asset")
    assert len(result_rows(admin_client.get(QUOTES + any_asset.attrs["href"]))) == 3
    assert clear.text() == "✖ Clear all filters"
    assert sorted(column(back, "asset")) == ["BTC (Bitcoin)", "BTC (Bitcoin)", str(eth)]


def test_asset_filter_with_a_value_that_is_no_id_lists_nothing(admin_client):
    QuoteFactory()

    assert result_rows(admin_client.get(QUOTES, {"asset": "bitcoin"})) == []


def test_the_export_link_exports_what_the_list_shows(admin_client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC", name="Bitcoin")
    for _ in range(3):
        QuoteFactory(asset=btc, source="coingecko")
    QuoteFactory(asset=btc, source="coincap")
    QuoteFactory(asset=AssetFactory(slug="ethereum", symbol="ETH"), source="coingecko")

    listing = admin_client.get(QUOTES, {"q": "bitcoin", "source": "coingecko"})
    link = page(listing).find("a", cls="export-link")
    response = admin_client.get(link.attrs["href"])

    assert link.attrs["href"].startswith(EXPORT + "?")
    assert len(result_rows(listing)) == 3
    rows = exported(response)
    assert [(r["asset_slug"], r["source"]) for r in rows] == [("bitcoin", "coingecko")] * 3
    assert [r["observed_at"] for r in rows] == sorted(r["observed_at"] for r in rows)


def test_the_quote_page_shows_the_observation_and_links_its_asset(admin_client):
    quote = QuoteFactory(
        source="coincap", price_usd=Decimal("64123.5"), observed_at=datetime(2024, 3, 1, tzinfo=UTC)
    )

    response = admin_client.get(reverse("admin:prices_quote_change", args=[quote.pk]))

    assert readonly_field(response, "source").text() == "coincap"
    assert readonly_field(response, "observed_at").text() == "2024-03-01 00:00:00"
    assert readonly_field(response, "price_usd").text().startswith("64123.5")
    assert readonly_field(response, "asset").href() == reverse(
        "admin:prices_asset_change", args=[quote.asset.pk]
    )
    assert page(response).find("input", name="_save") is None
    assert result_links(admin_client.get(QUOTES))[0]["observed_at"] == reverse(
        "admin:prices_quote_change", args=[quote.pk]
    )
