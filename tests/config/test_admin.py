"""The admin as the operator meets it: every page renders, corrections report what they did."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from prices.models import Asset, AssetIdentifier, Quote
from tests.factories import (
    AssetFactory,
    AssetIdentifierFactory,
    QuoteFactory,
    RejectionFactory,
    RunFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [
    "runs_run",
    "runs_checkpoint",
    "ingestion_rawunit",
    "ingestion_rejection",
    "prices_asset",
    "prices_assetidentifier",
    "prices_quote",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_list_page_renders(admin_client, model):
    RejectionFactory(reason="missing Close")
    QuoteFactory()

    response = admin_client.get(reverse(f"admin:{model}_changelist"))

    assert response.status_code == 200


def test_review_filter_lists_unverified_and_low_confidence_assets(admin_client):
    checked = AssetFactory(slug="checked", verified=True)
    AssetIdentifierFactory(asset=checked, method="reference", confidence=1)
    guessed = AssetFactory(slug="guessed", verified=True)
    AssetIdentifierFactory(asset=guessed, method="cross_provider", confidence="0.8")
    new = AssetFactory(slug="brand-new", verified=False)

    page = admin_client.get(reverse("admin:prices_asset_changelist"), {"review": "yes"})

    listed = {asset.slug for asset in page.context["cl"].result_list}
    assert listed == {guessed.slug, new.slug}


def test_merge_action_moves_quotes_and_reports_it(admin_client):
    keep, other = AssetFactory(verified=True, rank=1), AssetFactory()
    QuoteFactory(asset=keep)
    QuoteFactory(asset=other, source="coincap")
    url = reverse("admin:prices_asset_changelist")
    selected = {"action": "merge", ACTION_CHECKBOX_NAME: [keep.pk, other.pk]}

    confirm = admin_client.post(url, selected)
    done = admin_client.post(url, {**selected, "target": keep.pk}, follow=True)

    assert b"Merge assets" in confirm.content
    assert Quote.objects.filter(asset=keep).count() == 2
    assert not Asset.objects.filter(pk=other.pk).exists()
    assert f"merged {other.slug} into {keep.slug}" in done.content.decode().lower()


def test_remap_action_points_an_identifier_at_another_asset(admin_client):
    wrong, right = AssetFactory(), AssetFactory(slug="the-right-one")
    identifier = AssetIdentifierFactory(asset=wrong, source="coincap", external_id="xyz")
    QuoteFactory(asset=wrong, source="coincap")
    url = reverse("admin:prices_assetidentifier_changelist")

    done = admin_client.post(
        url,
        {"action": "remap", ACTION_CHECKBOX_NAME: [identifier.pk], "target_slug": "the-right-one"},
        follow=True,
    )

    identifier.refresh_from_db()
    assert (identifier.asset, identifier.method) == (right, AssetIdentifier.Method.MANUAL)
    assert "coincap:xyz" in done.content.decode()
    assert Quote.objects.get().asset == right


def test_asset_page_shows_the_consolidated_price_and_flags(admin_client):
    asset = AssetFactory()
    now = timezone.now()
    for source, price in (("coingecko", 100), ("coinpaprika", 101), ("coincap", 150)):
        QuoteFactory(asset=asset, source=source, observed_at=now, price_usd=price)

    page = admin_client.get(reverse("admin:prices_asset_change", args=[asset.pk])).content.decode()

    assert "Median <strong>101.00 USD</strong> from 3 source(s)" in page
    assert '<span class="badge badge-failing">deviates</span>' in page


def test_runs_and_identifiers_cannot_be_edited_by_hand(admin_client):
    run = RunFactory()
    identifier = AssetIdentifierFactory()

    run_page = admin_client.post(reverse("admin:runs_run_change", args=[run.pk]), {})
    admin_client.post(
        reverse("admin:prices_assetidentifier_change", args=[identifier.pk]),
        {"asset": AssetFactory().pk, "external_id": "changed"},
    )

    identifier.refresh_from_db()
    assert run_page.status_code == 403
    assert identifier.external_id != "changed"
