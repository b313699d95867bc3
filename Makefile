# The two commands a new user needs: `make run` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test test-all bench lint clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/drconsole

# Debian's prometheus (with promtool) and prometheus-alertmanager, for tests/integration/prometheus.
# Silent when present; otherwise installs them as root without starting their daemons.
system-deps:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && \
		command -v prometheus-alertmanager >/dev/null && command -v haproxy >/dev/null || \
		sh deploy/install-system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m mypy engines playbooks
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) -q

test-all: $(STAMP) system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m mypy engines playbooks
	DRCONSOLE_SLOW=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

bench: $(STAMP)
	@for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m mypy engines playbooks

clean:
	rm -rf $(VENV) build *.egg-info
