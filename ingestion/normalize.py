"""Turning received values into exact, typed ones: `Decimal` numbers and aware UTC datetimes.

Every function either returns a clean value or raises `Rejected` with a reason a person can act
on. Nothing here guesses: an ambiguous date or a locale-formatted number is refused.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

MISSING_MARKERS = frozenset({"", "null", "none", "nan", "n/a", "-"})

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_EPOCH_MS_THRESHOLD = 10**11
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_EPOCH = re.compile(r"^\d{9,14}(\.\d+)?$")


class Rejected(Exception):
    """A record that cannot be loaded; the message says why."""


@dataclass(slots=True)
class Observation:
    """One normalized price observation, before its canonical asset is known.

    `identity` is the provider's id for the asset (what `AssetIdentifier.external_id` holds).
    """

    identity: str
    symbol: str
    name: str
    observed_at: datetime
    price_usd: Decimal
    market_cap_usd: Decimal | None = None
    volume_24h_usd: Decimal | None = None
    percent_change_24h: Decimal | None = None
    # A bar's open, high and low (its close is `price_usd`) and length; a snapshot has none.
    open_usd: Decimal | None = None
    high_usd: Decimal | None = None
    low_usd: Decimal | None = None
    interval: str = ""


def fit(
    value: Decimal,
    *,
    field: str,
    max_digits: int,
    places: int,
    significant: int | None = None,
) -> Decimal:
    """Round to what the column keeps: its decimal places and, where the database stores
    decimals as floats (SQLite), its significant digits. Refuse a number too large for it."""
    if value.adjusted() >= max_digits - places:
        raise Rejected(f"{field} {value} is too large to store")
    if significant is not None:
        value = _significant_context(significant).plus(value)
    return value.quantize(_quantum(places), context=_EXACT)


# Wide enough for any column here: quantize must not round away integer digits.
_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)


@functools.cache
def _significant_context(digits: int) -> Context:
    return Context(prec=digits, rounding=ROUND_HALF_EVEN)


@functools.cache
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in MISSING_MARKERS)


def to_decimal(value: Any, *, field: str, required: bool = False) -> Decimal | None:
    """Parse a JSON or CSV number exactly: strings, ints, floats and exponent notation."""
    if isinstance(value, str):
        # The common case first: a plain number. Anything else takes the careful path below.
        try:
            number = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    if is_missing(value):
        if required:
            raise Rejected(f"missing {field}")
        return None
    if isinstance(value, bool):
        raise Rejected(f"{field} is a boolean, not a number")
    if isinstance(value, float):
        # repr() of a float is the shortest string that round-trips: 0.1 stays 0.1.
        value = repr(value)
    text = str(value).strip()
    if text.count(".") > 1:
        raise Rejected(
            f"{field} {text!r} has several '.': locale thousands separators, not a number"
        )
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise Rejected(f"{field} {text!r} is not a number") from None
    if not number.is_finite():
        raise Rejected(f"{field} {text!r} is not a finite number")
    return number


def to_positive_price(value: Any, *, field: str) -> Decimal:
    price = to_decimal(value, field=field, required=True)
    assert price is not None
    if price <= 0:
        raise Rejected(f"{field} {price} is not a positive price")
    return price


def to_utc(value: Any, *, field: str) -> datetime:
    """Parse ISO 8601 (with or without milliseconds, 'Z' or an offset; a bare date is 00:00 UTC)
    or a unix timestamp in seconds or milliseconds, to an aware UTC datetime.

    Day-first dates such as 29-04-13 are refused: they cannot be told from year-first ones.
    """
    if is_missing(value):
        raise Rejected(f"missing {field}")
    if isinstance(value, bool):
        raise Rejected(f"{field} is a boolean, not a time")
    if isinstance(value, int | float):
        return _from_epoch(value, field=field)
    text = str(value).strip()
    if _EPOCH.match(text):
        return _from_epoch(float(text) if "." in text else int(text), field=field)
    if not _ISO_DATE.match(text):
        raise Rejected(
            f"{field} {text!r} is not a date this system reads "
            "(YYYY-MM-DD with optional time, or a unix timestamp)"
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(f"{field} {text!r} is not a valid date") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is in year 0 in UTC, which datetime cannot hold.
        raise Rejected(f"{field} {text!r} is out of range once converted to UTC") from None


def _from_epoch(value: float, *, field: str) -> datetime:
    seconds = value / 1000 if abs(value) >= _EPOCH_MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected(f"{field} {value!r} is out of range for a unix timestamp") from None
