"""How the console shows things to a person: numbers rounded and grouped (`readable`), status
badges, key/value tables (durations read through the `seconds` filter of common.console_tags).

- `readable`: a Decimal for a page a person reads: a few significant digits, thousands
  separators, never scientific notation (`64,123.46`, `0.00001234`).
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def badge(kind: str, text: str) -> SafeString:
    """A coloured pill; `kind` picks the colour (console.css: badge-run-failed...)."""
    return format_html('<span class="badge badge-{}">{}</span>', kind, text)


def number(value: Decimal | float | int | None, digits: int = 8) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return readable(value, digits=digits)


def kv_table(data: Any) -> SafeString | str:
    """A JSON object as a two-column table (nested values as compact JSON); "-" when empty."""
    if not data:
        return "-"
    if not isinstance(data, dict):
        return format_html("<code>{}</code>", json.dumps(data, default=str))
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td></tr>",
        (
            (key, value if isinstance(value, str | int | float) else json.dumps(value, default=str))
            for key, value in data.items()
        ),
    )
    return format_html('<table class="kv">{}</table>', rows)


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
