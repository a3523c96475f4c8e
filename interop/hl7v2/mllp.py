"""MLLP (the Minimal Lower Layer Protocol): HL7 v2 messages framed <VT> message <FS><CR> over TCP.

`send` delivers one message and waits for its acknowledgement; `MllpListener` is a small threaded server that
hands each message to a responder and sends back what it answers (or nothing: silence), used by
`manage.py hl7_listen` and by the tests.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\x0d"
ENCODING = "utf-8"


class MllpError(Exception):
    """The link failed: no connection, no answer within the timeout, or a broken frame. Worth a retry."""


def frame(message: str) -> bytes:
    return START + message.encode(ENCODING) + END


def read_frame(stream: socket.socket, buffer: bytearray) -> str | None:
    """The next framed message from `stream` (bytes beyond it stay in `buffer`); None at a clean end of stream."""
    while END not in buffer:
        chunk = stream.recv(65536)
        if not chunk:
            if buffer.strip():
                raise MllpError("connection closed in the middle of a message")
            return None
        buffer.extend(chunk)
    end = buffer.index(END)
    start = buffer.find(START)
    if start < 0 or start > end:
        raise MllpError("MLLP frame without its start block")
    payload = bytes(buffer[start + 1 : end])
    del buffer[: end + len(END)]
    return payload.decode(ENCODING)


def send(message: str, *, host: str, port: int, timeout: float) -> str:
    """Send one message and return the answer; MllpError if none comes within `timeout` seconds of silence."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(frame(message))
            answer = read_frame(connection, bytearray())
    except TimeoutError as exc:
        raise MllpError(f"no acknowledgement from {host}:{port} within {timeout:g} s") from exc
    except OSError as exc:
        raise MllpError(f"MLLP link to {host}:{port} failed: {exc}") from exc
    if answer is None:
        raise MllpError(f"{host}:{port} closed the connection without an acknowledgement")
    return answer


Responder = Callable[[str], "str | None"]  # a received message -> the answer to send, or None for silence


class _Handler(socketserver.BaseRequestHandler):
    server: MllpListener

    def handle(self) -> None:
        buffer = bytearray()
        while True:
            try:
                message = read_frame(self.request, buffer)
            except (MllpError, OSError) as exc:
                logger.warning("MLLP listener: %s", exc)
                return
            if message is None:
                return
            answer = self.server.responder(message)
            if answer is not None:
                self.request.sendall(frame(answer))


class MllpListener(socketserver.ThreadingTCPServer):
    """An MLLP server on (host, port) (port 0: a free one, see `port`); `responder` answers each message."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, responder: Responder) -> None:
        self.responder = responder
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> threading.Thread:
        """Serve in a background thread; stop with `shutdown()` then `server_close()`."""
        thread = threading.Thread(target=self.serve_forever, name="mllp-listener", daemon=True)
        thread.start()
        return thread
