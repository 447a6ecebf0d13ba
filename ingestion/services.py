"""Which sources to run and how: the one place the `ingest` command, cron and the HTTP trigger
decide it.

- `enabled_sources()`: ETL_ENABLED_SOURCES, checked against the registry.
- `configuration_note(name)`: why a source cannot run here (CoinCap without a key), or None.
  A source with a note is skipped, not failed: cron would otherwise fail it every hour.
- `monitored_sources()`: enabled and configured, the sources /health holds to their schedule.
- `check_request(...)`: the options of a request checked before any run starts.
- `ingest_sources(names, ...)`: one run per source, one after another, yielding each outcome as
  it comes; a source that fails or is busy does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings

from ingestion.pipeline import ingest
from ingestion.reference import reference_index
from ingestion.sources import build_source, source_class, source_names
from ingestion.sources.base import SourceError
from prices.models import Asset
from runs.models import Run, RunAlreadyActive


class InvalidRequest(Exception):
    """What was asked for cannot be run as given (an option the source does not take, an
    unknown asset); nothing was started."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one source: its run, or why there is none (`skipped`: not configured;
    `busy`: another run of it is active; `error`: it could not start)."""

    source: str
    run: Run | None = None
    skipped: str = ""
    busy: str = ""
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error) or (self.run is not None and self.run.status == Run.Status.FAILED)


def enabled_sources() -> list[str]:
    """ETL_ENABLED_SOURCES, in order; `SourceError` if it names no source or an unknown one."""
    names = list(settings.ETL_ENABLED_SOURCES)
    known = source_names()
    if not names or any(name not in known for name in names):
        raise SourceError(
            f"ETL_ENABLED_SOURCES must list sources among {', '.join(known)}; "
            f"got {', '.join(names) or 'nothing'}"
        )
    return names


def configuration_note(name: str) -> str | None:
    """Why `name` cannot run as configured (a required key is not set), or None."""
    return build_source(name).missing_configuration()


def monitored_sources() -> list[str]:
    """The sources cron and `ingest --source all` run: enabled and configured."""
    known = source_names()
    return [
        name
        for name in settings.ETL_ENABLED_SOURCES
        if name in known and configuration_note(name) is None
    ]


def check_request(
    names: Sequence[str] | None,
    *,
    path: str | None = None,
    symbol: str | None = None,
    asset: str | None = None,
    fail_after: int | None = None,
    run_id: int | None = None,
) -> None:
    """Refuse, before any run starts, a request that cannot be carried out as given. `names`
    None is `--source all`: one run per enabled source, whichever they are, so it takes no
    option of one source (`--path`) and continues no single run."""
    if fail_after is not None and fail_after < 0:
        raise InvalidRequest("--fail-after must be zero (never) or a positive number")
    if run_id is not None and (names is None or len(names) != 1):
        raise InvalidRequest("--run-id continues one run: give one --source, not all")
    options = {"path": path, "symbol": symbol, "asset": asset}
    given = [name for name, value in options.items() if value]
    for source in [None] if names is None else names:
        runs_with = source_class(source).run_options if source else ()
        refused = [f"--{name}" for name in given if name not in runs_with]
        if refused:
            takers = [n for n in source_names() if set(given) <= set(source_class(n).run_options)]
            where = " or ".join(f"--source {n}" for n in takers) or "no source"
            raise InvalidRequest(f"{', '.join(refused)} only apply to {where}")
    if asset and not (
        asset in reference_index().slugs or Asset.objects.filter(slug=asset).exists()
    ):
        raise InvalidRequest(
            f"--asset {asset!r}: no asset has that slug (see /api/assets/ or the admin)"
        )


def ingest_sources(
    names: Sequence[str],
    *,
    trigger: str = Run.Trigger.CLI,
    path: str | None = None,
    symbol: str | None = None,
    asset: str | None = None,
    fail_after: int | None = None,
    run_id: int | None = None,
    on_batch: Callable[[Run], None] | None = None,
    skip_unconfigured: bool = True,
) -> Iterator[Outcome]:
    """Run each source of `names` once, in order, and yield what became of it.

    A source that is not configured is skipped (unless `skip_unconfigured` is off: a source
    asked for by name runs and fails saying what is missing), one already running is reported
    busy, one that cannot start is an error; none of them stops the rest. A caller that takes
    the options from a person checks them first (`check_request`).
    """
    for name in names:
        try:
            note = skip_unconfigured and configuration_note(name)
            if note:
                yield Outcome(name, skipped=note)
                continue
            run = ingest(
                source=name,
                trigger=trigger,
                path=path,
                symbol=symbol,
                asset=asset,
                fail_after=fail_after,
                on_batch=on_batch,
                run_id=run_id,
            )
        except RunAlreadyActive as exc:
            yield Outcome(name, busy=str(exc))
            continue
        except SourceError as exc:
            yield Outcome(name, error=str(exc))
            continue
        yield Outcome(name, run=run)
