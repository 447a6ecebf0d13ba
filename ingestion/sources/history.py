"""History sources for `manage.py backfill`: the providers' history endpoints, asset by asset
and slice by slice, through the same pipeline as `ingest` (each response page stored once, the
same preparation and write, the checkpoint in the page's transaction).

- CoinGecko `/coins/{id}/market_chart/range?vs_currency=usd&from&to` (seconds). The span asked
  sets the granularity (up to 90 days: hourly, 5-minutely only for the day ending now; more:
  daily), so slices are 90 days for 1h and 365 days for 1d; 5m is refused. The Demo plan
  reaches back 365 days; beyond,
  the answer is error 10012, which fails that slice only. `market_caps` of 0 or null are kept
  as unknown; the last point of a range ending now is "now", off the grid, and is kept as the
  observation it is.
- CoinCap `/assets/{id}/history?interval=m5|h1|d1&start&end` (milliseconds).
- CoinPaprika `/tickers/{id}/historical?start&end&interval=5m|1h|1d&limit=5000` (seconds):
  points. The free plan serves daily points for the last year and hourly ones for the last day;
  a refusal fails that slice only.

Bars (`backfill --bars`) are in ingestion/sources/bars.py.

The checkpoint (`<source>:backfill`) lists the finished slices by (provider id, interval, kind,
slice start and end): a killed backfill continues with the first unfinished one, and a repeated
range fetches nothing. CoinGecko's bars always end now, so their one slice per asset is asked
again by each run; what comes back unchanged is counted unchanged. Requests share the source's
rate limit and Retry-After handling with `ingest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils import timezone

from ingestion.normalize import Observation, Rejected, to_decimal, to_positive_price
from ingestion.sources.api import JsonApiSource
from ingestion.sources.base import Item, SourceError, Unit
from ingestion.sources.coincap import CoinCapSource
from ingestion.sources.coingecko import CoinGeckoSource
from ingestion.sources.coinpaprika import CoinPaprikaSource
from ingestion.sources.http import JsonClient, Page, error_message

if TYPE_CHECKING:
    from runs.drift import Schema

INTERVALS = ("5m", "30m", "1h", "4h", "1d", "4d")
POINT_INTERVALS = ("5m", "1h", "1d")


@dataclass(frozen=True)
class Target:
    """One asset to backfill: its canonical slug and this provider's id for it."""

    slug: str
    external_id: str


@dataclass(frozen=True)
class Slice:
    target: Target
    start: datetime
    end: datetime

    def key(self, label: str) -> str:
        # The end is part of it: a slice cut short by "now" is fetched again, whole, later.
        return (
            f"{self.target.external_id}|{label}|{self.start:%Y-%m-%dT%H:%M:%SZ}"
            f"|{self.end:%Y-%m-%dT%H:%M:%SZ}"
        )


