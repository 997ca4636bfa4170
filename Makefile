# Two commands a newcomer needs: `make run` (demo at http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The demo and its CLI share one movable clock stored in the embedded database.
export PRORATA_CLOCK ?= movable

.PHONY: setup run demo test test-core lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Prorata needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install it with 'apt-get install -y python3-venv'"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/prorata migrate --noinput
	$(BIN)/prorata demo

run: setup
	$(BIN)/prorata migrate --noinput
	$(BIN)/prorata demo
	$(BIN)/prorata runserver 127.0.0.1:8000

test: setup
	$(BIN)/pytest -n auto -p no:cacheprovider

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy --strict src/prorata_core

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
