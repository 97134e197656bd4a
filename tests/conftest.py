"""Fixtures: an app per test on SQLite and (with TEST_POSTGRES_URL) again on PostgreSQL, a client, auth.

Under CI=true nothing skips for a missing service: PostgreSQL and Chromium must be there.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from jinja2.bccache import Bucket, BytecodeCache
from werkzeug.routing.rules import Rule

from tests.fake_vonage import FakeVonage, running_fake_vonage
from webapp import create_app
from webapp.extensions import db
from webapp.providers import registry

IN_CI = os.environ.get("CI", "").lower() == "true"


def _redis_of_this_worker() -> None:
    """`make test` runs two pytest-xdist workers: each gets a Redis database of its own (15, 14, …) so
    that one's RQ tests never empty the other's queue or run its jobs against another database."""
    url, worker = os.environ.get("REDIS_TEST_URL", ""), os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return
    parts = urlsplit(url)
    number = (int(parts.path.strip("/") or 0) - int(worker[2:])) % 16
    os.environ["REDIS_TEST_URL"] = urlunsplit(parts._replace(path=f"/{number}"))


_redis_of_this_worker()
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"]
WEBHOOK_SECRET = "test-webhook-signature-secret-0123456789abcdef"
# A fixed Fernet key for the compliance files of the tests (never the instance folder's).
FILE_KEY = "2u9Jw7Zb6oKpR0l3ZCk4a1jQG2f9s8Vt5XxYyWnLmE0="


def _share_url_builders() -> None:
    """Every test makes its own app, and werkzeug compiles two URL builders per route for each (through
    `ast` and `compile`): 85 ms of an app's 100. A builder is a plain function of the rule's text,
    defaults and converters, given the rule as its first argument, so the tests' apps share them.
    Only the tests do this; the app is built once per process anyway."""
    compile_builder = Rule._compile_builder
    built: dict[tuple[object, ...], object] = {}

    def shared(self: Rule, append_unknown: bool = True):  # type: ignore[no-untyped-def]
        converters = tuple(sorted((k, type(v).__qualname__) for k, v in self._converters.items()))
        key = (append_unknown, tuple(self._trace), repr(sorted((self.defaults or {}).items())), converters)
        if key not in built:
            built[key] = compile_builder(self, append_unknown)
        return built[key]

    Rule._compile_builder = shared  # type: ignore[method-assign]


class _SharedBytecode(BytecodeCache):
    """Jinja's compiled templates, kept for the whole run: each test's app has its own environment and
    would compile every template it renders again (a third of a page test's time). Keyed by Jinja on
    the template's name and a checksum of its source, so an edited template is compiled anew."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


def _share_engines() -> None:
    """The PostgreSQL tests' apps share one engine per database: each app would otherwise begin with an
    empty statement cache and compile every statement of its test again (a fifth of such a test's
    time). The pool is emptied after each test all the same (app fixture).

    Each SQLite test has a file of its own, so an engine of its own (its own pool), but it takes the
    dialect and the statement cache of the first engine made with the same options that has connected:
    the cache is keyed by the dialect, and compiling took a tenth of a SQLite test's time. Statements
    compiled for one SQLite file are the same for another."""
    make_engine = SQLAlchemy._make_engine
    engines: dict[str, sa.Engine] = {}
    sqlite_engines: dict[str, sa.Engine] = {}

    def shared(self: SQLAlchemy, bind_key: str | None, options: dict, app: Flask) -> sa.Engine:
        url = sa.make_url(options["url"])
        if url.get_backend_name() == "sqlite":
            engine = make_engine(self, bind_key, options, app)
            key = repr(sorted((k, repr(v)) for k, v in options.items() if k != "url"))
            first = sqlite_engines.get(key)
            if first is None or first.dialect.server_version_info is None:  # not connected yet
                sqlite_engines[key] = engine
            else:
                engine.dialect = first.dialect
                engine._compiled_cache = first._compiled_cache
            return engine
        if url.get_backend_name() != "postgresql":
            return make_engine(self, bind_key, options, app)
        key = repr(sorted((k, repr(v)) for k, v in options.items()))
        if key not in engines:
            engines[key] = make_engine(self, bind_key, options, app)
        return engines[key]

    SQLAlchemy._make_engine = shared  # type: ignore[method-assign]


_share_url_builders()
_share_engines()
Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": _SharedBytecode()}


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI=true: set TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )


# The files a worker spends longest in, longest first (a run under `make test` on the 2-core machine,
# issue #19). `make test` hands out whole files in collection order (--dist loadfile
# --no-loadscope-reorder): these go first, and the many short files fill in after them, so that both
# workers end together instead of one running the longest file alone at the end. A new long file
# belongs here. test_inbox_browser.py goes before test_interviews_browser.py: run after it in the same
# process, its test_a_reply_moves_its_row_to_the_top_while_the_user_types finds the row twice (it does
# on main too, in that order); a file handed out earlier never runs after a later one in a worker.
LONGEST_FILES = (
    "test_browser.py",
    "test_inbox_browser.py",
    "test_interviews_browser.py",
    "test_serving.py",
    "test_faults.py",
    "test_pacing.py",
    "test_send_worker_threads.py",
    "test_admin.py",
    "test_bulk.py",
    "test_webhooks.py",
    "test_crm_browser.py",
    "test_migrations.py",
    "test_dispatch_recovery.py",
    "test_demo.py",
    "test_interviews_zones_browser.py",
    "test_startup.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the others by their number of tests (as pytest-xdist's own reorder
    does); the tests of a file stay in the order written (the sort is stable)."""
    rank = {name: place for place, name in enumerate(LONGEST_FILES)}
    tests_in = Counter(item.path.name for item in items)
    items.sort(
        key=lambda item: (rank.get(item.path.name, len(rank)), -tests_in[item.path.name], str(item.path))
    )


def need(what: str) -> None:
    """Skip for a missing service outside CI; in CI a missing service is a failure."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available here")