def split(start: datetime, end: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    step = timedelta(days=days)
    moment = start
    while moment < end:
        yield moment, min(moment + step, end)
        moment += step


def utc_ms(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"{field} is not a millisecond timestamp: {value!r}")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class HistoryMixin(JsonApiSource):
    """What every history source shares: the slices, the checkpoint of finished slices, and
    the failures that cost one slice only."""

    slice_days: dict[str, int]
    supported: tuple[str, ...] = POINT_INTERVALS
    # Bars and points of one interval are different slices: "1d" and "1d bars".
    bars = False
    # The snapshot endpoints' schemas do not apply; a history body's shape is checked per page.
    expected_schema: ClassVar[Schema | None] = None

    def schedule(
        self,
        *,
        targets: list[Target] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str = "1d",
        slices: list[Slice] | None = None,
    ) -> HistoryMixin:
        """The work: every slice of [start, end) for each target, or the `slices` given (the
        gaps a coverage report found)."""
        if interval not in self.supported:
            what = "bars" if self.bars else "history"
            raise SourceError(
                f"{self.title} {what} have no {interval} data here; choose "
                f"{' or '.join(self.supported)}"
            )
        self.interval = interval
        if slices is None:
            assert targets is not None and start is not None and end is not None
            slices = self.plan_slices(targets, start, end)
        self.slices = slices
        self._failures: list[str] = []
        self._done: set[str] = set()
        return self

    def plan_slices(self, targets: list[Target], start: datetime, end: datetime) -> list[Slice]:
        days = self.slice_days[self.interval]
        return [Slice(target, a, b) for target in targets for a, b in split(start, end, days)]

    @property
    def label(self) -> str:
        return f"{self.interval} bars" if self.bars else self.interval

    @property
    def checkpoint_name(self) -> str:
        return f"{self.name}:backfill"

    def progress(self) -> tuple[int, int]:
        """(slices finished or failed, slices in all): a progress bar's count and total."""
        done = sum(1 for s in self.slices if s.key(self.label) in self._done)
        return done + len(self._failures), len(self.slices)

    def failures(self) -> list[str]:
        return list(self._failures)

    def describe(self) -> dict[str, Any]:
        assets = sorted({s.target.slug for s in self.slices})
        return {
            **super().describe(),
            "interval": self.interval,
            "bars": self.bars,
            "assets": assets,
            "slices": len(self.slices),
            "from": min((s.start.isoformat() for s in self.slices), default=None),
            "to": max((s.end.isoformat() for s in self.slices), default=None),
        }

    def fetch(self, cursor: dict[str, Any], *, batch_size: int) -> Iterator[Unit]:
        self._done = set(cursor.get("done", []))
        yield from super().fetch(cursor, batch_size=batch_size)

    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]:
        for piece in self.slices:
            key = piece.key(self.label)
            if key in self._done:
                continue
            try:
                page = self.request(client, piece)
                unit = self.page_unit(client, page, **self.context(piece))
            except SourceError as exc:
                if exc.retryable:
                    raise  # an outage or a rate limit that outlasted the retries: stop here
                self._failures.append(
                    f"{piece.target.slug} {piece.start:%Y-%m-%d %H:%M} to "
                    f"{piece.end:%Y-%m-%d %H:%M}: {exc}"
                )
                continue
            self._done.add(key)
            unit.cursor = {"done": sorted(self._done), "fetched_at": timezone.now().isoformat()}
            yield unit

    def context(self, piece: Slice) -> dict[str, Any]:
        return {
            "id": piece.target.external_id,
            "interval": self.interval,
            "from": piece.start.isoformat(),
            "to": piece.end.isoformat(),
        }

    def request(self, client: JsonClient, piece: Slice) -> Page:
        raise NotImplementedError


class CoinGeckoHistory(HistoryMixin, CoinGeckoSource):
    # 5-minute points come only for a one-day range ending now (other days answer hourly, and
    # `interval=5m` is Enterprise-only): backfilling the past at 5m is not possible here.
    slice_days = {"1h": 90, "1d": 365}
    supported: tuple[str, ...] = ("1h", "1d")

    def request(self, client: JsonClient, piece: Slice) -> Page:
        return client.get_page(
            f"/coins/{piece.target.external_id}/market_chart/range",
            params={
                "vs_currency": "usd",
                "from": int(piece.start.timestamp()),
                "to": int(piece.end.timestamp()),
            },
        )

    def error_hints(self) -> dict[int, str]:
        return {
            **super().error_hints(),
            10012: "The Demo plan reaches back 365 days only; a Pro key reaches further",
        }

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        where = f"/coins/{context['id']}/market_chart/range"
        if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
            code, message = error_message(body)
            if message is not None:
                raise SourceError(f"{where}: error {code}: {message!r}" if code else message)
            raise SourceError(f"{where}: expected an object with a prices list")
        caps = _series(body.get("market_caps"))
        volumes = _series(body.get("total_volumes"))
        items = []
        for index, point in enumerate(body["prices"], start=1):
            stamp = point[0] if isinstance(point, list) and point else None
            if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                stamp = None  # rejected by normalize, as this point only
            payload = {
                "id": context["id"],
                "time": stamp,
                "price": point[1] if isinstance(point, list) and len(point) > 1 else None,
                "market_cap": caps.get(stamp),
                "total_volume": volumes.get(stamp),
            }
            items.append(Item(f"{context['id']} point {index}", index, payload))
        return items

    def normalize(self, payload: dict[str, Any]) -> Observation:
        cap = to_decimal(payload.get("market_cap"), field="market_cap")
        return Observation(
            identity=payload["id"],
            symbol="",
            name="",
            observed_at=utc_ms(payload.get("time"), "time"),
            price_usd=to_positive_price(payload.get("price"), field="price"),
            # A market cap of 0 is CoinGecko's "unknown" for new and delisted coins.
            market_cap_usd=cap if cap else None,
            volume_24h_usd=to_decimal(payload.get("total_volume"), field="total_volume"),
            percent_change_24h=None,
        )


