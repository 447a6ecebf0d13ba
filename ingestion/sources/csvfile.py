"""CSV exports of daily prices, recognised by their header.

Layouts (header names compared case-, space- and underscore-insensitively):
- Kaggle / CoinMarketCap: SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap
- Yahoo Finance: Date,Open,High,Low,Close,Adj Close,Volume (symbol from --symbol or the file name)
- CryptoDataDownload: Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume <base>,Volume USD
  (Symbol is a pair such as BTCUSD; an optional first line with the site's URL is skipped)

The file is streamed: memory does not grow with its size. The checkpoint keeps, per file, the
byte offset reached and a SHA-256 of the bytes before it. The next run hashes that prefix again:
if it matches, reading continues at the offset (an unchanged file reads nothing, appended rows
are the only ones read); if not, the file was replaced and is read again from the start, and
content hashes keep that from creating duplicates.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.normalize import (
    Observation,
    Rejected,
    is_missing,
    to_decimal,
    to_positive_price,
    to_utc,
)
from ingestion.sources.base import Item, Source, SourceError

_CHUNK = 1 << 20
# A daily price row is well under a kilobyte. A longer line is rejected without being parsed
# (csv refuses fields over 128 KiB anyway), and only this much of it is ever in memory.
MAX_LINE_BYTES = 64 * 1024
# How much of a rejected line is kept for inspection.
_KEPT_TEXT = 500
# How many leading lines may precede the header (CryptoDataDownload puts its URL first).
_MAX_PREAMBLE_LINES = 3


def _key(column: str) -> str:
    return re.sub(r"[\s_]+", "", column.strip().lstrip("\ufeff")).lower()


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    required: tuple[str, ...]  # header keys (see _key) that must all be present
    example: str

    def matches(self, keys: set[str]) -> bool:
        return set(self.required) <= keys


CRYPTODATADOWNLOAD = Layout(
    "cryptodatadownload",
    "CryptoDataDownload",
    ("date", "symbol", "open", "high", "low", "close", "volumeusd"),
    "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume <base>,Volume USD",
)
KAGGLE = Layout(
    "kaggle",
    "Kaggle/CoinMarketCap",
    ("name", "symbol", "date", "high", "low", "open", "close", "volume", "marketcap"),
    "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap",
)
YAHOO = Layout(
    "yahoo",
    "Yahoo Finance",
    ("date", "open", "high", "low", "close", "adjclose", "volume"),
    "Date,Open,High,Low,Close,Adj Close,Volume",
)
# Most specific first: a CryptoDataDownload header also has every Yahoo column but one.
LAYOUTS = (CRYPTODATADOWNLOAD, KAGGLE, YAHOO)
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}

_PAIR = re.compile(r"^(?P<base>.+?)[/\-_ ]?USD$", re.IGNORECASE)
_FILE_SYMBOL = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)[-_ ]?USD", re.IGNORECASE)


def detect_layout(header: list[str]) -> Layout | None:
    keys = {_key(column) for column in header}
    return next((layout for layout in LAYOUTS if layout.matches(keys)), None)


def unrecognised_layout_message(header: list[str]) -> str:
    expected = "; ".join(f"{layout.title}: {layout.example}" for layout in LAYOUTS)
    return f"unrecognised CSV layout, header was {','.join(header)!r}. Expected one of: {expected}"


def symbol_from_filename(path: Path) -> str | None:
    match = _FILE_SYMBOL.match(path.stem)
    return match["symbol"].upper() if match else None


@functools.lru_cache(maxsize=64)
def _columns_by_key(header: tuple[str, ...]) -> dict[str, str]:
    return {_key(column): column for column in header}


class _Row:
    """A stored row read by header key, whatever the file's spelling of the header."""

    __slots__ = ("columns", "values")

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.columns = _columns_by_key(tuple(values))

    def get(self, *keys: str) -> str | None:
        """The value of the first column whose header key is in `keys`."""
        for key in keys:
            column = self.columns.get(key)
            if column is not None:
                return self.values[column]
        return None

    def require(self, key: str, label: str) -> str:
        value = self.get(key)
        if value is None or is_missing(value):
            raise Rejected(f"missing {label}")
        return value.strip()


