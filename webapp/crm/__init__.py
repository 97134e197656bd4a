"""The CRM's rules: talent communities and their members (prospects), read for one user, added and removed."""