def _series(value: Any) -> dict[Any, Any]:
    """A `[[ms, value], ...]` series as {ms: value}; anything else is empty."""
    if not isinstance(value, list):
        return {}
    return {
        p[0]: p[1]
        for p in value
        if isinstance(p, list) and len(p) > 1 and isinstance(p[0], int | float)
    }


class CoinCapHistory(HistoryMixin, CoinCapSource):
    slice_days = {"5m": 1, "1h": 30, "1d": 365}
    CODES = {"5m": "m5", "1h": "h1", "1d": "d1"}

    def request(self, client: JsonClient, piece: Slice) -> Page:
        return client.get_page(
            f"/assets/{piece.target.external_id}/history",
            params={
                "interval": self.CODES[self.interval],
                "start": int(piece.start.timestamp() * 1000),
                "end": int(piece.end.timestamp() * 1000),
            },
        )

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        where = f"/assets/{context['id']}/history"
        rows = body.get("data") if isinstance(body, dict) else body
        if not isinstance(rows, list):
            _, message = error_message(body)
            got = f"the error {message!r}" if message else f"a JSON {type(body).__name__}"
            raise SourceError(f"{where}: expected a data list, got {got}")
        return [
            Item(f"{context['id']} point {index}", index, {"id": context["id"], **row})
            if isinstance(row, dict)
            else Item(f"{context['id']} point {index}", index, {"row": row}, "not an object")
            for index, row in enumerate(rows, start=1)
        ]

    def normalize(self, payload: dict[str, Any]) -> Observation:
        return Observation(
            identity=payload["id"],
            symbol="",
            name="",
            observed_at=utc_ms(payload.get("time"), "time"),
            price_usd=to_positive_price(payload.get("priceUsd"), field="priceUsd"),
            market_cap_usd=None,
            volume_24h_usd=None,
            percent_change_24h=None,
        )


class CoinPaprikaHistory(HistoryMixin, CoinPaprikaSource):
    """`/tickers/{id}/historical`: points (price, 24 h volume, market cap) on the interval's
    grid, up to 5,000 a request."""

    # 5,000 points a request: 17 days of 5m, 208 days of 1h.
    slice_days = {"5m": 14, "1h": 180, "1d": 365}
    LIMIT = 5000

    def request(self, client: JsonClient, piece: Slice) -> Page:
        return client.get_page(
            f"/tickers/{piece.target.external_id}/historical",
            params={
                "start": int(piece.start.timestamp()),
                "end": int(piece.end.timestamp()),
                "interval": self.interval,
                "limit": self.LIMIT,
            },
        )

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        return paprika_items(
            self, body, context, where="/tickers/{id}/historical", stamp="timestamp"
        )

    def normalize(self, payload: dict[str, Any]) -> Observation:
        return Observation(
            identity=payload["id"],
            symbol="",
            name="",
            observed_at=iso_time(payload.get("timestamp"), "timestamp"),
            price_usd=to_positive_price(payload.get("price"), field="price"),
            market_cap_usd=to_decimal(payload.get("market_cap"), field="market_cap") or None,
            volume_24h_usd=to_decimal(payload.get("volume_24h"), field="volume_24h"),
            percent_change_24h=None,
        )


def paprika_items(
    source: HistoryMixin, body: Any, context: dict[str, Any], *, where: str, stamp: str
) -> list[Item]:
    """A CoinPaprika history list (`where`, with `{id}`) as items named by their time."""
    rows = source.expect_rows(body, what=where.format(id=context["id"]))
    return [
        Item(f"{context['id']} {row.get(stamp, index)}", index, {"id": context["id"], **row})
        for index, row in enumerate(rows, start=1)
    ]


def iso_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise Rejected(f"missing {field}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise Rejected(f"{field} is not a time: {value!r}") from None


HISTORY_SOURCES: dict[str, type[HistoryMixin]] = {
    "coingecko": CoinGeckoHistory,
    "coincap": CoinCapHistory,
    "coinpaprika": CoinPaprikaHistory,
}
