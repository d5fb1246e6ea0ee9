# Knotenpunkt: the two commands of the quick start are `make up` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: up down test lint format install infra-check bench clean-state

install:
	@command -v uv >/dev/null 2>&1 || [ -x "$(HOME)/.local/bin/uv" ] || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages uv
	@$(UV) sync --locked --quiet

## Start Kafka, PostgreSQL, the four services and the example partner; Ctrl-C stops them.
up: install
	@$(UV) run python -m tools.stack up

## Stop a running `make up` (from another terminal).
down:
	@$(UV) run python -m tools.stack down

## The whole test suite on a real Kafka broker and a real PostgreSQL (started by the fixtures).
test: install
	@$(UV) run pytest

lint: install
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .

format: install
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

clean-state:
	rm -rf .state
