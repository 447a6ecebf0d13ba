"""Consume an iterator in a background thread, a bounded number of items ahead.

The pipeline reads and normalizes the next batch (Python work) while the database writes the
current one (psycopg2 releases the GIL while PostgreSQL works), so the two overlap.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


def read_ahead(iterator: Iterator[T], *, depth: int = 1) -> Iterator[T]:
    """Yield what `iterator` yields, produced up to `depth` items ahead in another thread.

    An exception in the producer is raised here, after the items produced before it, so the
    consumer sees exactly the sequence it would have seen without the thread. If the consumer
    stops early, the producer stops at its next item.
    """
    queue: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterator:
                if not put("item", item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put("error", exc)
        else:
            put("done", None)

    # The producer logs with the consumer's context (run id, source).
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(produce,), name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = queue.get(timeout=_POLL_SECONDS)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    raise RuntimeError("read-ahead thread ended without a result") from None
                continue
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
        thread.join()
