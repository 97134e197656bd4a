"""The CRM's pages: talent communities, their members (prospects), and the prospect-community page."""
