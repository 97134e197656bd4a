"""The web: one blueprint per area (webapp.web.<area>.routes defines it, beside its forms and its
templates/ folder), and what every page shares: the page-or-fragment helper, forms, refusals on forms,
error pages, security headers, template filters and the route guards. Routes parse, call one domain
function and render; the rules are in the domain packages (webapp.messaging, webapp.accounts, …)."""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager


def register(app: Flask, login_manager: LoginManager) -> None:
    """Every blueprint, error page, header and template helper on the app."""
    from webapp.web import errors, headers, metrics_endpoint, request_log, templating
    from webapp.web.admin import compliance, credits, people, settings, templates  # noqa: F401  (routes on admin's bp)
    from webapp.web.admin.routes import bp as admin_bp
    from webapp.web.auth import login
    from webapp.web.auth.routes import bp as auth_bp
    from webapp.web.booking.routes import bp as booking_bp
    from webapp.web.bulk.routes import bp as bulk_bp
    from webapp.web.conversations.routes import bp as conversations_bp
    from webapp.web.crm.routes import bp as crm_bp
    from webapp.web.inbox.routes import bp as inbox_bp
    from webapp.web.interviews.routes import bp as interviews_bp
    from webapp.web.jobs.routes import bp as jobs_bp
    from webapp.web.notifications import routes as notifications
    from webapp.web.staff import health as staff_health  # noqa: F401  (routes on staff's bp)
    from webapp.web.staff.routes import bp as staff_bp
    from webapp.web.webhooks import routes as webhooks

    # First, so that every later hook's lines carry the request id.
    request_log.register(app)
    login.init_login(app, login_manager)
    for bp in (
        auth_bp,
        jobs_bp,
        conversations_bp,
        inbox_bp,
        crm_bp,
        admin_bp,
        staff_bp,
        interviews_bp,
        booking_bp,
        bulk_bp,
    ):
        app.register_blueprint(bp)
    notifications.register(app)
    webhooks.register(app)
    errors.register(app)
    headers.register(app)
    templating.register(app)
    metrics_endpoint.register(app)
