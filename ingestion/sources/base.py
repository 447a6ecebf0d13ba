"""The one interface every source implements, and the one error type sources raise."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ingestion.drift import Schema
from ingestion.normalize import Observation


class SourceError(Exception):
    """A source could not deliver data. `retryable` says whether trying again later can help
    (a rate limit or an outage) or not (a bad key, an unreadable file)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Item:
    """One record as received, with where it came from (a provider id, or file and line)."""

    external_id: str
    payload: dict[str, Any]
    content_hash: str
    # Set when the source already knows the item cannot be loaded (a second, different row for
    # a provider id in one page; a CSV line too long to parse): it is kept and rejected with it.
    rejection: str = ""


def hash_payload(payload: Any) -> str:
    """A stable hash of a JSON-able payload: key order and whitespace do not matter."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class Source(ABC):
    """A provider of raw records.

    `fetch(cursor)` yields items lazily; while it is paused after an item, `position()` is the
    checkpoint cursor that makes the next run continue right after that item. The pipeline
    commits a batch and that cursor in one transaction.
    """

    name: ClassVar[str]
    # The canonical asset (slug) every item of this run belongs to, when an operator said so
    # (`ingest --source csv --asset bitcoin`); None lets identity resolution decide.
    asset_slug: str | None = None
    # The fields each item should have, for schema drift checks; None: not checked (CSV rows
    # are checked by their header instead).
    expected_schema: ClassVar[Schema | None] = None

    @abstractmethod
    def fetch(self, cursor: dict[str, Any]) -> Iterator[Item]: ...

    @abstractmethod
    def position(self) -> dict[str, Any]: ...

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
