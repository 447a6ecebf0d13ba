"""Produce the next items in a thread while the caller consumes the current one.

The pipeline reads and normalizes batch N+1 (pure Python) while the database writes batch N.
The database driver releases the GIL while it waits on the server, so the two overlap even on
one interpreter. Items, the end, and any exception reach the consumer in the order the producer
met them, so a batch that failed to read is raised only after every batch before it was handed
over, exactly as without the thread.
"""

from __future__ import annotations

import contextvars
import queue
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from typing import TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"
SWITCH_INTERVAL = 0.0005  # seconds


def read_ahead(produce: Callable[[], Generator[T, None, None]], *, depth: int = 1) -> Iterator[T]:
    """Iterate `produce()` in a thread, at most `depth` items ahead of the consumer.

    The thread runs in a copy of the caller's context (log fields stay bound). When the consumer
    stops early, the producer is closed after its current item and the thread is joined before
    this generator returns, so nothing it touches is still changing afterwards.
    """
    handoff: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stopping = threading.Event()

    def put(message: tuple[str, object]) -> bool:
        while not stopping.is_set():
            try:
                handoff.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            with closing(produce()) as items:
                for item in items:
                    if not put((_ITEM, item)):
                        return
        except BaseException as exc:  # handed to the consumer, which raises it
            put((_ERROR, exc))
        else:
            put((_END, None))

    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(work,), name="read-ahead", daemon=True
    )
    with _short_switch_interval():
        try:
            thread.start()
            while True:
                kind, value = handoff.get()
                if kind == _ITEM:
                    yield value  # type: ignore[misc]
                elif kind == _ERROR:
                    assert isinstance(value, BaseException)
                    raise value
                else:
                    return
        finally:
            stopping.set()
            if thread.ident is not None:  # started
                thread.join()


_switching = threading.Lock()
_active = 0
_saved_interval = 0.0


@contextmanager
def _short_switch_interval() -> Iterator[None]:
    """While any read-ahead runs, the interpreter switches threads every `SWITCH_INTERVAL`.

    A thread returning from the database driver waits for the GIL until the producer's switch
    interval runs out (5 ms by default), once per database call. The interval is process-wide:
    the first read-ahead to start sets it and the last to end restores what it was, on every
    way out (end, error, a consumer that stops early), however they overlap.
    """
    global _active, _saved_interval
    with _switching:
        if _active == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, SWITCH_INTERVAL))
        _active += 1
    try:
        yield
    finally:
        with _switching:
            _active -= 1
            if _active == 0:
                sys.setswitchinterval(_saved_interval)
