# Two commands a newcomer needs: `make run` (demo at http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The demo and its CLI share one movable clock stored in the embedded database.
export PRORATA_CLOCK ?= movable
# Logs for a person at a terminal (production logs JSON lines: docs/settings.md).
export PRORATA_LOG_FORMAT ?= text

.PHONY: setup run demo test reliability browser lint clean lock

# The exact versions of requirements.lock, each checked against its hashes, then Prorata itself.
# After changing pyproject.toml's dependencies: `make lock` (pip-tools), and commit both files.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Prorata needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install it with 'apt-get install -y python3-venv'"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

lock: $(STAMP)
	$(BIN)/pip install --quiet pip-tools==7.6.2
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-strip-extras --extra dev \
	  --extra celery --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

setup: $(STAMP)

demo: setup
	$(BIN)/prorata migrate --noinput
	$(BIN)/prorata demo

# The web server (gunicorn) and the worker that sends the e-mails and runs the periodic jobs,
# stopped together by Ctrl-C. E-mails land in var/mail/, one .eml file each, newest last.
run: setup
	$(BIN)/prorata migrate --noinput
	$(BIN)/prorata demo
	$(BIN)/prorata up --bind 127.0.0.1:8000

# Browser tests drive Debian's Chromium (never `playwright install`): installed here when we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "Chromium is missing: the browser tests will be skipped (sudo apt-get install -y chromium)"; fi; }

test: setup browser
	$(BIN)/pytest -n auto -p no:cacheprovider

# The reliability suite alone (docs/reliability.md); on PostgreSQL when DATABASE_URL is set.
# `make test` runs it too.
reliability: setup
	$(BIN)/pytest -p no:cacheprovider -m reliability tests/reliability

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy --strict src/prorata_core

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
