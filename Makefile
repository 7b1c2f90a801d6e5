# Two commands do all setup: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := wsgi
export PORTAL_INSTANCE_PATH ?= $(CURDIR)/instance
# Demo links point at the server `make demo` starts.
export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)

# Debian packages the project needs: WeasyPrint's Pango, HarfBuzz's font subsetting and fonts; Chromium for the
# end-to-end tests, and certutil (libnss3-tools) to make it trust the HTTPS test's CA;
# wrk for the benchmarks; nginx for the soak (the reverse proxy in front of two instances).
RUNTIME_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
TEST_DEBS    := chromium libnss3-tools
BENCH_DEBS   := wrk
SOAK_DEBS    := nginx

.PHONY: demo serve lint test test-sqlite test-postgres install install-dev translations system-deps bench bench-bank soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev translations

# Installs missing Debian packages when we may (root, or sudo without a password).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "Missing Debian packages:$$missing (install them, then run again)"; exit 1; fi; \
	  echo "Installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

system-deps:
	$(call apt_install,$(RUNTIME_DEBS))

# The compiled catalogs (.mo, git-ignored) the app reads: each is made from its .po, and made
# again when the .po changes (the same as `flask translate compile`, one catalog at a time).
MO_FILES := $(patsubst %.po,%.mo,$(wildcard app/translations/*/LC_MESSAGES/messages.po))

translations: $(MO_FILES)

app/translations/%/LC_MESSAGES/messages.mo: app/translations/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

demo: system-deps install translations
	mkdir -p "$(PORTAL_INSTANCE_PATH)"
	$(BIN)/flask db upgrade
	$(BIN)/flask demo
	$(BIN)/flask run --host $(HOST) --port $(PORT)

# ruff's rules and mypy's settings are in pyproject.toml; mypy checks app/ (strict where it says).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install-dev translations
	$(MAKE) --no-print-directory lint
	$(call apt_install,$(RUNTIME_DEBS) $(TEST_DEBS))
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "TEST_DATABASE_URL not set: PostgreSQL run skipped"; fi

# The unit and functional tests in two processes (pytest-xdist); the end-to-end tests then in one.
# The production-shape HTTPS test among them (tests/e2e/test_production_https.py) needs PostgreSQL,
# and gets TEST_DATABASE_URL as PRODUCTION_TEST_DATABASE_URL (it works in a schema of its own;
# skipped when neither is set).
test-sqlite:
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -n 2 --ignore=tests/e2e
	PRODUCTION_TEST_DATABASE_URL="$${PRODUCTION_TEST_DATABASE_URL:-$$TEST_DATABASE_URL}" \
	  env -u TEST_DATABASE_URL $(BIN)/python -m pytest tests/e2e

# The end-to-end tests drive a live server with its own SQLite file; they run once, above.
test-postgres:
	$(BIN)/python -m pytest tests/unit tests/functional

# The webhook benchmark creates, uses and drops its own database on this PostgreSQL server.
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_webhooks

bench: install-dev translations
	$(call apt_install,$(RUNTIME_DEBS) $(BENCH_DEBS))
	$(BIN)/python bench/bill_page.py
	$(BIN)/python bench/webhook_ingest.py --database "$(BENCH_DATABASE_URL)"
	$(BIN)/python bench/bank_reconcile.py
	$(BIN)/python bench/dunning_run.py
	$(BIN)/python bench/dunning_dispatch.py

# The bank import alone (no wrk needed): a camt.053 of 100,000 credits; BENCH_ARGS="--database postgresql://…".
bench-bank: install-dev
	$(BIN)/python bench/bank_reconcile.py $(BENCH_ARGS)

# Two instances behind nginx under load, then faults (PostgreSQL restarted, Redis and SMTP stopped, workers
# killed); its own database on this server, created and dropped. Not part of `make test`. See bench/README.md.
SOAK_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_soak

soak: install-dev translations
	$(call apt_install,$(RUNTIME_DEBS) $(SOAK_DEBS))
	$(BIN)/python bench/soak.py --database "$(SOAK_DATABASE_URL)" $(SOAK_ARGS)

clean:
	rm -rf $(VENV) instance artifacts .pytest_cache .mypy_cache .ruff_cache
