"""The base class of the JSON API sources (CoinGecko, CoinPaprika, CoinCap)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone

from ingestion.normalize import Rejected
from ingestion.sources.base import Item, Source, SourceError, Unit
from ingestion.sources.http import (
    HttpPolicy,
    JsonClient,
    Page,
    error_message,
    parse_json,
    safe_url,
)
from runs.drift import json_type


class JsonApiSource(Source):
    """A source that pages through a JSON API. Subclasses say how to call it (`fetch_pages`),
    how to read one page (`read_page`, also used to replay a stored page) and one item
    (`normalize`); this class builds the client, refuses a bad configuration before any
    request, and checks each page's shape before its unit goes out.

    API runs always start from the first page; the cursor records the last page read and when.
    """

    title: ClassVar[str]
    key_setting: ClassVar[str]
    calls_per_minute_setting: ClassVar[str]

    def __init__(self, *, base_url: str, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key.strip()

    @abstractmethod
    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]: ...

    @abstractmethod
    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        """The items of one decoded page, or a `SourceError` saying what came instead."""

    def replay(
        self, *, data: bytes, context: dict[str, Any], line_start: int | None, file_name: str
    ) -> list[Item]:
        return self.read_page(parse_json(data), context)

    def page_unit(self, client: JsonClient, fetched: Page, **context: Any) -> Unit:
        """A fetched page as a unit, its items read by `read_page`."""
        try:
            items = self.read_page(fetched.body, context)
        except SourceError as exc:
            raise client.fail(str(exc), retryable=exc.retryable) from None
        cursor = {**context, "fetched_at": timezone.now().isoformat()}
        return Unit(
            kind="page",
            data=fetched.data,
            media_type="application/json",
            items=items,
            cursor=cursor,
            context=context,
            url=fetched.url,
        )

    def headers(self) -> dict[str, str]:
        return {}

    def error_hints(self) -> dict[int, str]:
        return {}

    def configuration_error(self) -> str | None:
        """Why the settings cannot work (a key on the wrong host...), checked before any call."""
        return self.missing_configuration()

    def describe(self) -> dict[str, Any]:
        return {"base_url": safe_url(self.base_url), "api_key": bool(self.api_key)}

    def fetch(self, cursor: dict[str, Any], *, batch_size: int) -> Iterator[Unit]:
        problem = self.configuration_error()
        if problem:
            raise SourceError(f"{self.title} is misconfigured: {problem}")
        client = JsonClient(
            source=self.name,
            title=self.title,
            base_url=self.base_url,
            policy=HttpPolicy.from_settings(
                calls_per_minute=getattr(settings, self.calls_per_minute_setting)
            ),
            headers=self.headers(),
            secrets=[self.api_key],
            key_setting=self.key_setting,
            error_hints=self.error_hints(),
        )
        try:
            yield from self.fetch_pages(client)
        finally:
            client.close()

    def expect_rows(self, body: Any, *, what: str) -> list[dict[str, Any]]:
        """`body` as a list of objects, or a `SourceError` saying what came instead."""
        if not isinstance(body, list):
            code, message = error_message(body)
            if message is not None:
                found = f"error {code}: {message!r}" if code else f"error {message!r}"
                raise SourceError(f"{what}: expected a list, got an {found}")
            raise SourceError(f"{what}: expected a list, got a JSON {json_type(body)}")
        for index, row in enumerate(body, start=1):
            if not isinstance(row, dict):
                raise SourceError(
                    f"{what}: item {index} is a JSON {json_type(row)}, not an object; "
                    "nothing from this response was stored"
                )
        return body

    def items_by_id(
        self,
        rows: list[dict[str, Any]],
        *,
        where: Callable[[int], str],
        wrap: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> list[Item]:
        """One item per row, located by its provider id. A second row for an id in one page is
        a contradiction the provider made: it is kept and rejected, saying so (an exact repeat
        says nothing new and is dropped). A row without an id is located by its place
        (`where(index)`) and rejected there."""
        items = []
        first_at: dict[str, int] = {}
        for index, row in enumerate(rows, start=1):
            coin_id = row.get("id")
            rejection = ""
            if isinstance(coin_id, str) and coin_id:
                location = coin_id
                if coin_id in first_at:
                    if row == rows[first_at[coin_id] - 1]:
                        continue
                    rejection = (
                        f"provider id {coin_id!r} appears again in this page ({where(index)}) "
                        f"with other values; the first row ({where(first_at[coin_id])}) is kept"
                    )
                    location = f"{coin_id} ({where(index)})"
                else:
                    first_at[coin_id] = index
            else:
                location = f"{where(index)} (no id)"
            items.append(Item(location, index, wrap(row) if wrap else row, rejection))
        return items


def provider_id(row: dict[str, Any]) -> str:
    """The row's provider id, or a rejection naming what else identifies the row."""
    coin_id = row.get("id")
    if not isinstance(coin_id, str) or not coin_id.strip():
        raise Rejected(f"missing id (symbol {row.get('symbol')!r}, name {row.get('name')!r})")
    return coin_id


def text(value: Any) -> str:
    """A provider's string field, stripped; anything else is empty."""
    return value.strip() if isinstance(value, str) else ""
