"""gunicorn's settings for `make serve` (Procfile: `gunicorn --config gunicorn.conf.py wsgi:app`).
Every value can be changed by the environment, as gunicorn's own GUNICORN_CMD_ARGS can."""

import multiprocessing
import os

# A worker that exits leaves the metrics' live gauges (its counts stay): PROMETHEUS_MULTIPROC_DIR.
from webapp.metrics import child_exit  # noqa: F401

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers: the app does blocking I/O (PostgreSQL, Redis) and no request waits on the provider,
# which the RQ workers call. Two per core and one more, the usual rule for such workers.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
# A request slower than this is stuck; its worker is replaced.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# SIGTERM: requests in flight get this long to finish before their worker is stopped.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# No preload: each worker imports the app itself, so no database connection or thread crosses a fork.
preload_app = False
# Requests are logged by the app (one line each); gunicorn says only what concerns its processes.
accesslog = None
errorlog = "-"
# gunicorn's control socket sits at one path per user: a second server on the machine would take it over.
control_socket_disable = True
