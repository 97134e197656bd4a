"""For the browser tests: a live Relay (werkzeug on 127.0.0.1, a free port), a watch on the browser's
console, and axe-core's accessibility checks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, Response
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
AXE_PATH = ROOT / "node_modules" / "axe-core" / "axe.min.js"
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
