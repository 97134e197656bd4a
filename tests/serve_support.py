"""Serving Relay from a test as an operator does: `python -m webapp.serving` (what `make serve` runs) in a
process of its own, against a real PostgreSQL database and Redis, reached over HTTP. The one way the tests
start a served set (tests/test_serving.py, tests/test_faults.py).

    from tests import serve_support as serving

    env = serving.environment(database_url, redis_url, port=serving.free_port())
    with serving.served(env, tmp_path / "serve.log") as served:  # back once /readyz answers 200
        served.get("/readyz")
        assert served.stop() == 0  # SIGTERM, as a platform stops it; the exit status
        assert served.alive() == []  # every process of the set has ended

`served.members()` lists every process of the set (the supervisor, gunicorn's master and workers, the RQ
workers, the clock): the supervisor starts each Procfile entry in a session of its own and logs its pid,
and a process belongs to the set when its session is one of those. Whatever is left when the block ends
is SIGKILLed. A set that was stopped may be started again (`start()`). `Browser` signs in over HTTP like
a browser would, with the production cookies (Secure) sent over the tests' plain HTTP.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from tests.conftest import FILE_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "serve-test-secret-key-long-enough-0123456789"
# Settings the tests' own environment may carry that must not leak into a served set.
_APP_SETTINGS = re.compile(
    r"^(PYTHONUNBUFFERED|DATABASE_URL|REDIS_URL|RELAY_ENV|SECRET_KEY|MESSAGING_PROVIDER|DISPATCH_MODE|CLOCK_IN_PROCESS|"
    r"SERVE_\w+|WEB_\w+|SEED_DEMO|HOST|PORT|GUNICORN_CMD_ARGS|VONAGE_\w+|RELAY_\w+)$"
)
_STARTED = re.compile(r"^relay\s+\| (\S+) started \(pid (\d+)\)", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    return free_port()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Until `condition()` holds; AssertionError naming `what`, with the end of `log`, after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{_tail(log) if log else ''}")


def environment(database_url: str, redis_url: str, port: int, **settings: str) -> dict[str, str]:
    """A production environment for the served set: real secrets, the simulator allowed (a test that
    sends through the fake Vonage sets MESSAGING_PROVIDER=vonage and its settings), one web worker and one
    RQ worker (the machine has two cores)."""
    env = {name: value for name, value in os.environ.items() if not _APP_SETTINGS.match(name)}
    env.update(
        RELAY_ENV="production",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET_KEY,
        VONAGE_SIGNATURE_SECRET=WEBHOOK_SECRET,
        RELAY_FILE_KEY=FILE_KEY,
        ALLOW_SIMULATOR_IN_PRODUCTION="1",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        SERVE_WORKERS="1",
        SERVE_STOP_SECONDS="20",
        # The served set is sent to at whatever hour the tests run: nothing held to a recipient's morning.
        QUIET_HOURS="off",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(settings)
    return env


def run_serving(env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m webapp.serving` to its end (for the refusals: it should not start)."""
    return subprocess.run(
        [sys.executable, "-m", "webapp.serving"],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def session_of(pid: int) -> int | None:
    """The session id of a live process (None if it has ended or is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in {"Z", "X"}:
        return None
    return int(fields[3])


def in_sessions(sessions: set[int]) -> list[int]:
    """Every live process whose session is one of these."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and session_of(int(entry.name)) in sessions:
            found.append(int(entry.name))
    return sorted(found)


class Served:
    """`python -m webapp.serving` with `env`, its output appended to `log`, and the processes it started.
    Nothing runs until `launch()` (or `start()`, which also waits for /readyz)."""

    def __init__(self, env: Mapping[str, str], log: Path, args: tuple[str, ...] = ("-m", "webapp.serving")):
        self.env = dict(env)
        self.log = log
        self.args = args
        self.base = f"http://127.0.0.1:{self.env['PORT']}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.process: subprocess.Popen[bytes] | None = None
        self._sessions: set[int] = set()

    def launch(self) -> Served:
        self.process = spawn(list(self.args), self.env, self.log)
        self._sessions.add(self.process.pid)
        return self

    def start(self, ready_within: float = 120) -> Served:
        """Launched, and back once GET /readyz answers 200."""
        self.launch()
        self.wait_ready(ready_within)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def started(self) -> dict[str, int]:
        """Each Procfile process the supervisor started, by name: its pid (the latest, if started again)."""
        return {name: int(pid) for name, pid in _STARTED.findall(self.output())}

    def members(self) -> list[int]:
        """Every live process of the set."""
        self._sessions.update(self.started().values())
        return in_sessions(self._sessions)

    def alive(self) -> list[int]:
        return self.members()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def ready(self) -> bool:
        """Whether GET /readyz answers 200 now."""
        try:
            return self.get("/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 120) -> None:
        """Until GET /readyz answers 200; AssertionError (with the log) if the set ended or took longer."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"serving ended ({self.process.returncode}) before it was ready{self.tail()}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"serving was not ready within {timeout:g} s{self.tail()}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM to the supervisor, as a platform or systemd stops the set; its exit status."""
        assert self.process is not None
        self.members()  # note the sessions while the processes are there to be found
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill_all(self) -> None:
        if self.process is None:
            return
        for pid in [self.process.pid, *self.members()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def tail(self, lines: int = 60) -> str:
        return _tail(self.log, lines)


@contextlib.contextmanager
def served(env: Mapping[str, str], log: Path, ready_within: float = 120) -> Iterator[Served]:
    """The set started and ready (GET /readyz 200); whatever is left of it is killed at the end."""
    running = Served(env, log)
    try:
        running.start(ready_within)
        yield running
    finally:
        running.kill_all()


class Browser:
    """Signs in and follows a session over HTTP, as a browser does. The production session cookie is
    Secure, which `requests` would keep back over plain HTTP: the tests' server is plain HTTP on 127.0.0.1
    (a proxy ends TLS in production), so the cookies are sent anyway."""

    CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False

    def request(self, method: str, path: str, base: str | None = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        response = self.http.request(method, (base or self.base) + path, **kwargs)
        for cookie in self.http.cookies:
            cookie.secure = False
        return response

    def csrf(self, path: str = "/login", base: str | None = None) -> str:
        page = self.request("GET", path, base)
        match = self.CSRF.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def sign_in(self, email: str, password: str, base: str | None = None) -> requests.Response:
        token = self.csrf("/login", base)
        data = {"email": email, "password": password, "csrf_token": token}
        return self.request("POST", "/login", base, data=data)


def spawn(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python <args>` from the repository in a session of its own (so that killing its group takes its
    children too), its output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def end(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process and its session's other processes, if any are left."""
    for pid in [process.pid, *in_sessions({process.pid})]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Until `url` answers 200 (GET), or AssertionError with the log's end if the process ended first."""
    deadline = time.monotonic() + timeout
    http = requests.Session()
    http.trust_env = False
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: the server ended ({process.returncode}){_tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if http.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:g} s{_tail(log)}")


def _tail(log: Path, lines: int = 60) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return f"\n--- {log.name} ---\n" + "\n".join(text.splitlines()[-lines:])
