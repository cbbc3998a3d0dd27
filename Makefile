# One command sets up and runs the portal; one command sets up and passes the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
PG_URL ?= postgres://portal:portal@127.0.0.1:5432/portal

.PHONY: run test lint fmt venv migrate demo test-sqlite test-postgres system-deps worker beat bench clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo
	$(PY) manage.py demo_workflow

run: demo
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy portal accounts optimizer agent audit

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

system-deps:
	bash .ci/system-deps.sh

test-sqlite: venv
	$(BIN)/pytest -n 2

test-postgres: venv
	bash .ci/postgres.sh
	DATABASE_URL=$(PG_URL) $(BIN)/pytest -n 2

test: system-deps lint test-sqlite test-postgres

worker: venv
	$(BIN)/celery -A portal worker -l info

beat: venv
	$(BIN)/celery -A portal beat -l info

bench: venv
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf $(VENV) db.sqlite3 .mypy_cache .ruff_cache
