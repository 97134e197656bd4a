"""Serving Relay as in production (`make serve`, `python -m webapp.serving`): check that what it needs
answers (preflight), apply the migrations, then run the Procfile's processes together and stop them
together (supervisor)."""
