"""``prorata serve``'s gunicorn worker: gthread's event loop with the requests handled on the loop's
own thread.

gunicorn's gthread worker with one thread (what ``prorata serve`` ran before) keeps connections
alive between requests, but hands every request from its event loop to a pool thread and back: a
future, a callback, a byte through a pipe to wake the loop, two GIL hand-offs and the socket
registered again in the poller. At the entitlement endpoint's 0.3–0.5 ms per request that hand-off
was a large share of the worker's time (``benchmarks/README.md``, "Entitlement endpoint"). This
worker runs the same loop and the same request handling (gunicorn's parser, WSGI environ, response,
keep-alive, ``--max-requests``, graceful stop on ``SIGTERM`` and restart on ``SIGHUP``), one request
at a time as before, without the pool:

- a new connection waits in the poller until it has sent something, so a client that connects and
  says nothing never holds the worker (gthread's pool thread waited up to 5 s for it);
- connections are shared out between the workers: all of them wait on one listening socket, and
  a worker that accepts several connections in a burst (a client opening its pool of four at
  once) would serve them all in turn while another worker idles, halving the throughput of those
  connections. After each accept a worker waits a millisecond per connection it holds (at most
  5 ms, :data:`ACCEPT_PAUSE_SECONDS`) before it accepts another, so that an idle worker takes the
  next one;
- the heartbeat that tells the master the worker is alive (a ``utime`` system call) is written at
  most once a second instead of once per loop turn; the master's ``--timeout`` counts in tens of
  seconds.

Written against gunicorn 27.0 (pinned in ``requirements.lock``); ``tests/app/common/
test_webworker.py`` serves real requests through it and fails when gunicorn's worker internals it
relies on (``enqueue_req``, ``finish_request``, ``handle``, ``accept``, ``pending_conns``) change.
"""

from __future__ import annotations

import errno
import selectors
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

#: Seconds between two heartbeats to the master (its ``--timeout`` is far longer).
HEARTBEAT_SECONDS = 1.0
#: How long a worker waits after accepting a connection before it accepts another, per
#: connection it holds (at most five times).
ACCEPT_PAUSE_SECONDS = 0.001


class _NoPool:
    """What the loop calls on its thread pool when stopping; there is none."""

    def shutdown(self, wait: bool = True, **_: Any) -> None:
        return None


class InlineWorker(ThreadWorker):
    """gthread's worker, every request handled on the event loop's thread (one at a time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heartbeat_due = 0.0
        self._accept_after = 0.0

    def get_thread_pool(self) -> Any:
        return _NoPool()

    def notify(self) -> None:
        now = time.monotonic()
        if now >= self._heartbeat_due:
            self._heartbeat_due = now + HEARTBEAT_SECONDS
            super().notify()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and time.monotonic() >= self._accept_after)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if not self._accepting and self.nr_conns < self.worker_connections:
            # Wake up when the pause ends (the loop turns at least once a second otherwise).
            timeout = max(0.0, min(timeout, self._accept_after - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: Any) -> None:
        """Accept a connection and let it wait in the poller for its first bytes."""
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        # Another worker, idle in its poller, takes the next one meanwhile; the more this one
        # holds, the longer it leaves them to the others (at most 5 ms).
        self._accept_after = time.monotonic() + ACCEPT_PAUSE_SECONDS * min(self.nr_conns, 5)
        self.set_accept_enabled(False)
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking now
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))

    def enqueue_req(self, conn: TConn) -> None:
        """Handle the connection's request now, then put the connection back as gthread would."""
        done: futures.Future[Any] = futures.Future()
        try:
            done.set_result(self.handle(conn))
        except BaseException as error:
            done.set_exception(error)
        self.finish_request(conn, done)
