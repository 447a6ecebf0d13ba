"""HTML pieces the admin pages share: status badges, key/value tables, readable numbers
(durations read through the `seconds` filter of config.console_tags)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.numbers import readable


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
