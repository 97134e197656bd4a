"""Security headers on every response: pages, static files, error pages and webhook answers alike."""

from __future__ import annotations

from flask import Flask, Response, request

# Nothing inline and nothing from elsewhere: our own CSS and JS (htmx included) from /static/, images
# from us or data: URIs. htmx is configured (templates/base.html) not to eval and not to inject a
# <style>, so it runs under this policy.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # For browsers that predate frame-ancestors.
    "X-Frame-Options": "DENY",
}

# Two years, subdomains included: the value hstspreload.org asks for. Only in production, where the
# site is served over HTTPS; a developer's http://127.0.0.1 must not be pinned to HTTPS.
HSTS = "max-age=63072000; includeSubDomains"


def register(app: Flask) -> None:
    production = app.config["RELAY_ENV"] == "production"

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":
            # Pages show candidates' names, numbers and messages: a shared computer's browser must
            # not keep them on disk or show them again from its cache after sign-out.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