def _normalize_kaggle(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    symbol = row.require("symbol", "Symbol").upper()
    name = row.require("name", "Name")
    return Observation(
        identity=f"{symbol}/{name}",
        symbol=symbol,
        name=name,
        observed_at=to_utc(row.get("date"), field="Date"),
        price_usd=to_positive_price(row.get("close"), field="Close"),
        market_cap_usd=to_decimal(row.get("marketcap"), field="Marketcap"),
        volume_24h_usd=to_decimal(row.get("volume"), field="Volume"),
    )


def _normalize_yahoo(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    symbol = payload["symbol"]
    return Observation(
        identity=symbol,
        symbol=symbol,
        name="",
        observed_at=to_utc(row.get("date"), field="Date"),
        price_usd=to_positive_price(row.get("close"), field="Close"),
        volume_24h_usd=to_decimal(row.get("volume"), field="Volume"),
    )


def _normalize_cryptodatadownload(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    pair = row.require("symbol", "Symbol")
    match = _PAIR.match(pair)
    if not match:
        raise Rejected(f"Symbol {pair!r} is not a pair quoted in USD")
    symbol = match["base"].upper()
    timestamp = row.get("unixtimestamp", "unix")
    observed_at = (
        to_utc(timestamp, field="Unix Timestamp")
        if not is_missing(timestamp)
        else to_utc(row.get("date"), field="Date")
    )
    return Observation(
        identity=symbol,
        symbol=symbol,
        name="",
        observed_at=observed_at,
        price_usd=to_positive_price(row.get("close"), field="Close"),
        volume_24h_usd=to_decimal(row.get("volumeusd"), field="Volume USD"),
    )


_NORMALIZERS: dict[str, Callable[[dict[str, Any]], Observation]] = {
    "kaggle": _normalize_kaggle,
    "yahoo": _normalize_yahoo,
    "cryptodatadownload": _normalize_cryptodatadownload,
}


class CsvSource(Source):
    """Rows of one CSV file."""

    name = "csv"

    def __init__(
        self, *, path: Path | str, symbol: str | None = None, asset: str | None = None
    ) -> None:
        self.path = Path(path).resolve()
        self.symbol = symbol.strip().upper() if symbol else None
        self.asset_slug = asset.strip() if asset else None
        self._state: dict[str, Any] = {}
        self._cursor: dict[str, Any] = {}
        self._hasher = hashlib.sha256()

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "symbol": self.symbol, "asset": self.asset_slug}

    def normalize(self, payload: dict[str, Any]) -> Observation:
        if "row" not in payload:
            raise Rejected(payload.get("error", "malformed row"))
        layout = payload.get("layout")
        if layout not in _NORMALIZERS:
            raise Rejected(f"unknown CSV layout {layout!r}")
        return _NORMALIZERS[layout](payload)

    def position(self) -> dict[str, Any]:
        files = dict(self._cursor.get("files", {}))
        files[str(self.path)] = {**self._state, "sha256": self._hasher.hexdigest()}
        return {**self._cursor, "files": files}

    def fetch(self, cursor: dict[str, Any]) -> Iterator[Item]:
        self._cursor = cursor
        if not self.path.is_file():
            raise SourceError(f"CSV file not found: {self.path}")
        with self.path.open("rb") as handle:
            layout, header, offset, line_no = self._read_header(handle)
            symbol = self._file_symbol(layout)
            self._state = {"offset": offset, "line": line_no, "layout": layout.name}
            self._hasher = hashlib.sha256()
            handle.seek(0)
            self._hasher.update(handle.read(offset))
            resume = self._resumable_offset(handle, cursor.get("files", {}).get(str(self.path)))
            if resume is not None:
                self._state.update(resume)
            handle.seek(self._state["offset"])
            yield from self._rows(handle, layout, header, symbol)

    def _read_header(self, handle: Any) -> tuple[Layout, list[str], int, int]:
        self._check_encoding(handle.read(4096))
        handle.seek(0)
        offset = 0
        seen: list[list[str]] = []
        for line_no in range(1, _MAX_PREAMBLE_LINES + 2):
            raw = handle.readline(MAX_LINE_BYTES)
            if not raw:
                break
            offset += len(raw)
            text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8", errors="replace")
            header = next(csv.reader([text]), [])
            layout = detect_layout(header)
            if layout is not None:
                return (
                    layout,
                    [column.strip().lstrip("\ufeff") for column in header],
                    offset,
                    line_no,
                )
            seen.append(header)
        if not seen:
            raise SourceError(f"{self.path}: the file is empty")
        raise SourceError(f"{self.path}: line 1: {unrecognised_layout_message(seen[0])}")

    def _check_encoding(self, head: bytes) -> None:
        """Refuse, by name, an encoding other than UTF-8 (Excel saves "Unicode text" as UTF-16)."""
        wide = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}.get(
            head[:2]
        )
        if wide is None and head.count(b"\x00") * 4 >= len(head) > 0:
            wide = "UTF-16 or another wide encoding (NUL bytes between the characters)"
        if wide is not None:
            raise SourceError(
                f"{self.path}: the file is {wide}, not UTF-8; convert it first, e.g. "
                "iconv -f UTF-16 -t UTF-8"
            )
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not a character cut off by the 4 KiB window
                line = head.count(b"\n", 0, exc.start) + 1
                raise SourceError(
                    f"{self.path}: line {line}: byte 0x{head[exc.start]:02x} is not UTF-8; "
                    "save the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)"
                ) from None

    def _file_symbol(self, layout: Layout) -> str | None:
        if layout is not YAHOO:
            return None
        symbol = self.symbol or symbol_from_filename(self.path)
        if not symbol:
            raise SourceError(
                f"{self.path}: a Yahoo Finance file has no Symbol column; pass --symbol "
                "or name the file like BTC-USD.csv"
            )
        return symbol

    def _resumable_offset(self, handle: Any, saved: dict[str, Any] | None) -> dict[str, Any] | None:
        """The saved position if the file still starts with exactly the bytes read last time."""
        if not saved or saved.get("offset", 0) <= self._state["offset"]:
            return None
        end = saved["offset"]
        hasher = self._hasher.copy()
        handle.seek(self._state["offset"])
        remaining = end - self._state["offset"]
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                return None  # the file is shorter now: replaced
            hasher.update(chunk)
            remaining -= len(chunk)
        if hasher.hexdigest() != saved.get("sha256"):
            return None
        self._hasher = hasher
        return {"offset": end, "line": saved["line"]}

    def _rows(
        self, handle: Any, layout: Layout, header: list[str], symbol: str | None
    ) -> Iterator[Item]:
        state = self._state
        hasher = self._hasher
        file_name = self.path.name
        columns = len(header)
        line_no = state["line"]

        # Lines too long to parse, by line number: each comes out of csv as a blank row and is
        # rejected there.
        too_long: dict[int, int] = {}

        def lines() -> Iterator[str]:
            nonlocal line_no
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                line_no += 1
                size = len(raw)
                if size > MAX_LINE_BYTES:
                    # Read through the rest of the line without keeping it.
                    hasher.update(raw)
                    while not raw.endswith(b"\n") and (raw := handle.readline(_CHUNK)):
                        hasher.update(raw)
                        size += len(raw)
                    too_long[line_no] = size
                    if raw.endswith(b"\n"):
                        state["offset"] += size
                        state["line"] = line_no
                    yield "\n"
                    continue
                # A last line without its newline may still be being written: it is read, but
                # the checkpoint stays before it, so the next run reads it again, whole.
                if raw.endswith(b"\n"):
                    hasher.update(raw)
                    state["offset"] += size
                    state["line"] = line_no
                yield raw.decode("utf-8", errors="replace")

        def rejected(reason: str, text: str) -> Item:
            payload = {"layout": layout.name, "error": reason, "text": text[:_KEPT_TEXT]}
            digest = hashlib.sha256(f"{prefix}\x1e{line_no}\x1e{reason}".encode()).hexdigest()
            return Item(f"{file_name}:{line_no}"[-255:], payload, digest, reason)

        prefix = f"{layout.name}\x1f{symbol or ''}\x1f"
        reader = csv.reader(lines())
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield rejected(f"line {line_no}: unreadable CSV: {exc}", "")
                continue
            if too_long:
                for number, size in too_long.items():
                    yield Item(
                        f"{file_name}:{number}"[-255:],
                        {"layout": layout.name, "error": "line too long"},
                        hashlib.sha256(f"{prefix}\x1e{number}\x1e{size}".encode()).hexdigest(),
                        f"line {number} is {size:,} bytes, longer than the "
                        f"{MAX_LINE_BYTES:,} a row may have",
                    )
                too_long.clear()
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if len(fields) == columns:
                payload: dict[str, Any] = {
                    "layout": layout.name,
                    "row": dict(zip(header, fields, strict=True)),
                }
            else:
                # Kept whole, with the reason, so the row can be inspected and fixed.
                payload = {
                    "layout": layout.name,
                    "fields": fields,
                    "error": f"expected {columns} columns, found {len(fields)}",
                }
            if symbol:
                payload["symbol"] = symbol
            digest = hashlib.sha256((prefix + "\x1f".join(fields)).encode()).hexdigest()
            yield Item(
                external_id=f"{file_name}:{line_no}"[-255:],
                payload=payload,
                content_hash=digest,
            )
