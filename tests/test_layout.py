"""The layout's rules that a reader of the code relies on (docs/architecture.md, "Where things live"):

- domain packages hold the rules as plain functions: no blueprint, no request, no template, no web module,
  so every page, webhook, command and background job can use them;
- web packages (webapp/web/<area>/) each define their blueprint in routes.py, beside their forms and their
  templates/ folder, and never import another area's package;
- no module of webapp/ reaches itself again through imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.layout import cycles, imports_of, modules
from tests.conftest import test_config
from webapp import create_app

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = ROOT / "webapp"
WEB = WEBAPP / "web"
DOMAIN = [
    "accounts",
    "billing",
    "compliance",
    "crm",
    "inbox",
    "interviews",
    "jobs",
    "messaging",
    "numbers",
    "organizations",
    "providers",
    "scheduling",
]
# What only a request has: a domain function is given what it needs instead.
REQUEST_ONLY = {
    "flask.request",
    "flask.session",
    "flask.g",
    "flask.render_template",
    "flask.Blueprint",
    "flask.url_for",
    "flask_login.current_user",
}


def imported_names(path: Path) -> set[str]:
    """Every name a file imports, at its top or inside a function (`from a import b` gives a and a.b)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_tree_has_the_two_kinds_of_package() -> None:
    for name in DOMAIN:
        assert (WEBAPP / name / "__init__.py").is_file(), name
    areas = sorted(p.name for p in WEB.iterdir() if (p / "routes.py").is_file())
    assert areas == [
        "admin",
        "auth",
        "booking",
        "bulk",
        "conversations",
        "crm",
        "inbox",
        "interviews",
        "jobs",
        "notifications",
        "staff",
        "webhooks",
    ]


@pytest.mark.parametrize("package", DOMAIN)
def test_a_domain_package_knows_nothing_of_the_web(package: str) -> None:
    offending = []
    for path in sorted((WEBAPP / package).rglob("*.py")):
        for name in imported_names(path):
            if name == "webapp.web" or name.startswith("webapp.web."):
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
            if name in REQUEST_ONLY:
                offending.append(f"{path.relative_to(ROOT)} uses {name}")
    assert offending == []


def test_every_blueprint_is_a_web_package_defined_in_its_routes_module(tmp_path: Path) -> None:
    app = create_app(test_config(f"sqlite:///{tmp_path}/relay.db"))
    assert len(app.blueprints) == 12
    for bp in app.blueprints.values():
        assert bp.import_name.startswith("webapp.web.") and bp.import_name.endswith(".routes"), bp.import_name
        package = WEB / bp.import_name.split(".")[2]
        # The package's __init__ is its description only: importing it runs nothing and imports nothing.
        assert imported_names(package / "__init__.py") == set(), package
        if bp.template_folder:
            assert (package / bp.template_folder / bp.name).is_dir(), bp.name


def test_no_web_area_imports_another() -> None:
    offending = []
    for area in sorted(p for p in WEB.iterdir() if (p / "routes.py").is_file()):
        for path in sorted(area.rglob("*.py")):
            for name in imported_names(path):
                parts = name.split(".")
                in_an_area = parts[:2] == ["webapp", "web"] and len(parts) > 3 and (WEB / parts[2]).is_dir()
                if in_an_area and parts[2] != area.name:
                    offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offending == []


def test_no_import_cycle_in_webapp() -> None:
    known = modules()
    assert len(known) > 100
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []
