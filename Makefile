# Two commands for a fresh machine: `make run` (SQLite, serves on :8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Local development only: DEBUG lets the app serve without a SECRET_KEY (it makes a throwaway one).
export DEBUG ?= true

.PHONY: run test lint setup up down logs

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/python scripts/create-database.py
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ingest --source csv
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# The production-shaped stack with docker compose: PostgreSQL, gunicorn, cron (needs Docker).
# The first `make up` writes .env from .env.example with fresh secrets.
.env:
	scripts/make-env.sh $@

up: .env
	docker compose up --build --detach --wait --wait-timeout 300
	@echo "up: /health, /data and /metrics on port WEB_PORT (8000 unless .env says otherwise); make logs to follow"

down:
	docker compose down

logs:
	docker compose logs --follow --tail 200
