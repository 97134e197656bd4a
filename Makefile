# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run serve test lint setup migrate clean-vendor

run: setup
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	@echo "Relay on http://$(HOST):$(PORT)/ - sign in as recruiter@acme.example / relay-demo"
	$(FLASK) run --host $(HOST) --port $(PORT)

# As in production (README, "Serving"): PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) checked, the
# migrations applied, then gunicorn, the RQ workers and the clock of the Procfile until SIGTERM or Ctrl-C.
serve: setup
	$(BIN)/python -m webapp.serving

# Two workers (pytest-xdist), a test file each at a time: the suite's modules share module-scoped fixtures
# (a live server, the pages html-validate reads). PYTEST_ARGS="-n0" runs it in one process.
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: $(VENV)/.installed static/vendor/htmx.min.js

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# htmx comes from npm, pinned by package-lock.json, and is served by us (never a CDN).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

migrate: setup
	$(FLASK) db migrate -m "$(m)"
