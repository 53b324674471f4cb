# leadrelay: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_JARS := deploy/kafka/target/dependency/.fetched

.PHONY: setup run demo test test-unit test-integration test-e2e bench bench-smoke clean

setup: $(STAMP) $(KAFKA_JARS) ## virtualenv, pinned Python dependencies, Kafka jars from Maven Central

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

$(KAFKA_JARS): deploy/kafka/pom.xml
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime
	@touch $@

run: setup ## Kafka, PostgreSQL and the four services; Ctrl-C stops them all
	$(PY) -m devstack run

demo: setup ## post sample leads to the running stack; shows routed webhooks and SLA alerts
	$(PY) -m devstack demo

test: setup ## unit, integration and end-to-end tests on real Kafka and PostgreSQL, then bench-smoke
	$(PY) -m pytest tests
	$(MAKE) --no-print-directory bench-smoke

bench: setup ## benchmarks (not tests): figures beside their targets, saved under bench/results/
	$(PY) -m bench.intake
	$(PY) -m bench.scoring
	$(PY) -m bench.router
	$(PY) -m bench.sla

bench-smoke: setup ## one short pass of every benchmark: proves the harness works, measures nothing
	$(PY) -m bench.intake --smoke
	$(PY) -m bench.scoring --smoke
	$(PY) -m bench.router --smoke
	$(PY) -m bench.sla --smoke

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

test-e2e: setup
	$(PY) -m pytest tests/e2e

clean: ## remove local data (Kafka logs, PostgreSQL cluster)
	rm -rf .data
