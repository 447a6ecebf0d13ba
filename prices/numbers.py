"""How prices read in JSON and CSV: exact strings without trailing zeros (for people, rounded and
grouped: `common.display.readable`).

- `plain`: a Decimal as its shortest exact string (`3450.000000000000000000` -> `"3450"`).
- `ExactDecimalField`: DRF's DecimalField rendering `plain`, so the JSON API keeps every digit
  a provider sent and none it did not.
"""

from __future__ import annotations

from decimal import Decimal
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

    # DRF's DecimalField never renders None (a serializer renders a null without asking its
    # field); this one takes None too, and gives it back.
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        if value is None:
            return None
        return plain(value if isinstance(value, Decimal) else Decimal(str(value)))
