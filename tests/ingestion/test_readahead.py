"""The read-ahead thread hands over items, the end and errors in the producer's order."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from common.logs import bind_log_context, current_log_context
from ingestion.readahead import read_ahead


class Broken(Exception):
    pass


def test_items_then_the_producers_error_in_order():
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise Broken("third item unreadable")

    received = []
    with pytest.raises(Broken, match="third item unreadable"):
        for item in read_ahead(produce):
            received.append(item)
    assert received == [1, 2]


def test_a_consumer_that_stops_early_closes_the_producer_and_waits_for_it():
    closed = threading.Event()
    produced = []

    def produce() -> Iterator[int]:
        try:
            for number in range(1000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    for item in read_ahead(produce, depth=1):
        if item == 3:
            break
    # Joined before the loop returned: the producer is closed, and at most the queue's depth
    # plus the item in its hands were read beyond what was consumed.
    assert closed.is_set()
    assert len(produced) <= 6
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


def test_the_producer_runs_with_the_callers_log_context():
    seen = []

    def produce() -> Iterator[None]:
        seen.append(current_log_context())
        yield None

    with bind_log_context(run_id=7, source="csv"):
        list(read_ahead(produce))
    assert seen == [{"run_id": 7, "source": "csv"}]


def test_an_error_in_the_consumer_stops_the_producer():
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    with pytest.raises(Broken):
        for item in read_ahead(produce):
            if item == 1:
                raise Broken("the database write failed")
    assert closed.is_set()


def test_the_interpreters_switch_interval_is_restored():
    before = sys.getswitchinterval()
    seen = []

    def produce() -> Iterator[float]:
        yield sys.getswitchinterval()

    for interval in read_ahead(produce):
        seen.append(interval)
    assert seen[0] < before
    assert sys.getswitchinterval() == before


def test_the_switch_interval_is_restored_however_read_aheads_end_and_overlap():
    before = sys.getswitchinterval()

    def produce() -> Iterator[int]:
        yield from range(3)

    def failing() -> Iterator[int]:
        yield 1
        raise Broken("the provider hung up")

    first, second = read_ahead(produce), read_ahead(produce)
    next(first)
    next(second)
    assert sys.getswitchinterval() < before
    first.close()  # a consumer that stops early, while the other still reads
    assert sys.getswitchinterval() < before
    assert list(second) == [1, 2]
    assert sys.getswitchinterval() == before

    with pytest.raises(Broken):
        list(read_ahead(failing))
    assert sys.getswitchinterval() == before
