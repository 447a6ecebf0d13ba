"""Template filters of the console's pages (registered as the `console` library in settings)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.utils import timezone

from common.display import readable

register = template.Library()


@register.filter(name="readable")
def readable_filter(value: Decimal | float | None, digits: int = 6) -> str:
    """`64,123.46`, `0.0000123457`: significant digits and thousands separators."""
    return readable(value, digits=digits)


@register.filter
def percent(ratio: Decimal | float | None) -> str:
    """A ratio as a signed percentage: 0.01234 -> `+1.23 %`."""
    if ratio is None:
        return "-"
    value = Decimal(str(ratio)) * 100
    return f"{value:+,.2f} %"


@register.filter
def seconds(delta: timedelta | float | None) -> str:
    """A duration as people read it: `0.57 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`."""
    if delta is None:
        return "-"
    total = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    return duration_text(total)


def duration_text(total: float) -> str:
    if total < 10:
        return f"{total:.2f} s"
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(round(total), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


@register.filter
def ago(moment: datetime | None) -> str:
    """How long ago `moment` was: `3 min ago`, `5 days ago`."""
    if moment is None:
        return "never"
    return f"{duration_text(max(0.0, (timezone.now() - moment).total_seconds()))} ago"


@register.filter
def count(value: int | None) -> str:
    """A whole number with thousands separators: `2,160`."""
    return "-" if value is None else f"{int(value):,}"


@register.filter
def minutes(value: float | None) -> str:
    """A number of minutes as a duration: 120 -> `2 h 00 min`."""
    return "-" if value is None else duration_text(float(value) * 60)
