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

# Each prints throughput and latency percentiles next to the raw limit measured in the same run (docs/benchmarks.md).
bench: install
	$(BIN)/python bench/intake/bench_smtp.py --messages 3000 --clients 4
	$(BIN)/python bench/intake/bench_pathological.py
	$(BIN)/python bench/e2e/bench_e2e.py --backend sqlite --backend postgres --messages 2000 --clients 4
	$(BIN)/python -m bench.notifier.bench_delivery --notices 1000 --paced 100
	$(BIN)/python bench/registry/bench_registry.py --backend sqlite --backend postgres --count 1000 --rows 1000000 --repeat 40

clean:
	rm -rf $(VENV) var .pytest_cache
