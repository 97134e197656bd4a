"""For the browser tests: a live Relay (werkzeug on 127.0.0.1, a free port), a watch on the browser's
console, axe-core's accessibility checks, and html-validate on the HTML of every page served."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, Response
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
AXE_PATH = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# html-validate (npm, a devDependency) with the repository's rules: .htmlvalidate.json says which of its
# recommended rules are off and why (README, Tests).
HTML_VALIDATE = ROOT / "node_modules" / "html-validate" / "bin" / "html-validate.mjs"
HTML_VALIDATE_CONFIG = ROOT / ".htmlvalidate.json"
# WCAG 2.2 AA, and axe's best practices; serious and critical findings fail a test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_FAILING = ("serious", "critical")


def _closed_before_sent(app: Flask) -> Callable[[dict, Callable], list[bytes]]:
    """The app with each response read whole and closed before werkzeug writes it.

    When the browser drops a connection (a page left while a script loads, a poll replaced), werkzeug's
    development server raises out of its drain loop before it closes the response; a static file's
    handle is then left to the garbage collector, whose ResourceWarning lands in whichever test runs
    next. Pages here are small, so buffering costs nothing the tests measure.
    """

    def wsgi(environ: dict, start_response: Callable) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return wsgi


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _closed_before_sent(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-relay", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@dataclass
class ConsoleWatch:
    """What the browser reports that a user never should cause: a Content-Security-Policy violation,
    an htmx error (a selector that matches nothing, a missing swap target…), an uncaught exception, or
    a script, style, image or icon that failed to load."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> ConsoleWatch:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error: {error}"))
        page.on("response", self._response)
        # And every full page the watched browser is served goes to html-validate (SERVED).
        page.on("response", SERVED.keep)
        return self

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error":
            # A page or an htmx request answering 4xx on purpose (the 404 page, a refused send) is logged
            # as "Failed to load resource"; _response decides which of those are problems.
            # htmx reports a request it aborted (htmx:sendAbort) as an error: a page left while a
            # poll or preview was on its way, or a request replaced by a newer one (hx-sync). The
            # user sees nothing of it; a slow machine makes it likely. htmx 2 reports such a request's
            # end (htmx:afterRequest) as an error too; a request that really failed or timed out is still
            # caught, by the htmx:sendError or htmx:timeout that comes with it.
            if not text.startswith(("Failed to load resource", "htmx:sendAbort", "htmx:afterRequest")):
                self.problems.append(f"console error: {text}")
        elif message.type == "warning" and ("Content Security Policy" in text or "htmx" in text.lower()):
            self.problems.append(f"console warning: {text}")

    def _response(self, response: Response) -> None:
        kind = response.request.resource_type
        if response.status >= 400 and kind not in ("document", "xhr", "fetch"):
            self.problems.append(f"{response.status} for the {kind} {response.url}")


def axe_problems(page: Page, source: str) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now.

    axe is evaluated through the DevTools protocol (page.evaluate), which the page's
    Content-Security-Policy does not govern; a <script> tag (add_script_tag) would be refused.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    found = page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: "tag", values: tags}}).then((r) =>
             r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))})))""",
        AXE_TAGS,
    )
    return [
        f"{v['impact']} {v['id']} ({v['help']}) at {'; '.join(v['nodes'])}"
        for v in found
        if v["impact"] in AXE_FAILING
    ]


# --- html-validate on every page served ---------------------------------------------------------------


@dataclass(frozen=True)
class ServedPage:
    url: str  # path and query
    status: int
    test: str  # the first test that was served it
    html: str


# A page's CSRF token changes with every session; two pages that differ only by it are one page.
_TOKENS = re.compile(r'(name="[\w-]*csrf_token"[^>]*?value="|"X-CSRFToken": ")[^"]*')


class ServedPages:
    """The HTML of every full page (a document, not an htmx fragment or a redirect) the watched
    browsers were served, as the server sent it, once per distinct page. The module-scoped fixture
    `served_pages_are_valid_html` (tests/conftest.py) hands what a test module gathered to
    html-validate in one node process, at the end of the module."""

    def __init__(self) -> None:
        self.pages: dict[str, ServedPage] = {}

    def keep(self, response: Response) -> None:
        if response.request.resource_type != "document" or 300 <= response.status < 400:
            return
        if not response.headers.get("content-type", "").startswith("text/html"):
            return
        try:
            html = response.text()
        except PlaywrightError:
            return  # the browser let go of the body already (the page was left at once): nothing to read
        key = hashlib.sha256(_TOKENS.sub(r"\1", html).encode()).hexdigest()
        if key not in self.pages:
            parts = urlsplit(response.url)
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
            url = parts.path + (f"?{parts.query}" if parts.query else "")
            self.pages[key] = ServedPage(url, response.status, test, html)

    def take(self) -> list[ServedPage]:
        pages, self.pages = list(self.pages.values()), {}
        return pages


SERVED = ServedPages()


def html_validate_available() -> bool:
    return HTML_VALIDATE.exists() and shutil.which("node") is not None


def html_problems(pages: list[ServedPage]) -> list[str]:
    """html-validate's errors on these pages, one node process for all of them, each told with the page
    (address, status, the test that was served it), the line and the rule, and the markup in question."""
    if not pages:
        return []
    with tempfile.TemporaryDirectory(prefix="relay-html-") as tmp:
        files = []
        for n, served in enumerate(pages):
            path = Path(tmp) / f"page-{n:04d}.html"
            path.write_text(served.html, encoding="utf-8")
            files.append(str(path))
        report = Path(tmp) / "report.json"
        # The report goes to a file: node may exit before a large stdout is written to a pipe.
        done = subprocess.run(
            [
                shutil.which("node") or "node",
                str(HTML_VALIDATE),
                "--config",
                str(HTML_VALIDATE_CONFIG),
                "--formatter",
                f"json={report}",
                *files,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode not in (0, 1) or not report.exists():
            return [f"html-validate did not run (exit {done.returncode}): {done.stderr.strip()[:2000]}"]
        results = json.loads(report.read_text() or "[]")
    found = []
    for result in results:
        served = pages[int(Path(result["filePath"]).stem.rsplit("-", 1)[1])]
        errors = [m for m in result["messages"] if m["severity"] == 2]
        if not errors:
            continue
        lines = served.html.splitlines()
        told = [f"{served.url} ({served.status}, served in {served.test}):"]
        for m in errors:
            line = lines[m["line"] - 1].strip() if 0 < m["line"] <= len(lines) else ""
            told.append(f"  line {m['line']}:{m['column']} [{m['ruleId']}] {m['message']}")
            if line:
                told.append(f"      {line[:200]}")
        found.append("\n".join(told))
    return found
