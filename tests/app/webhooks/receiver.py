"""A real HTTP receiver on 127.0.0.1 for the webhook tests: it can be down, slow, answer 500, or
take deliveries (HTTP/1.1, kept-alive connections), and records what it was sent."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    answered: int


@dataclass
class Receiver:
    """``mode``: ``ok`` (204), ``error`` (500), ``slow`` (answers 200 after ``delay`` seconds).
    :meth:`stop` takes it down (connections refused) and :meth:`start` brings it back on the
    same port."""

    mode: str = "ok"
    delay: float = 2.0
    received: list[Received] = field(default_factory=list)
    port: int = 0
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def reserve_port(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.append(self.request)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mode = receiver.mode
                if mode == "slow":
                    time.sleep(receiver.delay)
                status = {"ok": 204, "error": 500, "slow": 200}[mode]
                with receiver.lock:
                    receiver.received.append(Received(body, dict(self.headers.items()), status))
                answer = b"" if status == 204 else b"oops" if status == 500 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        if not self.port:
            self.reserve_port()
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:  # kept-alive connections too: down is down
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until it has received ``count`` requests (a slow answer is recorded when sent)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def taken(self) -> list[Received]:
        """What it accepted (2xx answers)."""
        with self.lock:
            return [item for item in self.received if 200 <= item.answered < 300]
