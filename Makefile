# Two commands for a fresh machine: `make run` (SQLite, serves on :8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Local development only: DEBUG lets the app start without a SECRET_KEY (it makes a throwaway one).
export DEBUG ?= true

.PHONY: run test lint setup

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ingest --source csv
	$(BIN)/python manage.py runserver 0.0.0.0:8000

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
