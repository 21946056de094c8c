# Leadflow. `make up` runs the whole system on a local broker; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := .cache/tools
UV := $(TOOLS)/bin/uv
PY := .venv/bin/python
export UV_CACHE_DIR := $(CURDIR)/.cache/uv
export UV_PYTHON_DOWNLOADS := never
# Installed packages come with their bytecode: a worker started where
# PYTHONDONTWRITEBYTECODE is set (CI, containers) would otherwise compile every
# library from source on each start, 1.1 s of CPU more per restart.
export UV_COMPILE_BYTECODE := 1

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

venv: .venv/.synced ## create the virtual environment from uv.lock

broker: ## start the local Kafka broker (fetches its jars on first use)
	deploy/local/kafka.sh start

up: venv ## run the services on the local broker and show a scenario
	$(PY) deploy/local/up.py

down: ## stop leftover services and the local broker
	-$(PY) deploy/local/up.py --stop 2>/dev/null
	deploy/local/kafka.sh stop

schemas: venv ## regenerate the committed JSON Schemas and AsyncAPI from the pydantic models
	$(PY) -m schemas.generate

lint: venv ## ruff, mypy, import contracts, generated files up to date
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	$(PY) -m schemas.generate --check
	$(PY) -m schemas.compat

test: venv lint deploy-tools chromium ## every test: unit, agent, integration, end-to-end and the images in containers, on a real broker
	.venv/bin/pytest

image: ## build the service images leadflow-<service>:local (deploy/image.sh: an engine and a base if needed)
	deploy/image.sh build

unit: venv ## the fast tests only (no broker)
	.venv/bin/pytest -m "not broker"

bench: venv ## each stream hop against a bare aiokafka copier, open-loop latency, the desk; results in .cache/bench/results.json
	$(PY) -m tests.bench.hops $(HOPS_ARGS)
	$(PY) -m tests.bench.lead_to_order $(LATENCY_ARGS)
	$(PY) -m tests.bench.desk

bench-recovery: venv ## time to ready after a restart with 10k and 200k leads, per store (about 30 min)
	$(PY) -m tests.bench.recovery $(RECOVERY_ARGS)

soak: venv ## 200,000 leads through the pipeline, RSS and table sizes every 10 s, a PNG of the curve (e.g. SOAK_ARGS="--store rocksdb://")
	$(PY) -m tests.chaos.soak $(SOAK_ARGS)

chaos: venv ## the pipeline under faults on a broker of its own (e.g. CHAOS_ARGS="--workers 2 --leads 2000 --rate 8")
	$(PY) -m tests.chaos $(CHAOS_ARGS)

format: venv ## apply ruff's formatting and fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

.PHONY: help venv broker up down schemas lint test image unit bench bench-recovery soak chaos format

include deploy/tools.mk
