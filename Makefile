# The two commands a new user needs: `make run` and `make test`. Both bootstrap .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
LOCK := requirements/lock.txt
# pip's own chatter (version nags) stays out of the way; its errors still show.
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/python -m pip

.PHONY: run test test-all bench lint clean system-deps lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every package, pip and setuptools included, comes from the lock with its hash checked; the
# project itself is installed on top without resolving anything (no build isolation: the locked
# setuptools builds it). pyproject.toml keeps ranges for people who install the wheel themselves.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@# Byte-compiled, as pip leaves a package it installs: where PYTHONDONTWRITEBYTECODE is set nothing
	@# else writes the .pyc files, and every command would compile its ~50 modules again (~40 ms).
	$(BIN)/python -m compileall -q -j 0 console engines fleet playbooks faults drills >/dev/null
	touch $(STAMP)

# Refresh the lock on purpose (newest releases within pyproject's ranges), then run `make test`
# and commit requirements/*.txt. pip-tools runs from a venv of its own so the lock never pins it.
LOCK_TOOLS := .venv-lock
PIP_COMPILE := $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --upgrade
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || ($(PYTHON) -m venv $(LOCK_TOOLS) && \
		$(LOCK_TOOLS)/bin/python -m pip install --quiet pip-tools==7.7.0)
	$(PIP_COMPILE) -o requirements/runtime.txt pyproject.toml
	$(PIP_COMPILE) --extra test -c requirements/runtime.txt -o $(LOCK) pyproject.toml requirements/build.in

run: $(STAMP)
	$(BIN)/drconsole

# The Debian packages tests need (Prometheus, Alertmanager, HAProxy, zsh, fish: the list is in the script).
# Silent when present; otherwise installs the missing ones as root without starting daemons.
system-deps:
	@sh deploy/install-system-deps.sh

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) -q

test-all: $(STAMP) system-deps lint
	DRCONSOLE_SLOW=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

bench: $(STAMP)
	@for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The checks `make test` runs first: the import layers, the linter, the types of every package.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy engines fleet playbooks faults drills console

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) build *.egg-info
