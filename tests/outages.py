"""What a test takes away from a served set (tests/serve_support.py) to see how it copes: a private Redis
the test stops and starts, and a TCP proxy in front of PostgreSQL that the test cuts.

Every part is a real process or a real socket; nothing is mocked. The machine's PostgreSQL is shared with
other tests running at the same time, so it is never restarted: the proxy drops every connection through
it and refuses new ones, which is what the app sees of a restart.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import subprocess
import threading
from pathlib import Path

from tests.serve_support import free_port, wait_for

# --- Redis of our own ------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server on a free port, without persistence, that a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        # No snapshot, no append-only file: stopped, it forgets everything, as a Redis that was replaced.
        options = {"--port": str(self.port), "--bind": "127.0.0.1", "--save": "", "--appendonly": "no"}
        self.process = subprocess.Popen(
            [
                "redis-server",
                *(part for pair in options.items() for part in pair),
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "the private redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# --- A proxy in front of PostgreSQL that can be cut ------------------------------------------------------


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the real server, one thread per connection. `cut()` closes every
    connection through it and refuses new ones (accepted and closed at once, as a server that is going
    down does) until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            open_sockets = list(self._sockets)
            self._sockets.clear()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.closing.set()
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        pair = {client: server, server: client}
        try:
            while self.up.is_set():
                ready, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._sockets.discard(client)
                self._sockets.discard(server)
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()
