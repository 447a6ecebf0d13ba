"""The base class of the JSON API sources (CoinGecko, CoinPaprika, CoinCap)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone

from ingestion.drift import json_type
from ingestion.normalize import Rejected
from ingestion.sources.base import Item, Source, SourceError, hash_payload
from ingestion.sources.http import HttpPolicy, JsonClient, error_message, safe_url


class JsonApiSource(Source):
    """A source that pages through a JSON API. Subclasses say how to call it (`fetch_pages`)
    and how to read one item (`normalize`); this class builds the client, refuses a bad
    configuration before any request, and checks each page's shape before its items go out.

    API runs always start from the first page; the cursor records the last page read and when.
    Items are whole rows, so `content_hash` (of the row) stays the same while the row does.
    """

    title: ClassVar[str]
    key_setting: ClassVar[str]
    calls_per_minute_setting: ClassVar[str]

    def __init__(self, *, base_url: str, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key.strip()
        self._position: dict[str, Any] = {}

    @abstractmethod
    def fetch_pages(self, client: JsonClient) -> Iterator[Item]: ...

    def headers(self) -> dict[str, str]:
        return {}

    def error_hints(self) -> dict[int, str]:
        return {}

    def configuration_error(self) -> str | None:
        """Why the settings cannot work (a key on the wrong host...), checked before any call."""
        return self.missing_configuration()

    def describe(self) -> dict[str, Any]:
        return {"base_url": safe_url(self.base_url), "api_key": bool(self.api_key)}

    def position(self) -> dict[str, Any]:
        return dict(self._position)

    def fetch(self, cursor: dict[str, Any]) -> Iterator[Item]:
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

    def mark(self, *, page: int, **extra: Any) -> None:
        """Record the page whose items are about to be yielded (the checkpoint cursor)."""
        self._position = {"page": page, "fetched_at": timezone.now().isoformat(), **extra}

    def expect_rows(self, client: JsonClient, body: Any, *, what: str) -> list[dict[str, Any]]:
        """`body` as a list of objects, or a `SourceError` saying what came instead."""
        if not isinstance(body, list):
            code, message = error_message(body)
            if message is not None:
                found = f"error {code}: {message!r}" if code else f"error {message!r}"
                raise client.fail(f"{what}: expected a list, got an {found}")
            raise client.fail(f"{what}: expected a list, got a JSON {json_type(body)}")
        for index, row in enumerate(body, start=1):
            if not isinstance(row, dict):
                raise client.fail(
                    f"{what}: item {index} is a JSON {json_type(row)}, not an object; "
                    "nothing from this response was stored"
                )
        return body

    def items_by_id(
        self,
        rows: list[dict[str, Any]],
        *,
        seen: set[str],
        where: Callable[[int], str],
        wrap: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> list[Item]:
        """One item per provider id across the pages of a run: ranks move between requests,
        so an id met again on a later page is skipped. Within one page, a second row for an id
        is a contradiction the provider made: it is kept and rejected, saying so. A row without
        an id keeps its place (`where(index)`) as its external id, and is rejected with it. The
        content hash is the row's, whatever `wrap` adds to the stored payload."""
        items = []
        on_this_page: dict[str, int] = {}
        for index, row in enumerate(rows, start=1):
            coin_id = row.get("id")
            rejection = ""
            if isinstance(coin_id, str) and coin_id:
                external_id = coin_id
                if coin_id in on_this_page:
                    first = rows[on_this_page[coin_id] - 1]
                    if row == first:
                        continue
                    rejection = (
                        f"provider id {coin_id!r} appears again in this page ({where(index)}) "
                        f"with other values; the first row ({where(on_this_page[coin_id])}) is kept"
                    )
                    external_id = f"{coin_id} ({where(index)})"
                elif coin_id in seen:
                    continue
                else:
                    on_this_page[coin_id] = index
                    seen.add(coin_id)
            else:
                external_id = f"{where(index)} (no id)"
            items.append(
                Item(external_id, wrap(row) if wrap else row, hash_payload(row), rejection)
            )
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
