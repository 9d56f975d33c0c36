# Planning Poker. `make` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOST   ?= 127.0.0.1
# The largest WebSocket frame daphne reads before closing the socket: 16 times the table's own
# limit (ROOM_MAX_FRAME_BYTES, 4096 by default), instead of daphne's 1 MiB.
ROOM_MAX_FRAME_BYTES ?= 4096
WS_MAX_SIZE ?= $(shell echo $$(( $(ROOM_MAX_FRAME_BYTES) * 16 )))

.DEFAULT_GOAL := help
.PHONY: help run test test-fast screenshots lint typecheck format migrate demo admin check-deploy clean cluster cluster-stop bench schema faults messages

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime ## Apply migrations to the directory and every shard
	$(PY) manage.py migrate_all

demo: migrate ## Create the demo team and users (alice, bob, carol)
	$(PY) manage.py seed_demo

admin: migrate ## Create an admin account for /admin/ (asks for a name, e-mail and password)
	$(PY) manage.py createsuperuser

run: demo ## Set up, migrate, seed the demo team and serve on http://$(HOST):$(PORT)/
	@echo ""
	@echo "  Planning Poker: open http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo ""
	@# No access log of daphne's: it prints paths (invite links carry tokens); the app logs
	@# each request with its route instead (pokerproject.http, docs/operations.md).
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) --access-log /dev/null \
		--websocket-max-message-size $(WS_MAX_SIZE) --websocket-max-frame-size $(WS_MAX_SIZE) \
		pokerproject.asgi:application

test: $(VENV)/.dev ## Run the whole test suite (services from the environment; embedded default otherwise)
	$(PY) -m pytest --durations=15

# One worker per core (pytest-xdist); each has its own in-memory SQLite or test_*_gwN databases.
test-fast: $(VENV)/.dev ## Run the tests that start no browser and no process (servers, workers, Redis)
	$(PY) -m pytest -n auto -m "not browser and not processes"

# The browser tests photograph the main screens into var/screenshots/ on every run; this writes
# them where the README shows them instead (tests/e2e/test_screenshots.py).
screenshots: $(VENV)/.dev ## Refresh docs/screenshots/*.png (the README's pictures) in the browser; needs Chromium and Redis
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/e2e/test_screenshots.py -q

lint: $(VENV)/.dev ## ruff lint and format check, import contracts, mypy on the core packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy

typecheck: $(VENV)/.dev ## mypy with django-stubs on the core packages (pyproject.toml)
	$(VENV)/bin/mypy

format: $(VENV)/.dev ## Format the code and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The scripts' texts (gettext, ngettext, gettext_noop in static/) into the djangojs catalogue; the
# .mo is committed (served by /jsi18n/). pokerproject/tests/test_jsi18n.py fails on a text missing.
schema: $(VENV)/.runtime ## Regenerate the committed OpenAPI schema (docs/openapi.yaml)
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

# Needs GNU gettext (msgfmt, xgettext). The compiled .mo files are committed, so `make run`
# does not: run this after changing a marked string, then translate what is new (docs/development.md).
messages: $(VENV)/.runtime ## Update the German catalogues (pages and scripts) from the code and compile them
	$(PY) manage.py makemessages -l de -d django --no-obsolete
	$(PY) manage.py makemessages -l de -d djangojs --ignore staticfiles --add-location file --no-obsolete
	$(PY) manage.py compilemessages -l de --ignore .venv --ignore var

check-deploy: $(VENV)/.runtime ## Django's deployment checks with production-like settings
	DJANGO_DEBUG=false DJANGO_SECRET_KEY=$$(head -c 48 /dev/urandom | base64) SITE_URL=https://localhost \
	INTEGRATIONS_ENCRYPTION_KEYS=$$(head -c 32 /dev/urandom | base64 | tr '+/' '-_') \
	$(PY) manage.py check --deploy --fail-level WARNING

clean: ## Remove the virtualenv, the embedded databases and collected static files
	rm -rf $(VENV) var staticfiles

# --- Cluster and benchmark (deploy/cluster/, bench/; docs/operations.md, docs/performance.md) ---
# The cluster's defaults (4 workers, uvicorn, shards in two regions) live in one place,
# deploy/cluster/cluster.sh; WORKERS=, SERVER= or SHARDS= here pass through to it.
CLUSTER_VARS = $(foreach v,WORKERS SERVER SHARDS,$(if $($(v)),$(v)=$($(v))))
TEAMS   ?= 200
MEMBERS ?= 10
BENCH_ARGS ?=
OBSERVE ?= 0

cluster: $(VENV)/.runtime ## Start HAProxy, ASGI workers (WORKERS, SERVER), Redis, PG shards, Celery on :8080; OBSERVE=1 adds Prometheus
	$(CLUSTER_VARS) OBSERVE=$(OBSERVE) deploy/cluster/cluster.sh start

cluster-stop: ## Stop every process `make cluster` started
	deploy/cluster/cluster.sh stop

# Real processes on loopback, its own databases (poker_faults_*) and Redis; stops everything it
# started, on failure too; bounded by FAULTS_TIMEOUT seconds. docs/reliability.md.
FAULTS_TIMEOUT ?= 720
FAULTS_ARGS ?=

faults: $(VENV)/.dev ## Break the system under a scripted workload, check the invariants, write docs/reliability.md (FAULTS_ARGS="--only ...")
	timeout -s INT $(FAULTS_TIMEOUT) $(PY) -m tests.faults.run $(FAULTS_ARGS)

bench: $(VENV)/.dev ## Load test through the cluster's balancer vs a raw websockets server (TEAMS, MEMBERS, BENCH_ARGS)
	$(CLUSTER_VARS) $(PY) -m bench.run --teams $(TEAMS) --members $(MEMBERS) $(BENCH_ARGS)
