# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test ui run lint bench bench-pipeline bench-dashboards clean browser postgresql15

# The report's browser test renders it in Debian's Chromium and reads the PDF back with pdftotext.
browser:
	@command -v chromium >/dev/null && command -v pdftotext >/dev/null || { \
	  echo "Installing Debian's chromium and poppler-utils for the report's browser test ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -qq >/dev/null && \
	    $$SUDO apt-get install -y -qq --no-install-recommends chromium poppler-utils >/dev/null; }; }

# The tests run the pipeline on PostgreSQL 15 too (the oldest supported version), from Debian's package.
postgresql15:
	@test -x /usr/lib/postgresql/15/bin/initdb || { \
	  echo "Installing Debian's postgresql-15 for the tests on the oldest supported PostgreSQL ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -qq >/dev/null && \
	    $$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null; }; }

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "Installing boxoffice into $(VENV) ..."
	@$(BIN)/pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	@$(BIN)/python -c "import boxoffice, dagster_dbt, great_expectations, mollie" 
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/boxoffice demo $(DEMO_ARGS)

run: $(STAMP)
	$(BIN)/boxoffice run

ui: $(STAMP)
	$(BIN)/boxoffice ui

test: $(STAMP) browser postgresql15
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	@$(BIN)/pip install -q -e '.[dev,bench]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/boxoffice bench extract $(BENCH_ARGS)

# every dashboard card's SQL on the configured warehouse (build it at scale first: make demo DEMO_ARGS="--orders 1000000")
bench-dashboards: $(STAMP)
	$(BIN)/boxoffice bench dashboards

# the whole pipeline at scale (default 1,000,000 orders): generation, first run, no-change run, 1% change
bench-pipeline: $(STAMP)
	$(BIN)/boxoffice bench pipeline $(BENCH_ARGS)

clean:
	-$(BIN)/boxoffice db down
	rm -rf .boxoffice reports dbt_project/target dbt_project/logs
