"""The one interface every source implements, and the one error type sources raise."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ingestion.normalize import Observation
from runs.drift import Schema


class SourceError(Exception):
    """A source could not deliver data. `retryable` says whether trying again later can help
    (a rate limit or an outage) or not (a bad key, an unreadable file)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(slots=True)
class Item:
    """One record as received: where it is (a provider id, or file and line), its place in its
    unit (file line or index in the page), and its content."""

    location: str
    position: int
    payload: dict[str, Any]
    # Set when the source already knows the item cannot be loaded (a second, different row for
    # a provider id in one page; a CSV line too long to parse): it is rejected with this reason.
    rejection: str = ""


@dataclass(slots=True)
class Unit:
    """One unit fetched, as received: an API response page or a chunk of a CSV file, the items
    read from it, and the checkpoint cursor that belongs after it."""

    kind: str  # ingestion.models.RawUnit.Kind
    data: bytes
    media_type: str
    items: list[Item]
    cursor: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    file_name: str = ""
    byte_start: int | None = None
    byte_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None

    def content_hash(self) -> str:
        """Of the bytes and of what reading them depends on: the same bytes read another way
        (a Yahoo chunk under another symbol) are another unit."""
        digest = hashlib.sha256(json.dumps(self.context, sort_keys=True).encode())
        digest.update(b"\x1f")
        digest.update(self.data)
        return digest.hexdigest()


class Source(ABC):
    """A provider of raw data.

    `fetch(cursor, batch_size=...)` yields units lazily (a page, or a chunk of at most
    `batch_size` rows), each with the checkpoint cursor that makes the next run continue right
    after it; the pipeline commits a unit's data and its cursor in one transaction. `replay`
    reads the items of a stored unit again, the same way, for `renormalize`.
    """

    name: ClassVar[str]
    # The column of data/reference_assets.csv that holds this source's provider ids; None for a
    # source without provider ids (files), whose rows are matched by symbol and name.
    reference_column: ClassVar[str | None] = None
    # What one run may be given beyond the settings (`ingest --path` for files).
    run_options: ClassVar[tuple[str, ...]] = ()
    # The canonical asset (slug) every item of this run belongs to, when an operator said so
    # (`ingest --source csv --asset bitcoin`); None lets identity resolution decide.
    asset_slug: str | None = None
    # The fields each item should have, for schema drift checks; None: not checked (CSV rows
    # are checked by their header instead).
    expected_schema: ClassVar[Schema | None] = None

    @classmethod
    @abstractmethod
    def from_settings(cls, **options: Any) -> Self:
        """The source as the settings configure it; `options` are among `run_options`."""

    @property
    def checkpoint_name(self) -> str:
        """The checkpoint this source's runs move: its own name (a backfill keeps another)."""
        return self.name

    def failures(self) -> list[str]:
        """Requests that failed on their own during the last fetch while the rest went on
        (a backfill's slice beyond the plan's reach), each in a line for the run's error."""
        return []

    @abstractmethod
    def fetch(self, cursor: dict[str, Any], *, batch_size: int) -> Iterator[Unit]: ...

    @abstractmethod
    def replay(
        self, *, data: bytes, context: dict[str, Any], line_start: int | None, file_name: str
    ) -> list[Item]:
        """The items of a stored unit, read as `fetch` read them."""

    @abstractmethod
    def normalize(self, payload: dict[str, Any]) -> Observation:
        """Turn one stored payload into an observation, or raise `Rejected`."""

    def describe(self) -> dict[str, Any]:
        """What this source reads, for the run's options (never secrets)."""
        return {}

    def schema_record(self, payload: dict[str, Any]) -> Mapping[str, Any]:
        """The part of a stored payload that `expected_schema` describes."""
        return payload

    def missing_configuration(self) -> str | None:
        """Why this source cannot run at all as configured (a required key is not set), or
        None. `ingest --source all` skips such a source with this note instead of failing."""
        return None
