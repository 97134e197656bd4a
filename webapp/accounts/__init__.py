"""Accounts: colleagues and their roles and teams, signing in, sessions and set-password links, rights,
who may see what (access), and where a user starts (landing)."""
