"""CSV exports of daily prices, recognised by their header.

The layouts and how each row becomes an observation: ingestion/sources/csvlayouts.py.

The file is streamed: memory does not grow with its size. The checkpoint keeps, per file, the
byte offset reached and a SHA-256 of the bytes before it. The next run hashes that prefix again:
if it matches, reading continues at the offset (an unchanged file reads nothing, appended rows
are the only ones read); if not, the file was replaced and is read again from the start, and
the quotes' unique key keeps that from creating duplicates.

Each chunk of up to ETL_BATCH_SIZE rows is one raw unit: its exact bytes, with the layout, header
and symbol needed to read them again (`replay`). Every row is a daily bar: open, high, low and
close (the price) are kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from django.conf import settings

from ingestion.normalize import (
    Observation,
    Rejected,
)
from ingestion.sources.base import Item, Source, SourceError, Unit
from ingestion.sources.csvlayouts import (
    LAYOUTS_BY_NAME,
    NORMALIZERS,
    YAHOO,
    Layout,
    detect_layout,
    symbol_from_filename,
    unrecognised_layout_message,
)

_CHUNK = 1 << 20
# A daily price row is well under a kilobyte. A longer line is rejected without being parsed
# (csv refuses fields over 128 KiB anyway), and only this much of it is ever in memory.
MAX_LINE_BYTES = 64 * 1024
# How much of a rejected line is kept for inspection.
_KEPT_TEXT = 500
# How many leading lines may precede the header (CryptoDataDownload puts its URL first).
_MAX_PREAMBLE_LINES = 3


class CsvSource(Source):
    """Rows of one CSV file, or of every `*.csv` file in a folder (in name order, each with its
    own place in the checkpoint)."""

    name = "csv"
    run_options = ("path", "symbol", "asset")

    @classmethod
    def from_settings(cls, **options: Any) -> Self:
        return cls(
            path=options.get("path") or settings.CSV_PATH,
            symbol=options.get("symbol"),
            asset=options.get("asset"),
        )

    def __init__(
        self, *, path: Path | str, symbol: str | None = None, asset: str | None = None
    ) -> None:
        self.path = Path(path).resolve()
        self.symbol = symbol.strip().upper() if symbol else None
        self.asset_slug = asset.strip() if asset else None

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "symbol": self.symbol, "asset": self.asset_slug}

    def normalize(self, payload: dict[str, Any]) -> Observation:
        if "row" not in payload:
            raise Rejected(payload.get("error", "malformed row"))
        layout = payload.get("layout")
        if layout not in NORMALIZERS:
            raise Rejected(f"unknown CSV layout {layout!r}")
        return NORMALIZERS[layout](payload)

    def fetch(self, cursor: dict[str, Any], *, batch_size: int) -> Iterator[Unit]:
        if not self.path.is_dir():
            yield from self._fetch_file(cursor, batch_size=batch_size)
            return
        files = sorted(path for path in self.path.glob("*.csv") if path.is_file())
        if not files:
            raise SourceError(f"no .csv file in the folder {self.path}")
        for path in files:
            one = CsvSource(path=path, symbol=self.symbol, asset=self.asset_slug)
            for unit in one._fetch_file(cursor, batch_size=batch_size):
                # The next file's units carry this file's finished place in the checkpoint.
                cursor = unit.cursor
                yield unit

    def _fetch_file(self, cursor: dict[str, Any], *, batch_size: int) -> Iterator[Unit]:
        if not self.path.is_file():
            raise SourceError(f"CSV file not found: {self.path}")
        with self.path.open("rb") as handle:
            layout, header, offset, line_no = self._read_header(handle)
            symbol = self._file_symbol(layout)
            state: dict[str, Any] = {"offset": offset, "line": line_no, "layout": layout.name}
            hasher = hashlib.sha256()
            handle.seek(0)
            hasher.update(handle.read(offset))
            saved = cursor.get("files", {}).get(str(self.path))
            resume = self._resumable_offset(handle, saved, state=state, hasher=hasher)
            if resume is not None:
                hasher = resume
                state.update(offset=saved["offset"], line=saved["line"])
            handle.seek(state["offset"])
            context = {"layout": layout.name, "header": header, "symbol": symbol}
            lines = _Lines(handle, line_no=state["line"], hasher=hasher)
            items: list[Item] = []
            start = (state["offset"], state["line"] + 1)
            for item in _items(
                lines, layout=layout, header=header, symbol=symbol, name=self.path.name
            ):
                items.append(item)
                if len(items) >= batch_size:
                    yield self._unit(lines, items, start, context, cursor, state)
                    items = []
                    start = (lines.offset, lines.complete + 1)
            if items or lines.kept:
                yield self._unit(lines, items, start, context, cursor, state)

    def _unit(
        self,
        lines: _Lines,
        items: list[Item],
        start: tuple[int, int],
        context: dict[str, Any],
        cursor: dict[str, Any],
        state: dict[str, Any],
    ) -> Unit:
        """The lines read since the last unit, as one; the cursor stays before a last line that
        has no newline yet (it may still be being written), so the next run reads it whole."""
        data = lines.take()
        state.update(offset=lines.offset, line=lines.complete)
        files = {**cursor.get("files", {}), str(self.path): {**state, "sha256": lines.sha256()}}
        return Unit(
            kind="chunk",
            data=data,
            media_type="text/csv",
            items=items,
            cursor={**cursor, "files": files},
            context=context,
            file_name=str(self.path),
            byte_start=start[0],
            byte_end=start[0] + len(data),
            line_start=start[1],
            line_end=lines.line_no,
        )

    def replay(
        self, *, data: bytes, context: dict[str, Any], line_start: int | None, file_name: str
    ) -> list[Item]:
        layout = LAYOUTS_BY_NAME[context["layout"]]
        lines = _Lines(io.BytesIO(data), line_no=(line_start or 1) - 1, hasher=None)
        name = Path(file_name).name
        return list(
            _items(
                lines, layout=layout, header=context["header"], symbol=context["symbol"], name=name
            )
        )

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

    def _resumable_offset(
        self, handle: Any, saved: dict[str, Any] | None, *, state: dict[str, Any], hasher: Any
    ) -> Any:
        """The hash of the saved prefix if the file still starts with exactly the bytes read
        last time (continue at the saved offset), else None (read the file again)."""
        if not saved or saved.get("offset", 0) <= state["offset"]:
            return None
        end = saved["offset"]
        hasher = hasher.copy()
        handle.seek(state["offset"])
        remaining = end - state["offset"]
        while remaining > 0:
            chunk = handle.read(min(_CHUNK, remaining))
            if not chunk:
                return None  # the file is shorter now: replaced
            hasher.update(chunk)
            remaining -= len(chunk)
        if hasher.hexdigest() != saved.get("sha256"):
            return None
        return hasher


class _Lines:
    """A file's lines from where reading starts: counted, the complete ones hashed (for the
    checkpoint) and kept as received until `take()`. A line longer than MAX_LINE_BYTES is read
    through without being held: it is kept cut to that length, and comes out as a blank line
    whose number is in `too_long`."""

    def __init__(self, handle: Any, *, line_no: int, hasher: Any) -> None:
        self.handle = handle
        self.line_no = line_no  # the last line read
        self.complete = line_no  # the last line read whole (ending in a newline)
        self.offset = handle.tell()  # just after `complete`
        self.hasher = hasher
        self.too_long: list[int] = []
        self._kept: list[bytes] = []

    @property
    def kept(self) -> bool:
        return bool(self._kept)

    def take(self) -> bytes:
        data = b"".join(self._kept)
        self._kept = []
        return data

    def sha256(self) -> str:
        return self.hasher.hexdigest() if self.hasher is not None else ""

    def __iter__(self) -> Iterator[str]:
        readline = self.handle.readline
        while raw := readline(MAX_LINE_BYTES + 1):
            self.line_no += 1
            size = len(raw)
            if size > MAX_LINE_BYTES:
                self._kept.append(raw[:MAX_LINE_BYTES] + b"\n")
                self._hash(raw)
                while not raw.endswith(b"\n") and (raw := readline(_CHUNK)):
                    self._hash(raw)
                    size += len(raw)
                self.too_long.append(self.line_no)
                if raw.endswith(b"\n"):
                    self.offset += size
                    self.complete = self.line_no
                yield "\n"
                continue
            self._kept.append(raw)
            if raw.endswith(b"\n"):
                self._hash(raw)
                self.offset += size
                self.complete = self.line_no
            yield raw.decode("utf-8", errors="replace")

    def _hash(self, raw: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(raw)


def _items(
    lines: _Lines, *, layout: Layout, header: list[str], symbol: str | None, name: str
) -> Iterator[Item]:
    """The rows of `lines` as items, each located by file name and line."""
    columns = len(header)
    reader = csv.reader(lines)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = f"line {lines.line_no}: unreadable CSV: {exc}"
            yield Item(f"{name}:{lines.line_no}", lines.line_no, {"error": reason}, reason)
            continue
        while lines.too_long:
            number = lines.too_long.pop(0)
            reason = f"line {number} is longer than the {MAX_LINE_BYTES:,} bytes a row may have"
            yield Item(f"{name}:{number}", number, {"error": reason}, reason)
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
        yield Item(f"{name}:{lines.line_no}", lines.line_no, payload)
