"""Relay's customer-success pages (users with is_staff, who belong to no organisation)."""
