"""The app bench/webhooks.py serves: the product's `wsgi:app` plus one route of the benchmark's own, the
durable-write floor of webhook ingest (issue #19). Not part of the product; gunicorn loads it as
`bench.floor_wsgi:app`.

`POST /bench/floor` reads a body of a webhook's size, takes its message_uuid, INSERTs one row into
`bench_floor` (made by bench/webhooks.py, unique by message_uuid, ON CONFLICT DO NOTHING: at-least-once
and idempotent, as a webhook must be) and COMMITs, through the app's own database session (its engine,
pool and settings, its commit hooks) — the least any webhook that stores what it was sent must do.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Response, request

from webapp.extensions import csrf, db
from wsgi import app

_INSERT = sa.text(
    "INSERT INTO bench_floor (message_uuid, body) VALUES (:uuid, :body) ON CONFLICT (message_uuid) DO NOTHING"
)


def floor() -> Response:
    body = request.get_data()
    message_uuid = json.loads(body)["message_uuid"]
    db.session.execute(_INSERT, {"uuid": message_uuid, "body": body.decode()})
    db.session.commit()
    return Response(status=204)


app.add_url_rule("/bench/floor", "bench_floor", floor, methods=["POST"])
csrf.exempt(floor)
