"""What the ingestion commands share: exit codes, the one-line run summary, progress output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

from runs.models import Run

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ALREADY_RUNNING = 3

# (done, total) of a run whose work is counted in advance, e.g. a backfill's slices.
Counter = Callable[[], tuple[int, int]]


def summary(run: Run) -> str:
    duration = f"{run.duration.total_seconds():.1f}s" if run.duration else "-"
    line = (
        f"run {run.pk} {run.source} {run.status}: read {run.records_read}, "
        f"inserted {run.records_inserted}, updated {run.records_updated}, "
        f"unchanged {run.records_unchanged}, rejected {run.records_rejected} in {duration}"
    )
    return f"{line}; error: {run.error}" if run.error else line


@contextmanager
def progress(stdout: Any, *, verbosity: int, unit: str = " records") -> Iterator[Progress]:
    """A run's `on_batch`: a progress bar on a terminal, a plain line a batch otherwise (cron,
    logs), nothing at verbosity 0. Given a `counter` (`Progress.count`), the bar counts that
    work instead, with its total and an ETA."""
    shown = Progress(stdout, verbosity=verbosity, unit=unit, tty=sys.stdout.isatty())
    try:
        yield shown
    finally:
        shown.close()


class Progress:
    def __init__(self, stdout: Any, *, verbosity: int, unit: str, tty: bool) -> None:
        self.stdout = stdout
        self.verbosity = verbosity
        self.unit = unit
        self.tty = tty and verbosity > 0
        self.counter: Counter | None = None
        self.what = ""
        self.bar: tqdm[Any] | None = None

    def count(self, counter: Counter, *, what: str) -> None:
        """Count `what` (slices) by `counter` from now on."""
        self.counter, self.what = counter, what

    def __call__(self, run: Run) -> None:
        done, total = self.counter() if self.counter else (run.records_read, None)
        if self.tty:
            if self.bar is None:
                unit = f" {self.what}" if self.counter else self.unit
                self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True)
            if self.counter:
                self.bar.set_postfix_str(f"{run.records_read}{self.unit}", refresh=False)
            self.bar.update(done - self.bar.n)
        elif self.verbosity > 0:
            line = (
                f"run {run.pk} {run.source}: read {run.records_read}, "
                f"rejected {run.records_rejected}"
            )
            if total is not None:
                line += f"; {done} of {total} {self.what}"
            self.stdout.write(line)

    def close(self) -> None:
        """End the bar (before a run's summary is printed); the next run starts a new one."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
