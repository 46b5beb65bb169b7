# leadsite: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# Tests run against real PostgreSQL and Redis (cache and broker on separate Redis databases,
# so clearing the cache between tests never drops queued tasks).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/leadsite
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_BROKER_URL ?= redis://127.0.0.1:6379/14

.PHONY: install run test lint format bench soak clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	@mkdir -p var
	@# The demo sales end on 2015-12-31: value "as of" 2016-01-01 unless told otherwise.
	@export DJANGO_DEBUG=$${DJANGO_DEBUG:-1} PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  VALUATION_DEFAULT_AS_OF=$${VALUATION_DEFAULT_AS_OF:-2016-01-01}; \
	  $(PY) manage.py migrate --noinput && \
	  $(PY) manage.py seed_demo && \
	  echo "leadsite: http://127.0.0.1:$(PORT)/admin/  API docs: http://127.0.0.1:$(PORT)/api/docs  (Ctrl-C stops all)" && \
	  exec $(VENV)/bin/honcho start -f Procfile

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-test-only-secret} \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	DJANGO_SECURE_SSL_REDIRECT=$${DJANGO_SECURE_SSL_REDIRECT:-0} DJANGO_SECURE_COOKIES=$${DJANGO_SECURE_COOKIES:-0} \
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install
	DJANGO_SECURE_SSL_REDIRECT=$${DJANGO_SECURE_SSL_REDIRECT:-0} $(PY) bench/run.py $(BENCH)

# Minutes of steady intake with a worker SIGKILL and a broker restart midway (soak/run.py).
# SOAK_SECONDS (600), SOAK_RATE (100 leads/s), SOAK_DRAIN_SECONDS (1800), SOAK_DATABASE_URL.
soak: install
	$(PY) soak/run.py

clean:
	rm -rf var
