"""A fresh clone's `make run`, timed by phase until the first page answers (issue #19).

    python3 bench/fresh_clone.py                     # clones this repository's HEAD into a temp dir
    python3 bench/fresh_clone.py --source /path/to/repo --rev <commit> --keep /tmp/clone

Each line that make prints is stamped with the time since start; a line that is one of the Makefile's
commands (venv, installer, install, npm ci, migrations, demo data, serve) starts a phase, and the phase
lasts until the next one starts. "first page" is the time from the serve command until GET / (which
redirects to the sign-in page) answers 200. Caches start empty (pip's, uv's and npm's point into the
temp dir), as on a machine that never installed these packages; --warm-cache DIR keeps them in DIR so
that a second run shows what a cache saves. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The command lines make echoes, in the order they run, and the phase each starts.
PHASES = [
    ("venv", re.compile(r"^test -x .*-m venv|^\S*python3? -m venv")),
    ("installer (uv)", re.compile(r"^\S*(pip|python3? -m pip)\b.* install\b.*\buv==")),
    ("install", re.compile(r"^(if .*)?\S*\b(pip|uv)\b.* install\b.*-r requirements")),
    ("npm ci", re.compile(r"^npm ci")),
    ("vendor copy", re.compile(r"^(cp|mkdir -p) ")),
    ("migrations + demo data", re.compile(r"^\S*flask .*\bprepare\b")),
    ("migrations", re.compile(r"^\S*flask .*\bdb upgrade")),
    ("demo data", re.compile(r"^\S*flask .*\bseed-demo")),
    ("serve", re.compile(r"^\S*(flask .*\brun\b|gunicorn)")),
]


def phase_of(line: str) -> str | None:
    for name, pattern in PHASES:
        if pattern.search(line):
            return name
    return None


def first_page(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200 and b"csrf_token" in response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def run(clone: Path, port: int, cache: Path, show: bool) -> list[tuple[str, float]]:
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "CI", "DATABASE_URL", "REDIS_URL", "FLASK_APP"):
        env.pop(name, None)
    env.update(
        PIP_CACHE_DIR=str(cache / "pip"),
        UV_CACHE_DIR=str(cache / "uv"),
        npm_config_cache=str(cache / "npm"),
        PYTHONUNBUFFERED="1",
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    marks: list[tuple[str, float]] = []
    serving = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic() - start
            name = phase_of(line.strip())
            if name and (not marks or marks[-1][0] != name):
                marks.append((name, now))
                if name == "serve":
                    serving.set()
            if show:
                print(f"{now:7.1f}  {line.rstrip()[:160]}", flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if serving.is_set() and first_page(port):
                marks.append(("first page", time.monotonic() - start))
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"make run stopped with status {proc.returncode} before the first page")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT), help="the repository to clone (default: this one)")
    parser.add_argument("--rev", default="HEAD", help="the commit to check out (default: HEAD)")
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--keep", help="clone here and keep it (default: a temp dir, removed after)")
    parser.add_argument("--warm-cache", help="a directory for pip's, uv's and npm's caches, kept")
    parser.add_argument("--quiet", action="store_true", help="print the phases only, not make's output")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="relay-fresh-"))
    clone = Path(args.keep) if args.keep else work / "clone"
    if clone.exists():
        raise SystemExit(f"{clone} exists: a fresh clone needs an empty place")
    cache = Path(args.warm_cache) if args.warm_cache else work / "cache"
    try:
        subprocess.run(["git", "clone", "--quiet", args.source, str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", args.rev], check=True)
        marks = run(clone, args.port, cache, show=not args.quiet)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the cold caches, and the clone unless --keep
    print(f"\n{'phase':<24} {'seconds':>8}")
    ends = [t for _, t in marks[1:]]
    for (name, began), ended in zip(marks, ends, strict=False):
        print(f"{name:<24} {ended - began:8.1f}")
    print(f"{'total to first page':<24} {marks[-1][1]:8.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
