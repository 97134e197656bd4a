"""Providers call these: inbound messages and delivery receipts. The only JSON endpoints, the only
CSRF-exempt ones; each request is verified by its provider (webapp.providers) or refused with 401."""
