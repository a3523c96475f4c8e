"""A threaded TCP proxy that a test puts between ClinRec and a real service, to break the link on purpose.

It listens on a free loopback port and forwards every connection to the upstream address. A test switches it,
at any moment, between the faults seen in production: `refuse()` (nothing listens: connections are refused and
the open ones reset, as when the service is down), `black_hole()` (connections are accepted and kept, but not a
byte goes through in either direction: a partition, a dropping firewall), `reset()` (every open connection is
reset with a TCP RST, once), `latency` (seconds added to every chunk forwarded), and `heal()` back to plain
forwarding. Nothing here knows about AMQP or Redis; the `tcp_proxy` fixture in conftest.py starts one per test
and stops it, with every thread and socket, afterwards.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how soon a thread notices a mode change or a stop
CHUNK = 65536


class Mode(enum.Enum):
    PASS = "pass"
    REFUSE = "refuse"
    BLACK_HOLE = "black-hole"


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: the client's socket, the upstream socket and a pump thread each way.

    The pumps own the sockets: the last one out closes both (with an RST if a reset was asked), so that when
    `close()` returns the peers have been told, not merely some time later.
    """

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self._reset = False
        self._running = 2
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True, name="tcp-proxy-up"),
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True, name="tcp-proxy-down"),
        ]
        for sock in (client, upstream):
            sock.settimeout(POLL_SECONDS)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self.closed.is_set():
                try:
                    data = source.recv(CHUNK)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                if self.proxy.mode is Mode.BLACK_HOLE:
                    self.proxy.bytes_dropped += len(data)
                    continue  # swallowed, as by a firewall that drops packets: the sender never learns
                if self.proxy.latency:
                    time.sleep(self.proxy.latency)
                if self.closed.is_set():
                    break
                try:
                    target.sendall(data)
                except OSError:
                    break
        finally:
            self.closed.set()
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                for sock in (self.client, self.upstream):
                    if self._reset:
                        _reset(sock)
                    else:
                        with contextlib.suppress(OSError):
                            sock.close()
                self.proxy._forget(self)

    def close(self, *, reset: bool = False) -> None:
        """Close both sides (with an RST if `reset`) and return once it is done."""
        self._reset = self._reset or reset
        self.closed.set()
        for thread in self.threads:
            if thread is not threading.current_thread() and thread.is_alive():
                thread.join(5)


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream`; see the module docstring for its faults."""

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.mode = Mode.PASS
        self.latency = 0.0
        self.connections_accepted = 0
        self.resets = 0
        self.bytes_dropped = 0
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._acceptor: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="tcp-proxy-accept")
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        if self._acceptor is not None:
            self._acceptor.join(5)
        for link in self._snapshot():
            link.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def url_for(self, url: str) -> str:
        """`url` (of the upstream service) with the proxy's address instead: where a client should connect."""
        parsed = urlsplit(url)
        credentials = parsed.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{self.host}:{self.port}" if credentials else f"{self.host}:{self.port}"
        return urlunsplit(parsed._replace(netloc=netloc))

    @property
    def open_connections(self) -> int:
        return len(self._snapshot())

    # --- faults -----------------------------------------------------------------------------------------------

    def heal(self) -> None:
        """Forward again; a refused proxy listens again on the same port. Latency is left as it is."""
        if self.mode is Mode.REFUSE:
            self._listen()
        self.mode = Mode.PASS

    def refuse(self) -> None:
        """Nothing listens any more (connect gets ECONNREFUSED) and every open connection is reset."""
        self.mode = Mode.REFUSE
        self._close_listener()
        self.reset()

    def black_hole(self) -> None:
        """Keep every connection, accept new ones, and let nothing through either way until `heal()`."""
        self.mode = Mode.BLACK_HOLE

    def reset(self) -> None:
        """Reset every open connection (both sides get a TCP RST); new connections are accepted as before."""
        for link in self._snapshot():
            link.close(reset=True)
            self.resets += 1

    # --- internals --------------------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 2
        while True:
            try:
                listener.bind((self.host, self.port))  # port 0 the first time: a free one, kept from then on
                break
            except OSError:  # the previous listener may take a moment to let the port go
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(POLL_SECONDS)
        listener.listen(64)
        listener.settimeout(POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener = listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() stops a listening socket at once, even while the accept thread is polling it; close()
            # alone would leave it listening until that poll returns.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                listener.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(POLL_SECONDS)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed under us (refuse or stop)
                time.sleep(POLL_SECONDS)
                continue
            self.connections_accepted += 1
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError as exc:
                logger.warning("tcp proxy: upstream %s unreachable: %r", self.upstream, exc)
                _reset(client)
                continue
            link = _Link(self, client, upstream)
            with self._lock:
                self._links.add(link)
            link.start()

    def _snapshot(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
