# ClinRec — `make help` lists every target. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
# A failing curl in `curl | python` must fail the target.
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
API_URL ?= http://$(HOST):$(PORT)
# USER is also the shell's login name: only a USER= given on the command line names the API user.
API_USER := $(if $(filter command line,$(origin USER)),$(USER),admin)
PASS ?= admin
# Several gunicorn workers need a shared cache (Redis): with the per-process local-memory cache, one.
WORKERS ?= $(if $(REDIS_URL),3,1)
# workspace: the compose plugin (`docker compose`), else the standalone `docker-compose`; empty when neither.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || \
             { command -v docker-compose >/dev/null 2>&1 && echo docker-compose; })
define NO_COMPOSE
Docker Compose is not installed: `docker compose` (the plugin) and `docker-compose` both fail.
Install the plugin (Debian/Ubuntu: apt-get install docker-compose-plugin; macOS/Windows: Docker Desktop),
or the standalone docker-compose, or name yours: make $(or $(MAKECMDGOALS),docker-up) COMPOSE="podman compose".
Without Docker, `make run` serves ClinRec with SQLite and no other service.
endef
export NO_COMPOSE

.PHONY: help venv run test lint format migrate seed-db run-app run-consumer run-rabbitmq run-redis \
        docker-up docker-down logs port-free compose-check get-token eval-patient get-recom publish-pending benchmark \
        check-deploy bench bench-worker evaluate-all

help: ## List the targets
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; else on=''; off=''; fi; \
	grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "}; {printf "  %s%-16s%s %s\n", on, $$1, off, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## Create .venv and install the pinned requirements (runtime and dev)

migrate: venv ## Apply database migrations
	$(BIN)/python manage.py migrate --noinput

run: port-free migrate ## Embedded default: migrate, create the dev admin (admin/admin) and serve on 127.0.0.1:8000
	$(BIN)/python manage.py ensure_dev_admin
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

seed-db: migrate ## Load the mock hospital (idempotent)
	$(BIN)/python manage.py seed_db

run-app: port-free migrate ## Serve the API with gunicorn (production shape; set the environment first)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn clinrec.wsgi:application --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile - --timeout 60

run-consumer: venv ## Start the Celery worker with beat (the outbox relay) against CELERY_BROKER_URL
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)"; exit 2; }
	$(BIN)/celery -A clinrec worker --beat --loglevel=INFO --schedule=$(VENV)/celerybeat-schedule

run-rabbitmq: ## Start RabbitMQ (docker when an engine runs, else the local server)
	@if docker info >/dev/null 2>&1; then $(COMPOSE) up -d rabbitmq; \
	else rabbitmq-diagnostics -q ping >/dev/null 2>&1 || rabbitmq-server -detached; echo "RabbitMQ on 127.0.0.1:5672"; fi

run-redis: ## Start Redis (docker when an engine runs, else the local server)
	@if docker info >/dev/null 2>&1; then $(COMPOSE) up -d redis; \
	else redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; echo "Redis on 127.0.0.1:6379"; fi

port-free: # workspace: a busy port is named with the way out, before anything starts
	@$(PYTHON) -c "import socket, sys; sys.exit(socket.socket().connect_ex(('$(HOST)', $(PORT))) == 0)" || \
	  { echo "Port $(PORT) on $(HOST) is already in use (another ClinRec or server?). Use another: make $(MAKECMDGOALS) PORT=8001"; exit 2; }

compose-check: # workspace: say what is missing instead of docker's "unknown shorthand flag: 'd'"
	@test -n "$(strip $(COMPOSE))" || { echo "$$NO_COMPOSE"; exit 2; }
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "$$NO_COMPOSE"; exit 2; }

docker-up: compose-check ## Build and start the whole stack with docker compose
	$(COMPOSE) up -d --build

docker-down: compose-check ## Stop the docker compose stack
	$(COMPOSE) down

logs: compose-check ## Follow the logs of the docker compose stack
	$(COMPOSE) logs -f --tail=100

get-token: ## Print an access token: make get-token USER=admin PASS=admin
	@curl -sS -X POST $(API_URL)/api/v1/security/token/ --data-urlencode "username=$(API_USER)" \
	  --data-urlencode "password=$(PASS)" | $(PYTHON) -c "$$PRINT_TOKEN"

eval-patient: ## Evaluate a patient: make eval-patient PATIENT_ID=108
	@test -n "$(PATIENT_ID)" || { echo "Usage: make eval-patient PATIENT_ID=108"; exit 2; }
	@TOKEN=$$($(MAKE) -s get-token) && curl -sS --fail-with-body -X POST -H "Authorization: Bearer $$TOKEN" \
	  $(API_URL)/api/v1/patients/$(PATIENT_ID)/evaluate/ | $(PYTHON) -m json.tool

get-recom: ## List a patient's recommendations: make get-recom PATIENT_ID=108
	@test -n "$(PATIENT_ID)" || { echo "Usage: make get-recom PATIENT_ID=108"; exit 2; }
	@TOKEN=$$($(MAKE) -s get-token) && curl -sS --fail-with-body -H "Authorization: Bearer $$TOKEN" \
	  "$(API_URL)/api/v1/patient-recommendations/?patient=$(PATIENT_ID)&expand=recommendation" | $(PYTHON) -m json.tool

publish-pending: venv ## Re-publish events still pending in the outbox (after a broker outage)
	$(BIN)/python manage.py publish_pending_events

benchmark: venv ## Queries and latency of the hot paths, in a throwaway database (ROWS=500)
	$(BIN)/python scripts/benchmark.py --rows $${ROWS:-500}

# --- perf (issue 12) ---
bench: venv ## Load test: gunicorn (2 workers) + wrk, req/s p50 p99 vs a bare Django view (DURATION=10 ROUNDS=3)
	$(BIN)/python scripts/benchmark.py --load --duration $${DURATION:-10} --rounds $${ROUNDS:-3}

bench-worker: venv ## Events/s one Celery worker drains from RabbitMQ, in a throwaway database (EVENTS=3000)
	$(BIN)/python scripts/bench_worker.py --events $${EVENTS:-3000}

evaluate-all: migrate ## Evaluate every patient set-wise with a progress bar (CHUNK=5000)
	$(BIN)/python manage.py evaluate_all --chunk $${CHUNK:-5000}

check-deploy: venv ## Django's deployment checklist with production settings
	DJANGO_ENV=production DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-check-deploy-$$(date +%s)-not-a-real-secret-key-0123456789} \
	  DJANGO_ALLOWED_HOSTS=$${DJANGO_ALLOWED_HOSTS:-clinrec.example.org} $(BIN)/python manage.py check --deploy --fail-level WARNING

# --- API fuzzing (issue 7) ------------------------------------------------------------------------------------
.PHONY: fuzz
fuzz: venv ## schemathesis against a throwaway live server: 0 server errors, 0 schema violations (FUZZ_ARGS=)
	$(BIN)/python scripts/fuzz_api.py $(FUZZ_ARGS)

define PRINT_TOKEN
import json, sys
raw = sys.stdin.read()
try:
    print(json.loads(raw)["access"])
except (ValueError, KeyError):
    sys.exit(f"No token from $(API_URL) for user $(API_USER): {raw.strip() or 'no answer (is the API running?)'}")
endef
export PRINT_TOKEN
