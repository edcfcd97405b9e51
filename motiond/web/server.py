"""The HTTP server with a bounded appetite for connections, so the web port can never take the
file descriptors the recorder needs.

Tornado's own accept loop accepts without limit, and when ``accept()`` fails with EMFILE it
logs a traceback on every turn of the loop while the socket stays readable. ``ConnectionGuard``
accepts instead:

- at most ``web.max_connections`` open connections (live views included), and at most
  ``web.max_connections_per_client`` from one address (a trusted proxy counts only toward the
  total); beyond, the connection is answered 503 (429 for one client's excess) and closed;
- never into the reserve: a connection whose descriptor number lands in the top
  ``FD_RESERVE`` of the open-files limit is closed at once (descriptors are handed out lowest
  first, so such a number means the process is nearly out), and the total cap is lowered to fit
  the limit at start;
- when ``accept()`` fails (EMFILE/ENFILE above all) it stops accepting for ``ACCEPT_BACKOFF``
  seconds;
- each kind of refusal is logged once a minute at most, with a count.

A request head must arrive within ``web.idle_timeout`` (Tornado's header timeout, which is
also how long an idle keep-alive connection is kept).

IOLoop thread only.
"""

from __future__ import annotations

import ipaddress
import logging
import resource
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.netutil
import tornado.web

from motiond.config.web import WebConfig, proxy_networks

logger = logging.getLogger(__name__)

# Descriptors the web side never takes: the recorder's clip, sidecar and snapshot files, the
# cameras' sockets, uploads, hooks, the journal.
FD_RESERVE = 128
# Each connection may hold a second descriptor (a clip file it serves).
FDS_PER_CONNECTION = 2
ACCEPT_BACKOFF = 0.5  # seconds without accept() after EMFILE/ENFILE
ACCEPT_BATCH = 64  # connections accepted per turn of the IOLoop
REFUSAL_LOG_INTERVAL = 60.0
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: 44\r\n\r\n"
    b'{"error": "too many connections; try later"}'
)
_CLIENT_BUSY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: 55\r\n\r\n"
    b'{"error": "too many connections from you; close some"}'
)


def open_files_limit() -> int:
    """The process's soft limit on open descriptors (RLIMIT_NOFILE)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, files_limit: int) -> int:
    """``web.max_connections``, lowered so the web side's descriptors stay out of the reserve."""
    fitting = (files_limit - FD_RESERVE) // FDS_PER_CONNECTION
    return max(1, min(configured, fitting))


