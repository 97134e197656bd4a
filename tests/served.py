"""Relay served as `make serve` serves it (`python -m webapp.serving`: gunicorn, RQ workers, the clock), for
tests that break what it stands on: a private Redis the test stops and starts, a TCP proxy in front of
PostgreSQL that the test cuts, and an HTTP client that signs in like a browser.

Every part is a real process or a real socket; nothing is mocked. The machine's PostgreSQL is shared with
other tests running at the same time, so it is never restarted: the proxy drops every connection through
it and refuses new ones, which is what the app sees of a restart.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = f"\n--- {log} (end) ---\n{log.read_text()[-6000:]}" if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")


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


# --- The served set ---------------------------------------------------------------------------------------


@dataclass
class Served:
    """`python -m webapp.serving` with `env`, its output in `log`. The processes it starts run in sessions
    of their own; their pids are read from its output, so that none outlives the test."""

    env: dict[str, str]
    log: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    children: dict[str, int] = field(default_factory=dict)

    def start(self, timeout: float = 90) -> None:
        self.children = {}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "webapp.serving"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.ready() or self._ended(), timeout, "the served set to be ready", self.log)
        assert self.process.poll() is None, f"serving ended:\n{self.log.read_text()[-4000:]}"

    def ready(self) -> bool:
        try:
            return get(self.port, "/readyz", timeout=2).status == 200
        except OSError:
            return False

    def _ended(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def pids(self) -> dict[str, int]:
        """Each process's pid, by name (web, worker, clock), as the supervisor reported them."""
        found = re.findall(r"relay\s*\| (\S+) started \(pid (\d+)\)", self.log.read_text())
        self.children.update({name: int(pid) for name, pid in found})
        return dict(self.children)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM to the supervisor, as a platform stops it; its exit status."""
        assert self.process is not None
        self.pids()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill_all(self) -> None:
        """Whatever is left, killed (teardown)."""
        self.pids()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# --- HTTP as a browser speaks it ----------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[Answer, list[str]]:
    """One request on a connection of its own; the answer and its Set-Cookie headers."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        cookies = response.headers.get_all("Set-Cookie") or []
        found = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, found, data, time.monotonic() - started), cookies
    finally:
        conn.close()


def get(port: int, path: str, timeout: float = 30) -> Answer:
    return request(port, "GET", path, timeout=timeout)[0]


class Browser:
    """A signed-in user's cookies over plain HTTP. The app's cookies are Secure in production (served
    behind TLS); this client, on 127.0.0.1, sends them back all the same, as the TLS proxy in front would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def call(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        htmx: bool = False,
        timeout: float = 30,
    ) -> Answer:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if htmx:
            headers["HX-Request"] = "true"
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer, set_cookies = request(self.port, method, path, body, headers, timeout)
        for line in set_cookies:
            for name, morsel in SimpleCookie(line).items():
                if (morsel["expires"] and "1970" in morsel["expires"]) or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def csrf(self, path: str) -> str:
        page = self.call("GET", path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status})"
        return match.group(1)

    def sign_in(self, email: str, password: str) -> None:
        token = self.csrf("/login")
        answer = self.call("POST", "/login", {"email": email, "password": password, "csrf_token": token})
        assert answer.status in (302, 303), f"sign-in answered {answer.status}"
