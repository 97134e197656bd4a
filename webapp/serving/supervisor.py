"""Runs the Procfile's processes together and stops them together.

Each process runs in a session of its own, so that a Ctrl-C in the terminal reaches only the supervisor,
which then asks every process to stop with SIGTERM — the signal on which gunicorn finishes the requests
in flight, an RQ worker the sends in flight (webapp.messaging.worker), and the clock the pass under
way. What has not stopped after `stop_seconds` is killed (a send cut then is recovered by the dispatch
sweep, never sent twice).

A process that ends by itself (a worker killed for memory, say) is started again, after a pause that
doubles each time; one that keeps ending (RESTART_LIMIT times within RESTART_WINDOW seconds) is broken,
not unlucky: the others are stopped and the supervisor exits with a failure, so that a half-running Relay
(web pages but nobody sending) does not look healthy and whatever runs the supervisor can say so.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
RESTART_LIMIT = 3
RESTART_WINDOW = 60.0
FIRST_PAUSE = 1.0


@dataclass(frozen=True)
class Process:
    name: str  # "web", "worker.2"
    command: str


def read_procfile(text: str) -> list[tuple[str, str]]:
    """The (name, command) pairs of a Procfile; comments and blank lines are skipped."""
    found: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number}, {line!r}, is not 'name: command'")
        if any(name == match.group(1) for name, _ in found):
            raise ValueError(f"line {number}: {match.group(1)!r} is named twice")
        found.append((match.group(1), match.group(2)))
    if not found:
        raise ValueError("no process to run (lines of 'name: command')")
    return found


def processes(entries: Sequence[tuple[str, str]], counts: Mapping[str, int]) -> list[Process]:
    """Each entry as many times as `counts` says (once by default), numbered when more than once."""
    result = []
    for name, command in entries:
        count = counts.get(name, 1)
        for number in range(1, count + 1):
            result.append(Process(f"{name}.{number}" if count > 1 else name, command))
    return result


class Supervisor:
    def __init__(self, procs: Sequence[Process], env: Mapping[str, str], stop_seconds: float, out: IO[str]):
        self.procs = list(procs)
        self.env = dict(env)
        self.stop_seconds = stop_seconds
        self.out = out
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._width = max((len(p.name) for p in self.procs), default=0)

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self._width}} | {line}\n")
            self.out.flush()

    def run(self) -> int:
        """Start everything, wait; the exit status: 0 after a requested stop, 1 if a process kept
        ending by itself."""
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        for proc in self.procs:
            self._start(proc)
        by_name = {proc.name: proc for proc in self.procs}
        ended: dict[str, list[float]] = {name: [] for name in by_name}
        restart_at: dict[str, float] = {}
        failed = None
        while not self.stopping.is_set() and failed is None:
            now = time.monotonic()
            for name, popen in self.running.items():
                if name in restart_at or popen.poll() is None:
                    continue
                self._end_session(popen)
                times = [t for t in ended[name] if now - t < RESTART_WINDOW] + [now]
                ended[name] = times
                if len(times) >= RESTART_LIMIT:
                    failed = name
                    self.say(
                        "relay",
                        f"{name} ended by itself (exit status {popen.returncode}), {len(times)} times within "
                        f"{RESTART_WINDOW:g} s; stopping the others",
                    )
                    break
                pause = FIRST_PAUSE * 2 ** (len(times) - 1)
                restart_at[name] = now + pause
                why = f"{name} ended by itself (exit status {popen.returncode})"
                self.say("relay", f"{why}; starting it again in {pause:g} s")
            for name, at in list(restart_at.items()):
                if failed is None and at <= now:
                    del restart_at[name]
                    self._start(by_name[name])
            self.stopping.wait(0.2)
        if failed is None:
            self.say("relay", "stopping: SIGTERM to every process")
        self.stop()
        for reader in self._readers:  # the processes' last lines, before the supervisor's exit
            reader.join(2)
        return 0 if failed is None else 1

    def stop(self) -> None:
        for popen in self.running.values():
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds
        for name, popen in self.running.items():
            try:
                popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("relay", f"{name} did not stop within {self.stop_seconds:g} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
            self._end_session(popen)
            self.say("relay", f"{name} stopped (exit status {popen.returncode})")

    @staticmethod
    def _end_session(popen: subprocess.Popen[bytes]) -> None:
        # Anything the process left in its session (a child that outlived it) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)

    def _start(self, proc: Process) -> None:
        env = dict(self.env)
        env["RELAY_PROCESS"] = proc.name
        popen = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {proc.command}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[proc.name] = popen
        self.say("relay", f"{proc.name} started (pid {popen.pid}): {proc.command}")
        reader = threading.Thread(target=self._relay_output, args=(proc.name, popen), daemon=True)
        reader.start()
        self._readers.append(reader)

    def _relay_output(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for raw in popen.stdout:
            self.say(name, raw.decode("utf-8", "replace").rstrip("\n"))


def main_loop(procs: Sequence[Process], env: Mapping[str, str], stop_seconds: float) -> int:
    return Supervisor(procs, env, stop_seconds, sys.stdout).run()
