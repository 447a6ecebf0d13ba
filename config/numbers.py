"""How numbers read: exact strings without trailing zeros in JSON, rounded and grouped for people.

- `plain`: a Decimal as its shortest exact string (`3450.000000000000000000` -> `"3450"`).
- `ExactDecimalField`: DRF's DecimalField rendering `plain`, so the JSON API keeps every digit
  a provider sent and none it did not.
- `readable`: a Decimal for a page a person reads: a few significant digits, thousands
  separators, never scientific notation (`64,123.46`, `0.00001234`).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rest_framework import serializers


def plain(value: Decimal) -> str:
    """The exact value without trailing zeros, in positional notation."""
    if not value.is_finite():
        return str(value)
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


class ExactDecimalField(serializers.DecimalField):
    """A decimal rendered exactly as stored, without the column's trailing zeros."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", None)
        kwargs.setdefault("decimal_places", None)
        super().__init__(*args, **kwargs)

    def to_representation(self, value: Any) -> str | None:
        if value is None:
            return None
        return plain(value if isinstance(value, Decimal) else Decimal(str(value)))


def readable(value: Decimal | float | int | None, *, digits: int = 6, sign: bool = False) -> str:
    """`value` to `digits` significant digits, with thousands separators: amounts from 1 to a
    million keep two decimals (`3,450.00`), larger ones none, smaller ones their significant
    digits (`0.0000123457`); "-" for None."""
    if value is None:
        return "-"
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        return str(number)
    if number == 0:
        return "0"
    size = abs(number)
    places = digits - 1 - number.adjusted()  # adjusted(): the power of ten of the first digit
    if size >= 1_000_000:
        places = 0
    elif size >= 1:
        places = max(places, 2)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:,f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0")
        if size >= 1:
            fraction = fraction.ljust(2, "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return f"+{text}" if sign and number > 0 else text
