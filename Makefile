# Knotenpunkt: the two commands of the quick start are `make up` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
# `python3 -m uv`: works right after bootstrap installed uv, whatever PATH or pyenv shims say.
UV := python3 -m uv

.PHONY: up down test demo bench lint format install clean-state

install:
	@bash tools/bootstrap.sh
	@$(UV) sync --locked --quiet
	@# The web app's CSS and scripts (KERN UX, htmx) and axe-core for its tests, from npm (no CDN).
	@npm ci --prefix services/web --no-audit --no-fund --silent

## Start Kafka, PostgreSQL, the four services and the example partner; Ctrl-C stops them.
up: install
	@$(UV) run python -m tools.stack up

## Stop a running `make up` (from another terminal).
down:
	@$(UV) run python -m tools.stack down

## The whole test suite on a real Kafka broker and a real PostgreSQL (started by the fixtures).
test: install
	@$(UV) run pytest

## Fill a running system (`make up` in another terminal) with realistic synthetic people.
demo: install
	@$(UV) run python -m tools.demo

## Benchmarks (print figures; not part of the tests): each consumer service against a raw aiokafka
## consumer on the same events, stats ingestion and rebuild on 1,000,000 events, then intake-to-stats latency.
bench: install
	@$(UV) run python -m tests.bench.consumer_throughput
	@$(UV) run python -m tests.bench.stats_throughput
	@$(UV) run python -m tests.bench.story_latency

lint: install
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .

format: install
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

clean-state:
	rm -rf .state
