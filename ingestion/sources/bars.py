"""Bar sources for `manage.py backfill --bars`: the providers' OHLC endpoints, each bar stored
with its open, high, low and close, through the same slices and checkpoint as the history
sources (ingestion/sources/history.py).

- CoinGecko `/coins/{id}/ohlc?vs_currency=usd&days=N`: the last N days up to now, N one of 1 (30m
  bars), 7, 14, 30 (4h) or 90, 180, 365 (4d). The provider stamps a bar with its close time, on
  the grid: the bar closing at 08:00 covers 07:30 to 08:00. It is stored one second before that
  stamp (07:59:59), the convention of the CSV exports' and CoinPaprika's daily bars, so a stored
  bar's time always lies inside the bar and every candle interval buckets it where it belongs;
  the raw page keeps the stamp as received.
- CoinPaprika `/coins/{id}/ohlcv/historical?start&end` (dates): daily bars stamped at their
  close (23:59:59). Restricted on the free plan: a refusal fails that slice only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ingestion.normalize import Observation, to_decimal, to_positive_price
from ingestion.sources.base import Item, SourceError
from ingestion.sources.coinpaprika import CoinPaprikaSource
from ingestion.sources.history import (
    CoinGeckoHistory,
    HistoryMixin,
    Slice,
    Target,
    iso_time,
    paprika_items,
    utc_ms,
)
from ingestion.sources.http import JsonClient, Page, error_message


class CoinGeckoBars(CoinGeckoHistory):
    """`/coins/{id}/ohlc`: the bars of the last `days` up to now, their length set by `days`."""

    bars = True
    supported = ("30m", "4h", "4d")
    # The `days` values the endpoint takes for each bar length, shortest first.
    DAYS = {"30m": (1,), "4h": (7, 14, 30), "4d": (90, 180, 365)}
    slice_days: dict[str, int] = {}
    # How far `end` may lie before now: the endpoint cannot end in the past.
    SLACK = timedelta(hours=1)

    def plan_slices(self, targets: list[Target], start: datetime, end: datetime) -> list[Slice]:
        now = timezone.now()
        if end < now - self.SLACK:
            raise SourceError(
                "CoinGecko bars always end now (/ohlc takes a number of days back): leave out --to"
            )
        span = now - start
        choices = self.DAYS[self.interval]
        days = next((d for d in choices if timedelta(days=d) >= span), None)
        if days is None:
            longer = {"30m": "4h bars reach 30 days", "4h": "4d bars reach 365 days"}
            hint = longer.get(self.interval, "a Pro key reaches further with /ohlc/range")
            raise SourceError(
                f"CoinGecko {self.interval} bars reach back {_days(choices[-1])} at most, and "
                f"--from is {_days(span.days)} ago; {hint}"
            )
        self.days = days
        first = now - timedelta(days=days)
        return [Slice(target, first, now) for target in targets]

    def request(self, client: JsonClient, piece: Slice) -> Page:
        return client.get_page(
            f"/coins/{piece.target.external_id}/ohlc",
            params={"vs_currency": "usd", "days": self.days},
        )

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        where = f"/coins/{context['id']}/ohlc"
        if not isinstance(body, list):
            code, message = error_message(body)
            if message is not None:
                raise SourceError(f"{where}: error {code}: {message!r}" if code else message)
            raise SourceError(f"{where}: expected a list of [time, open, high, low, close]")
        items = []
        for index, row in enumerate(body, start=1):
            name = f"{context['id']} bar {index}"
            if not isinstance(row, list) or len(row) != 5:
                items.append(Item(name, index, {"row": row}, "not [time, open, high, low, close]"))
                continue
            stamp, opened, high, low, close = row
            payload = {
                "id": context["id"],
                "interval": context["interval"],
                "time": stamp,
                "open": opened,
                "high": high,
                "low": low,
                "close": close,
            }
            items.append(Item(name, index, payload))
        return items

    def normalize(self, payload: dict[str, Any]) -> Observation:
        closed = utc_ms(payload.get("time"), "time")
        return Observation(
            identity=payload["id"],
            symbol="",
            name="",
            # Stamped at its close on the grid: stored in its own last second (see the module).
            observed_at=closed - timedelta(seconds=1),
            price_usd=to_positive_price(payload.get("close"), field="close"),
            open_usd=to_positive_price(payload.get("open"), field="open"),
            high_usd=to_positive_price(payload.get("high"), field="high"),
            low_usd=to_positive_price(payload.get("low"), field="low"),
            interval=payload["interval"],
        )


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


class CoinPaprikaBars(HistoryMixin, CoinPaprikaSource):
    bars = True
    slice_days = {"1d": 365}
    supported = ("1d",)

    def request(self, client: JsonClient, piece: Slice) -> Page:
        last_day = piece.end - timedelta(seconds=1)
        return client.get_page(
            f"/coins/{piece.target.external_id}/ohlcv/historical",
            params={"start": f"{piece.start:%Y-%m-%d}", "end": f"{last_day:%Y-%m-%d}"},
        )

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        return paprika_items(
            self, body, context, where="/coins/{id}/ohlcv/historical", stamp="time_close"
        )

    def normalize(self, payload: dict[str, Any]) -> Observation:
        return Observation(
            identity=payload["id"],
            symbol="",
            name="",
            observed_at=iso_time(payload.get("time_close"), "time_close"),
            price_usd=to_positive_price(payload.get("close"), field="close"),
            market_cap_usd=to_decimal(payload.get("market_cap"), field="market_cap"),
            volume_24h_usd=to_decimal(payload.get("volume"), field="volume"),
            percent_change_24h=None,
            open_usd=to_decimal(payload.get("open"), field="open"),
            high_usd=to_decimal(payload.get("high"), field="high"),
            low_usd=to_decimal(payload.get("low"), field="low"),
            interval="1d",
        )


BAR_SOURCES: dict[str, type[HistoryMixin]] = {
    "coingecko": CoinGeckoBars,
    "coinpaprika": CoinPaprikaBars,
}
