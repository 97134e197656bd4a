# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

# The installer: uv, pinned, fetched into the venv when it is made; it installs a fresh clone's packages
# in seconds where pip takes most of a minute (bench/README.md, issue #19). When uv cannot be had (no
# wheel for the platform, no way to PyPI but a pip mirror) or fails, pip installs the same pinned files.
# --compile-bytecode: as pip does, so that no process pays for compiling the packages' sources (and none
# compiles them on every start where PYTHONDONTWRITEBYTECODE is set).
UV_VERSION := 0.13.9
INSTALL = if test -x $(BIN)/uv && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r $(1); \
	then :; \
	else $(BIN)/pip install --quiet --disable-pip-version-check -r $(1); fi

.PHONY: run serve test lint runtime dev migrate clean-vendor

# One `flask` process migrates and loads the demo data (each start of the app costs its imports).
# The links sent to candidates (a booking page's) point at this server unless PUBLIC_BASE_URL says where.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: runtime
	$(FLASK) prepare --demo
	@echo "Relay on http://$(HOST):$(PORT)/ - sign in as recruiter@acme.example / relay-demo"
	$(FLASK) run --host $(HOST) --port $(PORT)

# As in production (README, "Serving"): PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) checked, the
# migrations applied, then gunicorn, the RQ workers and the clock of the Procfile until SIGTERM or Ctrl-C.
serve: runtime
	$(BIN)/python -m webapp.serving

# Two workers (pytest-xdist), a test file each at a time: the suite's modules share module-scoped fixtures
# (a live server, the pages html-validate reads). The files are handed out in the order tests/conftest.py
# gives them (the longest first, so that both workers end together). PYTEST_ARGS="-n0" runs it in one
# process.
test: dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# What serving needs, and nothing else: requirements.txt and htmx (a serving target depends on this).
runtime: $(VENV)/.runtime static/vendor/htmx.min.js

# What the tests and linters need on top: requirements-dev.txt (which includes requirements.txt).
dev: $(VENV)/.dev static/vendor/htmx.min.js

# The venv without pip (ensurepip takes seconds), uv put in it by the system's pip, then pip by uv (for
# whoever uses .venv/bin/pip). Where that fails (a pip older than 22.3 has no --python; no uv for the
# platform), ensurepip gives the venv its pip, which then installs.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
		&& $(BIN)/uv pip install --quiet --python $(BIN)/python pip \
		|| $(BIN)/python -m ensurepip --default-pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(call INSTALL,requirements.txt)
	touch $@

# The dev file holds the runtime too, so installing it brings the runtime up to date as well.
$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(call INSTALL,requirements-dev.txt)
	touch $@ $(VENV)/.runtime

# htmx comes from npm, pinned by package-lock.json, and is served by us (never a CDN).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

migrate: runtime
	$(FLASK) db migrate -m "$(m)"