@pytest.fixture(scope="module", autouse=True)
def served_pages_are_valid_html(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every page a browser test module's browsers were served passes html-validate (the repository's
    .htmlvalidate.json): checked once at the end of the module, in one node process, and told page by
    page (tests/browser_support.py gathers them)."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    from tests import browser_support

    if not browser_support.html_validate_available():
        need("html-validate and node (npm ci)")
    browser_support.SERVED.take()  # what an earlier module left, if it stopped early
    yield
    problems = browser_support.html_problems(browser_support.SERVED.take())
    if problems:
        pytest.fail(
            f"html-validate ({browser_support.HTML_VALIDATE_CONFIG.name}) found errors in "
            f"{len(problems)} page(s) served to the browser:\n" + "\n".join(problems),
            pytrace=False,
        )


def _pg_url(database: str) -> sa.URL:
    url = sa.make_url(POSTGRES_URL)
    return url.set(drivername="postgresql+psycopg", database=database)


def create_postgres_database(prefix: str = "relay_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # A test's commit need not wait for the disk: a crash loses only a database dropped anyway.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    engine.dispose()
    return _pg_url(name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    engine = sa.create_engine(_pg_url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, with the models' schema; dropped at the end."""
    if not POSTGRES_URL:
        need("PostgreSQL (TEST_POSTGRES_URL)")
    url = create_postgres_database()
    app = create_app(test_config(url))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield url
    drop_postgres_database(url)


def test_config(database_url: str, **overrides: object) -> dict[str, object]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SERVER_NAME": None,
        # Sends run at once in the request (the thread pool and RQ are tested on their own).
        "DISPATCH_MODE": "inline",
        # Webhooks applied in the request (tests/test_ingest.py stores them first, with a real worker).
        "WEBHOOK_INGEST": "direct",
        # Tests that want the simulator's delivery report ask for it; elsewhere it would race the test.
        "SIMULATOR_DELIVERY_SECONDS": 3600,
        "SEND_BACKOFF_SECONDS": 0.01,
        # The periodic sweep would race the tests; the tests of recovery call it themselves.
        "DISPATCH_SWEEP_SECONDS": 0,
        # Tests send at whatever hour they run; the quiet hours' own tests turn them on, the clock given.
        "QUIET_HOURS": False,
        "VONAGE_SIGNATURE_SECRET": WEBHOOK_SECRET,
        "RELAY_FILE_KEY": FILE_KEY,
        **overrides,
    }


test_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def fake(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVonage]:
    """The fake Vonage on 127.0.0.1 (real HTTPS, JWTs checked), trusted by `requests` for this test;
    `fake.app_settings()` points an app at it."""
    with running_fake_vonage(tmp_path) as running:
        running.patch_env(monkeypatch)
        yield running


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with the models' schema, made once: each test starts from a copy of it (copying
    takes a millisecond, making the schema a hundred)."""
    path = tmp_path_factory.mktemp("schema") / "relay.db"
    app = create_app(test_config(f"sqlite:///{path}"))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return str(path)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if backend == "sqlite":
        # A file, not ":memory:": background threads (dispatch, the simulator) then get connections
        # of their own instead of sharing the test's one.
        shutil.copyfile(request.getfixturevalue("sqlite_schema"), tmp_path / "relay.db")
        return f"sqlite:///{tmp_path}/relay.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app_config() -> dict[str, object]:
    """Override in a test module to change settings for its app."""
    return {}


@functools.cache
def _empty_every_table() -> str:
    """The models' tables emptied, children first, and every sequence back to 1, as one script (made once
    the models are all imported)."""
    deletes = [f'DELETE FROM "{table.name}"' for table in reversed(db.metadata.sorted_tables)]
    return ";\n".join([*deletes, "SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'"])


@pytest.fixture
def app(backend: str, database_url: str, app_config: dict[str, object], tmp_path) -> Iterator[Flask]:
    app = create_app(test_config(database_url, **{"UPLOAD_DIR": str(tmp_path / "uploads"), **app_config}))
    with app.app_context():  # the schema is there: a copy (SQLite) or the run's database (PostgreSQL)
        yield app
        registry.close(app)
        db.session.remove()
        if backend == "postgresql":
            # DELETE, children first, then every sequence back to 1: what TRUNCATE … RESTART IDENTITY
            # does, in a fifth of the time for tables this small (TRUNCATE replaces each table's files).
            # One round trip for all of it (psycopg sends a query without parameters as it is).
            with db.engine.begin() as conn:
                conn.exec_driver_sql(_empty_every_table())
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class Auth:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = "password"):
        token = csrf_from(self.client, "/login")
        return self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def logout(self):
        token = csrf_from(self.client, "/jobs")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)
