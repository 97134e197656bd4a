"""What installs what: requirements.txt is the runtime (`make run`, `make serve`), requirements-dev.txt
adds the tests' and linters' tools (`make test`). Checked statically against this environment's
installed metadata: the app's imports, mapped to their distributions, must all be pinned in the runtime
file, and every package there must be one the app needs (no test tool rides along)."""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"
# The code that runs in production: the package, the WSGI entry, the migrations `db upgrade` runs.
APP_CODE = [ROOT / "wsgi.py", *sorted((ROOT / "webapp").rglob("*.py")), *(ROOT / "migrations").rglob("*.py")]
FIRST_PARTY = {"webapp", "wsgi"}
# The issue names these: they never go into the runtime.
TEST_TOOLS = {
    "pytest",
    "pytest-xdist",
    "pytest-playwright",
    "pytest-base-url",
    "playwright",
    "hypothesis",
    "ruff",
    "aiosmtpd",
}
# In the runtime although no module of the app imports them (the processes and parts that serve it).
NOT_IMPORTED = {
    "gunicorn": "the production WSGI server (make serve)",
    "prometheus-client": "/metrics; its code comes with issue #19's metrics",
    "psycopg": "the PostgreSQL driver, which SQLAlchemy loads for a postgresql:// DATABASE_URL",
    "psycopg-binary": "psycopg's compiled implementation: no libpq or compiler to install",
    "tzdata": "the time-zone database where the system has none (zoneinfo falls back to it)",
    "vonage": "the SDK release the vonage-* packages come from, named in the User-Agent",
}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def pins(path: Path) -> dict[str, str]:
    """name → version of each `name==version` line (comments, blank lines and `-r` left out)."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not pinned with =="
        found[_name(requirement.name)] = spec.version
    return found


@cache
def dependencies(name: str, extras: frozenset[str] = frozenset()) -> frozenset[tuple[str, frozenset[str]]]:
    """What the installed distribution `name` (with `extras`) requires on this platform."""
    needed = set()
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(
            marker.evaluate({**default_environment(), "extra": extra}) for extra in {"", *extras}
        ):
            needed.add((_name(requirement.name), frozenset(requirement.extras)))
    return frozenset(needed)


def closure(roots: set[str]) -> set[str]:
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, frozenset[str]()) for root in roots]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        todo.extend(dependencies(*item))
    return {name for name, _ in seen}


def imported_modules() -> set[str]:
    """The top-level modules the app's code imports, anywhere in it (functions' lazy imports too)."""
    modules = set()
    for path in APP_CODE:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - FIRST_PARTY


@cache
def imported_distributions() -> frozenset[str]:
    """The distributions that provide the app's imports, in this environment."""
    providers = metadata.packages_distributions()
    missing = sorted(m for m in imported_modules() if m not in providers)
    assert not missing, f"imported by the app but installed by no distribution: {missing}"
    return frozenset(_name(d) for m in imported_modules() for d in providers[m])


def test_every_import_of_the_app_is_pinned_in_the_runtime() -> None:
    runtime = pins(RUNTIME)
    assert {"flask", "sqlalchemy", "phonenumbers"} <= imported_distributions()  # the scan sees imports
    missing = sorted(imported_distributions() - runtime.keys())
    assert not missing, f"the app imports these, requirements.txt does not install them: {missing}"


def test_the_runtime_holds_its_dependencies_and_nothing_else() -> None:
    runtime = set(pins(RUNTIME))
    needed = closure(imported_distributions() | set(NOT_IMPORTED))
    assert sorted(needed - runtime) == [], "required by the runtime's packages but not pinned in it"
    assert sorted(runtime - needed) == [], "pinned in requirements.txt but needed by nothing the app runs"


def test_the_runtime_names_no_test_tool() -> None:
    runtime = set(pins(RUNTIME))
    assert runtime.isdisjoint(TEST_TOOLS), sorted(runtime & TEST_TOOLS)
    # Nor anything only the tools need (pluggy, execnet, iniconfig, Pygments…).
    only_for_tools = closure(TEST_TOOLS) - closure(imported_distributions() | set(NOT_IMPORTED))
    assert runtime.isdisjoint(only_for_tools), sorted(runtime & only_for_tools)


def test_the_dev_file_adds_the_tools_on_top_of_the_runtime() -> None:
    lines = [line.strip() for line in DEV.read_text().splitlines()]
    assert next(line for line in lines if line and not line.startswith("#")) == "-r requirements.txt"
    runtime, dev = pins(RUNTIME), pins(DEV)
    assert runtime.keys().isdisjoint(dev), "pinned twice"
    assert dev.keys() >= TEST_TOOLS
    # Everything the tools (and whatever else the dev file adds, a benchmark's load generator) need is
    # pinned in one of the two files.
    assert sorted(closure(set(dev)) - runtime.keys() - dev.keys()) == []


def test_the_pins_are_what_is_installed_here() -> None:
    # The suite runs against the pinned versions (the Makefile reinstalls when a file changes).
    wrong = {
        name: (pinned, metadata.version(name))
        for name, pinned in {**pins(RUNTIME), **pins(DEV)}.items()
        if metadata.version(name) != pinned
    }
    assert wrong == {}
