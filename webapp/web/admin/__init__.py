"""The organisation's admin area: one module per area (settings, people and roles, credits, templates,
sending numbers and compliance documents, unmatched messages)."""
