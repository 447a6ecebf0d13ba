"""The one interface every source implements, and the one error type sources raise."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

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
