# The README's two commands: `make run` and `make test`. Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CI ?=
export MILEPOST_DATA_DIR ?= $(CURDIR)/data

.PHONY: run test install system-deps lint fmt bench fuzz chaos clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# System packages the full suite needs. Installed automatically under CI=true as root
# (PostgreSQL server binaries, Chromium for browser tests, hledger for journal checks).
system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/milepost db upgrade
	$(BIN)/milepost demo --if-empty
	MILEPOST_DEV_CLOCK=$${MILEPOST_DEV_CLOCK:-1} $(BIN)/milepost serve

test: install system-deps
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install system-deps
	$(BIN)/python -m bench.run

fuzz: install system-deps
	$(BIN)/pytest -q -p no:cacheprovider -m "long and fuzz" tests/reliability

chaos: install system-deps
	$(BIN)/python -m tests.reliability.chaos
	$(BIN)/pytest -q -p no:cacheprovider -m "long and chaos" tests/reliability

clean:
	rm -rf $(VENV) data test-artifacts .pytest_cache
