"""Schema drift: how the fields a run received differ from what its source expects.

A provider changes its response format without notice: a field appears, disappears, or arrives
as a string where it was a number. Each API source declares the fields it expects (`Schema`);
a run tallies the fields of every item it saw (`FieldTally`, fed batch by batch so memory stays
flat) and `detect_drift` compares the two. Both are plain data and pure functions: the pipeline
decides what to do with the report (store it on the run, warn, fail on a removed required field).

Nested objects are compared by dotted path (`quotes.USD.price`), but only where the schema
describes their inside; other objects (`roi`, `tokens`) are compared as a whole.
A `null` or `""` value is a missing value, not a type change: providers send both for numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# How many added or missing fields a report lists; a provider that renames everything should
# not produce a report larger than the data.
_MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One expected field.

    `types` are JSON type names: string, number, boolean, object, array.
    `required`: the source cannot build an observation without it; its removal fails the run.
    `optional`: known to come and go (plan- or request-dependent), so its absence is not drift.
    """

    types: frozenset[str]
    required: bool = False
    optional: bool = False


def spec(*types: str, required: bool = False, optional: bool = False) -> FieldSpec:
    return FieldSpec(types=frozenset(types), required=required, optional=optional)


Schema = Mapping[str, FieldSpec]


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value ("null" for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


@dataclass
class FieldTally:
    """Counts, over many items, how often each field path appears and with which types."""

    items: int = 0
    present: Counter[str] = field(default_factory=Counter)
    types: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any], *, schema: Schema) -> None:
        self.items += 1
        self._walk(record, prefix="", schema=schema)

    def add_all(self, records: Iterable[Mapping[str, Any]], *, schema: Schema) -> None:
        for record in records:
            self.add(record, schema=schema)

    def _walk(self, record: Mapping[str, Any], *, prefix: str, schema: Schema) -> None:
        for key, value in record.items():
            path = f"{prefix}{key}"
            self.present[path] += 1
            kind = "null" if value == "" else json_type(value)
            self.types.setdefault(path, Counter())[kind] += 1
            if isinstance(value, dict) and _describes_inside(schema, path):
                self._walk(value, prefix=f"{path}.", schema=schema)


def _describes_inside(schema: Schema, path: str) -> bool:
    prefix = f"{path}."
    return any(name.startswith(prefix) for name in schema)


@dataclass(frozen=True)
class DriftReport:
    """What changed, with the share of items affected (0..1, four decimals)."""

    items: int
    added: list[dict[str, Any]]
    missing: list[dict[str, Any]]
    type_changes: list[dict[str, Any]]

    @property
    def has_drift(self) -> bool:
        return bool(self.added or self.missing or self.type_changes)

    @property
    def removed_required(self) -> list[str]:
        """Required fields absent from every item: the provider removed or renamed them."""
        return [
            entry["field"]
            for entry in self.missing
            if entry["required"] and entry["count"] == self.items
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "added": self.added,
            "missing": self.missing,
            "type_changes": self.type_changes,
        }

    def summary(self) -> str:
        """One line for a log or an error message."""
        return summarize(self.as_json())


def detect_drift(*, tally: FieldTally, schema: Schema) -> DriftReport:
    """Compare what was received with what the schema expects."""
    items = tally.items

    def share(count: int) -> float:
        return round(count / items, 4) if items else 0.0

    added = [
        {"field": path, "count": count, "share": share(count)}
        for path, count in sorted(tally.present.items())
        if path not in schema
    ][:_MAX_LISTED]
    missing = []
    type_changes = []
    for path, expected in schema.items():
        if not _parent_seen(path, tally):
            continue  # the parent object is missing itself (or null): reported once, there
        absent = _parent_count(path, tally) - tally.present[path]
        if absent and not expected.optional:
            missing.append(
                {
                    "field": path,
                    "count": absent,
                    "share": share(absent),
                    "required": expected.required,
                }
            )
        seen = tally.types.get(path, Counter())
        unexpected = {
            kind: count
            for kind, count in sorted(seen.items())
            if kind != "null" and kind not in expected.types
        }
        if unexpected:
            changed = sum(unexpected.values())
            type_changes.append(
                {
                    "field": path,
                    "expected": sorted(expected.types),
                    "seen": unexpected,
                    "count": changed,
                    "share": share(changed),
                }
            )
    return DriftReport(
        items=items, added=added, missing=missing[:_MAX_LISTED], type_changes=type_changes
    )


def _parent(path: str) -> str | None:
    return path.rpartition(".")[0] or None


def _parent_count(path: str, tally: FieldTally) -> int:
    """How many items could have had `path`: all of them, or those whose parent was an object."""
    parent = _parent(path)
    if parent is None:
        return tally.items
    return tally.types.get(parent, Counter())["object"]


def _parent_seen(path: str, tally: FieldTally) -> bool:
    parent = _parent(path)
    return parent is None or tally.types.get(parent, Counter())["object"] > 0


def summarize(report: Mapping[str, Any]) -> str:
    """A stored report as one line, for the log and errors."""
    headline, *changes = drift_lines(report)
    return f"{headline}: {'; '.join(changes)}" if changes else headline


def drift_lines(drift: Mapping[str, Any]) -> list[str]:
    """A run's schema drift report (`Run.drift`, written by `detect_drift`) as a headline and
    one line per change: what the admin and the log show."""
    if not drift:
        return ["not checked (this source has no expected schema)"]
    items = drift.get("items", 0)
    changes = [
        *(
            f"added: {entry['field']} in {entry['count']} of {items} items ({entry['share']:.0%})"
            for entry in drift.get("added", [])
        ),
        *(
            f"missing{' (required)' if entry.get('required') else ''}: {entry['field']} in "
            f"{entry['count']} of {items} items ({entry['share']:.0%})"
            for entry in drift.get("missing", [])
        ),
        *(
            f"type changed: {entry['field']} expected {'/'.join(entry['expected'])}, got "
            f"{', '.join(f'{kind} x{count}' for kind, count in entry['seen'].items())} "
            f"({entry['share']:.0%})"
            for entry in drift.get("type_changes", [])
        ),
    ]
    if not changes:
        return [f"no drift in {items} items"]
    return [f"{len(changes)} change(s) in {items} items", *changes]
