"""`python -m webapp.serving` (what `make serve` runs): preflight, migrations, the demo data if asked,
then the Procfile's processes until SIGTERM or Ctrl-C.

Settings besides the app's own (README, "Serving"): SERVE_WORKERS, the number of RQ worker processes
(default 2); SERVE_STOP_SECONDS, how long the processes get to stop before they are killed (default
35, longer than gunicorn's graceful timeout); SEED_DEMO=1 loads the demo data into an empty database.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from webapp.serving import preflight, supervisor

# Every machine that starts serving runs the migrations; this lock makes the second wait for the first.
MIGRATION_LOCK = 0x52454C4159  # "RELAY"


def _whole(env: dict[str, str], name: str, default: int, least: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise preflight.NotReady(f"{name} must be a whole number of {least} or more, not {raw!r}")
    return int(raw)


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
        preflight.check(env, preflight.instance_path())
        workers = _whole(env, "SERVE_WORKERS", 2, 1)
        stop_seconds = _whole(env, "SERVE_STOP_SECONDS", 35, 1)
    except preflight.NotReady as error:
        print(f"relay: cannot serve: {error}", file=sys.stderr)
        return 1
    # The app reads its settings from the environment; the processes inherit it, the venv first on PATH.
    os.environ.clear()
    os.environ.update(env)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    print(f"relay: {migrate_and_seed(env.get('SEED_DEMO', '').strip() in {'1', 'true', 'yes'})}", flush=True)
    procfile = Path(__file__).resolve().parents[2] / "Procfile"
    procs = supervisor.processes(supervisor.read_procfile(procfile.read_text()), {"worker": workers})
    return supervisor.main_loop(procs, dict(os.environ), stop_seconds)


if __name__ == "__main__":
    sys.exit(main())
