"""``prorata serve``'s gunicorn worker (:mod:`prorata.common.webworker`), serving real requests:
kept-alive and pipelined connections, a silent client that holds nothing, ``--max-requests``, a
graceful stop. ``/healthz`` touches no database, so the server runs on its own SQLite file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prorata.common.management.commands.serve import WORKER_CLASS, gunicorn_argv

ROOT = Path(__file__).resolve().parents[3]
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """``prorata serve``'s gunicorn command, one worker, replaced after 40 requests."""
    with _serving(tmp_path, workers=1) as served:
        yield served


@contextlib.contextmanager
def _serving(tmp_path: Path, *, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PRORATA_", "PROMETHEUS_", "DATABASE_URL"))}
    env |= {"DJANGO_SETTINGS_MODULE": "prorata.settings.base", "PRORATA_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PRORATA_CLOCK": "wall",
            "PRORATA_ALLOWED_HOSTS": "127.0.0.1", "PRORATA_METRICS_DIR": str(tmp_path / "m")}
    command = gunicorn_argv(bind=f"127.0.0.1:{port}", workers=workers, timeout=30,
                            graceful_timeout=5, max_requests=40)
    command[command.index("--max-requests-jitter") + 1] = "1"
    log = tmp_path / "server.log"
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("ab"),  # noqa: S603
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                    probe.sendall(HEALTHZ)
                    if b"200 OK" in probe.recv(4096):
                        break
            except OSError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
            time.sleep(0.2)
        yield port, process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` whole answers to ``/healthz`` (each ends with its JSON body)."""
    data = b""
    sock.settimeout(10)
    while data.count(b'{"status": "ok"}') < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data.count(b'200 OK')} answers"
        data += chunk
    return data.split(b"HTTP/1.1 ")[1:]


def test_serve_runs_the_inline_worker_without_an_access_log(capsys):
    from django.core.management import call_command

    call_command("serve", "--dry-run")
    argv = capsys.readouterr().out.split()
    assert argv[argv.index("--worker-class") + 1] == WORKER_CLASS
    assert argv[argv.index("--threads") + 1] == "1"
    assert "--access-logfile" not in argv


def test_one_connection_is_kept_alive_for_many_requests(server):
    port, _process, _log = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(25):
            sock.sendall(HEALTHZ)
            (answer,) = _answers(sock, 1)
            assert answer.startswith(b"200 OK")
            assert b"connection: close" not in answer.lower()


def test_pipelined_requests_are_all_answered_in_order(server):
    port, _process, _log = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEALTHZ * 3)
        answers = _answers(sock, 3)
    assert len(answers) == 3
    assert all(answer.startswith(b"200 OK") for answer in answers)


def test_a_client_that_connects_and_says_nothing_holds_no_one_up(server):
    """gthread's one pool thread waited up to 5 s for the silent client's first bytes before it
    served anyone else; here the silent connection waits in the poller."""
    port, _process, _log = server
    with socket.create_connection(("127.0.0.1", port)) as silent:
        time.sleep(0.3)  # accepted by the worker before the next client connects
        with socket.create_connection(("127.0.0.1", port)) as other:
            started = time.monotonic()
            other.sendall(HEALTHZ)
            (answer,) = _answers(other, 1)
            waited = time.monotonic() - started
        assert answer.startswith(b"200 OK")
        assert waited < 2.5, f"the second client waited {waited:.1f} s behind the silent one"
        silent.sendall(HEALTHZ)  # and the silent one is served when it speaks
        (late,) = _answers(silent, 1)
        assert late.startswith(b"200 OK")


def test_the_worker_is_replaced_after_max_requests_and_serving_goes_on(server):
    port, _process, log = server
    for _ in range(90):  # two replacements at 40 (+1 jitter) requests each
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(HEALTHZ)
            (answer,) = _answers(sock, 1)
            assert answer.startswith(b"200 OK")
    assert log.read_text().count("Booting worker") >= 3, log.read_text()


def test_sigterm_stops_the_server_gracefully(server):
    port, process, log = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEALTHZ)
        _answers(sock, 1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
    assert "Shutting down" in log.read_text()


def test_the_worker_relies_on_gunicorns_internals_as_pinned():
    """The worker overrides these members of gunicorn 27's ThreadWorker: a gunicorn that renames
    them fails here, before the server does in production."""
    from gunicorn.workers.gthread import TConn, ThreadWorker

    for name in ("enqueue_req", "finish_request", "handle", "accept", "get_thread_pool",
                 "on_pending_socket_readable", "murder_pending", "notify"):
        assert callable(getattr(ThreadWorker, name)), name
    with socket.socket() as sock:
        assert {"data_ready", "initialized", "timeout"} <= set(vars(TConn(None, sock, None, None)))


def test_after_each_accept_the_worker_leaves_the_next_connections_to_the_others(monkeypatch):
    """The sharing out of connections between workers, on the worker itself with a fake clock:
    after an accept its listener is off for 1 ms per connection it holds (so an idle worker, also
    waiting on the listening socket, takes the next one), then on again. With gthread, a burst of
    4 connections went 2 + 2 in 5 bursts of 20; with this worker 59 of 60 (benchmarks/README.md)."""
    import selectors

    from gunicorn.config import Config

    from prorata.common import webworker

    instant = [100.0]
    monkeypatch.setattr(webworker.time, "monotonic", lambda: instant[0])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        worker = webworker.InlineWorker(1, os.getpid(), [listener], None, 30, Config(), None)
        worker.poller = selectors.DefaultSelector()
        clients = []
        try:
            worker.set_accept_enabled(True)
            assert worker._accepting
            for held in (1, 2):
                clients.append(socket.create_connection(listener.getsockname()))
                worker.accept(listener)
                assert worker.nr_conns == held and not worker._accepting
                instant[0] += 0.001 * held - 0.0001  # not yet: the pause is 1 ms per connection
                worker.set_accept_enabled(True)
                assert not worker._accepting
                instant[0] += 0.0002
                worker.set_accept_enabled(True)
                assert worker._accepting
        finally:
            for conn in worker.pending_conns:
                conn.sock.close()
            for client in clients:
                client.close()
            worker.poller.close()
            worker.tmp.close()
