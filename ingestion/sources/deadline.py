"""The total deadline of one HTTP attempt, for the provider client (ingestion/sources/http.py).

A socket timeout bounds one wait for the network, so a server that sends a byte every few
seconds (headers or body) keeps a request alive for as long as it likes. Each attempt therefore
runs under a watchdog: at the deadline it shuts down the sockets the attempt is using, which
ends any blocking read at once, and the attempt is reported as past its deadline. The
connections note themselves in a thread-local set when they send a request, because a pooled
keep-alive connection is reused without connecting again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_attempt = threading.local()


class PastDeadline(Exception):
    """An attempt was cut off at its total deadline."""


class Watchdog:
    """Cuts the connections of one attempt when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._connections: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        _attempt.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _attempt.watchdog = None

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.add(connection)
            fired = self.fired
        if fired:
            _cut(connection)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            connections = list(self._connections)
        for connection in connections:
            _cut(connection)


def _cut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        # The plain socket's shutdown, also under TLS: it wakes a read blocked in another
        # thread without touching the TLS object that read is using. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watched(connection: HTTPConnection) -> None:
    watchdog = getattr(_attempt, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections a `Watchdog` can cut."""

    _pools = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pools)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if getattr(manager, "pool_classes_by_scheme", None) is not None:
            manager.pool_classes_by_scheme = dict(self._pools)
        return manager
