"""Vonage calls these: inbound messages and delivery receipts. The only JSON endpoints, the only
CSRF-exempt ones; each request is signed (webapp.webhooks.signature) or refused with 401."""