class RateLimitedLog:
    """A warning logged at most once per ``interval``, with how often it happened since."""

    def __init__(self, text: str, interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self.text = text
        self.interval = interval
        self._last = -interval
        self._suppressed = 0

    def __call__(self, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        logger.warning("%s%s", self.text % args, _since(self._suppressed))
        self._last = now
        self._suppressed = 0


def _since(suppressed: int) -> str:
    return f" (and {suppressed} more times since)" if suppressed else ""


class _CountedStream(tornado.iostream.IOStream):
    """An IOStream that says when its socket closes (the connection counts)."""

    def __init__(self, sock: socket.socket, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(sock, **kwargs)
        self._release: Callable[[], None] | None = release

    def close_fd(self) -> None:
        try:
            super().close_fd()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _CountedSSLStream(tornado.iostream.SSLIOStream):
    def __init__(self, sock: socket.socket, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(sock, **kwargs)
        self._release: Callable[[], None] | None = release

    def close_fd(self) -> None:
        try:
            super().close_fd()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ConnectionGuard:
    """The accept loop in front of an HTTPServer (see the module docstring): the server is
    given each admitted connection's stream and never listens itself."""

    def __init__(
        self,
        server: tornado.httpserver.HTTPServer,
        web: WebConfig,
        ssl_context: ssl.SSLContext | None,
        files_limit: int | None = None,
    ) -> None:
        self.server = server
        self.files_limit = files_limit or open_files_limit()
        self.max_connections = connection_cap(web.max_connections, self.files_limit)
        self.max_per_client = web.max_connections_per_client
        self.proxies = proxy_networks(web.trusted_proxies)
        self.open_connections = 0
        self.per_client: Counter[str] = Counter()
        self.refused = 0  # connections closed unserved since start
        self._ssl_context = ssl_context
        self._listening: list[socket.socket] = []
        self._log_full = RateLimitedLog("web: %d connections open (web.max_connections); refusing")
        self._log_client = RateLimitedLog(
            "web: %s has %d connections open (web.max_connections_per_client); refusing"
        )
        self._log_reserve = RateLimitedLog(
            "web: open files near the limit (%d); refusing a connection to keep %d in reserve "
            "for recording"
        )
        self._log_emfile = RateLimitedLog(
            "web: cannot accept a connection (%s); pausing accept() for %.1f s"
        )
        if self.max_connections < web.max_connections:
            logger.warning(
                "web: max_connections lowered from %d to %d to fit the open-files limit %d "
                "(raise LimitNOFILE)",
                web.max_connections,
                self.max_connections,
                self.files_limit,
            )

    # -- accepting ----------------------------------------------------------------------------

    def add_sockets(self, sockets: Sequence[socket.socket]) -> None:
        loop = tornado.ioloop.IOLoop.current()
        for sock in sockets:
            sock.setblocking(False)
            self._listening.append(sock)
            loop.add_handler(sock, self._on_readable, tornado.ioloop.IOLoop.READ)

    def stop(self) -> None:
        loop = tornado.ioloop.IOLoop.current()
        for sock in self._listening:
            loop.remove_handler(sock)
            sock.close()
        self._listening = []

    def _on_readable(self, sock: socket.socket, _events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of descriptors (or anything else): never spin
                self._pause(sock, exc)
                return
            self._admit(connection, address)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        """Out of descriptors: stop watching the socket for a while (no busy loop)."""
        self._log_emfile(exc.strerror or exc, ACCEPT_BACKOFF)
        loop = tornado.ioloop.IOLoop.current()
        loop.remove_handler(sock)

        def resume() -> None:
            if sock in self._listening:
                loop.add_handler(sock, self._on_readable, tornado.ioloop.IOLoop.READ)

        loop.call_later(ACCEPT_BACKOFF, resume)

    def _admit(self, connection: socket.socket, address: Any) -> None:
        client = str(address[0]) if isinstance(address, tuple) else ""
        refusal = self._refusal(connection, client)
        if refusal is not None:
            self.refused += 1
            _refuse(connection, refusal)
            return
        self.open_connections += 1
        counted = self._counts_per_client(client)
        if counted:
            self.per_client[client] += 1

        def release() -> None:
            self.open_connections -= 1
            if counted:
                self.per_client[client] -= 1
                if self.per_client[client] <= 0:
                    del self.per_client[client]

        self._serve(connection, address, release)

    def _refusal(self, connection: socket.socket, client: str) -> bytes | None:
        """What to answer a connection refused (None: serve it)."""
        if connection.fileno() >= self.files_limit - FD_RESERVE:
            self._log_reserve(self.files_limit, FD_RESERVE)
            return _BUSY
        if self.open_connections >= self.max_connections:
            self._log_full(self.open_connections)
            return _BUSY
        if self._counts_per_client(client) and self.per_client[client] >= self.max_per_client:
            self._log_client(client, self.per_client[client])
            return _CLIENT_BUSY
        return None

    def _counts_per_client(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return True
        return not any(address in network for network in self.proxies)

    def _serve(self, connection: socket.socket, address: Any, release: Callable[[], None]) -> None:
        """Tornado's TCPServer._handle_connection, with a stream that counts."""
        options = {
            "max_buffer_size": self.server.max_buffer_size,
            "read_chunk_size": self.server.read_chunk_size,
        }
        try:
            stream: tornado.iostream.IOStream
            if self._ssl_context is not None:
                wrapped = self._ssl_context.wrap_socket(
                    connection, server_side=True, do_handshake_on_connect=False
                )
                stream = _CountedSSLStream(wrapped, release, **options)
            else:
                stream = _CountedStream(connection, release, **options)
        except OSError:  # closed already (a port scan), or TLS refused before the handshake
            connection.close()
            release()
            return
        self.server.handle_stream(stream, address)


def _refuse(connection: socket.socket, answer: bytes) -> None:
    """Answer (if the socket takes it at once) and close, never waiting."""
    try:
        connection.setblocking(False)
        connection.send(answer)
    except OSError:
        pass
    finally:
        connection.close()


def listen(
    app: tornado.web.Application,
    web: WebConfig,
    ssl_context: ssl.SSLContext | None,
    max_body_size: int,
) -> tuple[tornado.httpserver.HTTPServer, ConnectionGuard, int]:
    """Bind ``web.listen``:``web.port`` and serve ``app`` behind a ``ConnectionGuard``;
    returns the server, its guard and the port."""
    server = tornado.httpserver.HTTPServer(
        app,
        xheaders=False,  # X-Forwarded-* are honoured only from web.trusted_proxies
        ssl_options=ssl_context,
        max_body_size=max_body_size,
        max_header_size=16 * 1024,
        idle_connection_timeout=web.idle_timeout,
        body_timeout=max(web.idle_timeout, 10.0),
    )
    guard = ConnectionGuard(server, web, ssl_context)
    sockets = tornado.netutil.bind_sockets(web.port, web.listen)
    guard.add_sockets(sockets)
    return server, guard, int(sockets[0].getsockname()[1])
