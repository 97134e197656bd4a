"""The layout's rules that a reader of the code relies on: the way of a message (webapp/messaging/) knows
nothing of the web — no blueprint, no request — so every page, webhook and command can use it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import test_config
from webapp import create_app

ROOT = Path(__file__).resolve().parent.parent
MESSAGING = ROOT / "webapp" / "messaging"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_messaging_imports_no_blueprint_and_no_request(tmp_path: Path) -> None:
    app = create_app(test_config(f"sqlite:///{tmp_path}/relay.db"))
    blueprints = {bp.import_name for bp in app.blueprints.values()}
    assert {"webapp.webhooks", "webapp.jobs", "webapp.conversations", "webapp.inbox"} <= blueprints
    modules = sorted(MESSAGING.glob("*.py"))
    assert len(modules) > 10
    offending = []
    for path in modules:
        for name in imported_modules(path):
            if any(name == bp or name.startswith(bp + ".") for bp in blueprints):
                offending.append(f"{path.name} imports {name}")
            if name in ("flask.request", "flask.session", "flask.g", "flask_login.current_user"):
                offending.append(f"{path.name} reads {name}")
    assert offending == []
