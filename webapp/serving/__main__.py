"""`python -m webapp.serving` (what `make serve` runs): preflight, migrations, the demo data if asked,
then the Procfile's processes until SIGTERM or Ctrl-C.

Settings besides the app's own (README, "Serving"): SERVE_WORKERS, the number of RQ worker processes
(default 2); SERVE_STOP_SECONDS, how long the processes get to stop before they are killed (default
35, longer than gunicorn's graceful timeout); SEED_DEMO=1 loads the demo data into an empty database;
SERVE_PROCFILE, the Procfile to run (default: the repository's).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from webapp.serving import preflight, supervisor

# Every machine that starts serving runs the migrations; this lock makes the second wait for the first.
MIGRATION_LOCK = 0x52454C4159  # "RELAY"
PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def _whole(env: dict[str, str], name: str, default: int, least: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise preflight.NotReady(f"{name} must be a whole number of {least} or more, not {raw!r}")
    return int(raw)


def _procfile(env: dict[str, str], workers: int) -> list[supervisor.Process]:
    path = Path(env.get("SERVE_PROCFILE") or PROCFILE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise preflight.NotReady(f"SERVE_PROCFILE: {path} cannot be read ({error.strerror})") from None
    try:
        return supervisor.processes(supervisor.read_procfile(text), {"worker": workers})
    except ValueError as error:
        raise preflight.NotReady(f"{path}: {error}") from None


def migrate_and_seed(seed_demo: bool) -> str:
    """The migrations applied (one machine at a time), and the demo data when asked for and the
    database is empty; what was done, in a line."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from webapp import create_app, demo
    from webapp.extensions import db

    app = create_app()
    with app.app_context():
        with db.engine.connect() as lock:
            lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                upgrade()
            finally:
                lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        done = "migrations applied"
        if seed_demo:
            if demo.database_is_empty(db.session):
                demo.seed(db.session)
                db.session.commit()
                done += "; demo data loaded"
            else:
                done += "; the database has data, demo data not loaded"
        db.engine.dispose()
    return done


def main() -> int:
    env = preflight.served_environment(os.environ)
    try:
        # What costs nothing is checked before what waits on the network.
        workers = _whole(env, "SERVE_WORKERS", 2, 1)
        stop_seconds = _whole(env, "SERVE_STOP_SECONDS", 35, 1)
        procs = _procfile(env, workers)
        metrics_dir = _metrics_directory(env)
        preflight.check(env, preflight.instance_path())
    except preflight.NotReady as error:
        print(f"relay: cannot serve: {error}", file=sys.stderr)
        return 1
    # The app reads its settings from the environment; the processes inherit it, the venv first on PATH.
    os.environ.clear()
    os.environ.update(env)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    try:
        done = migrate_and_seed(env.get("SEED_DEMO", "").strip().lower() in {"1", "true", "yes", "on"})
    except KeyboardInterrupt:
        print("relay: interrupted before serving", file=sys.stderr)
        return 130
    except Exception as error:
        # Nothing has started: say why in a line (the migration's own log above has the detail).
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        print(
            f"relay: cannot serve: the migrations failed: {type(error).__name__}: {reason}", file=sys.stderr
        )
        return 1
    print(f"relay: {done}", flush=True)
    try:
        return supervisor.main_loop(procs, dict(os.environ), stop_seconds)
    finally:
        if metrics_dir.made_here:
            shutil.rmtree(metrics_dir.path, ignore_errors=True)


@dataclass(frozen=True)
class MetricsDirectory:
    path: str
    made_here: bool


def _metrics_directory(env: dict[str, str]) -> MetricsDirectory:
    """Where every process of the set writes its metrics (prometheus-client's multiprocess mode), so that
    a scrape of any web process adds them all up: PROMETHEUS_MULTIPROC_DIR emptied (a previous run's counts
    are not this one's), or a directory of this run's own, removed when it ends."""
    given = (env.get("PROMETHEUS_MULTIPROC_DIR") or "").strip()
    if not given:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="relay-metrics-")
        return MetricsDirectory(env["PROMETHEUS_MULTIPROC_DIR"], True)
    try:
        if os.path.isdir(given):
            shutil.rmtree(given)
        os.makedirs(given)
    except OSError as error:
        raise preflight.NotReady(
            f"PROMETHEUS_MULTIPROC_DIR={given} cannot be emptied and written: {error.strerror}"
        ) from None
    return MetricsDirectory(given, False)


if __name__ == "__main__":
    sys.exit(main())
