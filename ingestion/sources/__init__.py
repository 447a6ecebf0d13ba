"""The sources, built from their registry: `settings.ETL_SOURCES` maps each name to its class.

The registry lives in settings (dotted paths, as Django names middleware and cache backends)
so that every app can read the names without importing ingestion: prices and runs filter by
source. What a source needs to know about itself is on its class (`Source`): how to read its
settings block (`from_settings`), whether it is configured (`missing_configuration`), its
column in the reference mapping (`reference_column`) and the options a run takes
(`run_options`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from ingestion.sources.base import Source, SourceError


def source_names() -> tuple[str, ...]:
    """Every registered source, in registry order."""
    return tuple(settings.ETL_SOURCES)


def source_class(name: str) -> type[Source]:
    try:
        path = settings.ETL_SOURCES[name]
    except KeyError:
        known = ", ".join(source_names())
        raise SourceError(f"unknown source {name!r}; choose one of: {known}") from None
    cls: type[Source] = import_string(path)
    return cls


def build_source(name: str, **options: Any) -> Source:
    """The source called `name`, configured from settings and the run's `options` (`path`,
    `symbol`, `asset` of a file source); options left None or empty are not given. An option
    the source does not take is refused."""
    cls = source_class(name)
    given = {key: value for key, value in options.items() if value not in (None, "")}
    unknown = sorted(set(given) - set(cls.run_options))
    if unknown:
        raise SourceError(f"{name} takes no {', '.join(unknown)}")
    return cls.from_settings(**given)
