"""Bulk messages' pages (issue 22 §1)."""
