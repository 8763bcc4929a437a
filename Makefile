# The two commands of a fresh machine: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install test-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ombudsdesk run

# Real servers the tests need beyond Python packages (Dovecot for IMAP); PostgreSQL is expected on the machine.
test-deps:
	@for script in deploy/test-deps/*.sh; do [ -f "$$script" ] && bash "$$script" || true; done

test: install test-deps
	$(BIN)/python -m pytest

bench: install
	@for script in bench/*/run.sh; do [ -f "$$script" ] && bash "$$script"; done

clean:
	rm -rf $(VENV) var .pytest_cache
