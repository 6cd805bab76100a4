# Every target creates .venv and installs the project when missing (or when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve test test-pg test-celery lint eval bench airflow browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet -e ".[dev,postgres,airflow]"
	touch $(STAMP)

## The main job end to end on the embedded defaults (SQLite, local Qdrant, bundled model), offline.
demo: $(STAMP)
	$(BIN)/narrwatch demo

## The served app on the demo's store (run `make demo` first): http://127.0.0.1:8000/
DEMO_ENV := NARRWATCH_DATA_DIR=var/demo NARRWATCH_FEEDS_FILE=var/demo/feeds.yaml
serve: $(STAMP)
	@test -f var/demo/narrwatch.db || { echo "no demo store: run make demo first" >&2; exit 1; }
	@$(DEMO_ENV) $(BIN)/narrwatch users list | grep -q . || { \
	  echo "First account of the demo store (admin):"; \
	  $(DEMO_ENV) $(BIN)/narrwatch users add admin --role admin; }
	$(DEMO_ENV) $(BIN)/narrwatch serve

## The test suite (SQLite; .ci/run repeats the database tests on PostgreSQL) on TEST_WORKERS processes,
## handed one test at a time so the long ones (marked `long`, run first) spread over the workers.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/pytest -q -m "not celery" -n $(TEST_WORKERS) --maxschedchunk 1

## The database tests against PostgreSQL: NARRWATCH_TEST_DATABASE_URL must point at an empty database.
test-pg: $(STAMP)
	$(BIN)/pytest -q -m "db and not celery"

## The DAGs under the CeleryExecutor with a real worker: needs Redis and PostgreSQL (.ci/run starts them).
test-celery: $(STAMP)
	$(BIN)/pytest -q -m celery

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Matching quality on the held-out development set.
eval: $(STAMP)
	$(BIN)/narrwatch eval match --articles eval/dev/articles.jsonl --narratives narratives --level suggest
	$(BIN)/narrwatch eval match --articles eval/dev/articles.jsonl --narratives narratives --level confirm

bench: $(STAMP)
	$(BIN)/python bench/embed.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/rising.py
	$(BIN)/python bench/backtest.py
	$(BIN)/python bench/feed_captures.py
	test ! -f var/demo/narrwatch.db || $(BIN)/python bench/serve.py

## Airflow standalone on 127.0.0.1 with the project's DAGs (metadata DB separate from narrwatch's).
airflow: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/airflow-standalone.sh

## Headless Chromium for the report's browser test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

clean:
	rm -rf var/demo .pytest_cache .mypy_cache .ruff_cache
