# leadrelay: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_JARS := deploy/kafka/target/dependency/.fetched
# the deployment checks' tools: helm and promtool built with the machine's Go from the Go module
# proxy, and the custom resources' schemas from their operators' modules
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
HELM_VERSION := v4.3.2
PROMTOOL := $(TOOLS)/bin/promtool
PROMETHEUS_VERSION := v0.316.0
CRDS := $(TOOLS)/crds/.fetched
KEDA_VERSION := v2.18.0
CNPG_VERSION := v1.27.1
# `make run BROKERS=3 REPLICAS=2`: a three-node Kafka cluster and two instances of each service
BROKERS ?= 1
REPLICAS ?= 1

.PHONY: setup tools run demo lint typecheck test test-faults test-unit test-integration test-e2e bench bench-smoke clean

setup: $(STAMP) $(KAFKA_JARS) ## virtualenv, pinned Python dependencies, Kafka jars from Maven Central

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

$(KAFKA_JARS): deploy/kafka/pom.xml
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime
	@touch $@

tools: $(HELM) $(PROMTOOL) $(CRDS) ## helm, promtool and the custom resources' schemas, for the deployment checks

$(HELM):
	GOBIN=$(abspath $(TOOLS)/bin) GOFLAGS=-mod=mod go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(PROMTOOL):
	GOBIN=$(abspath $(TOOLS)/bin) GOFLAGS=-mod=mod go install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

$(CRDS):
	@mkdir -p $(TOOLS)/crds
	cp "$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/config/crd/bases/keda.sh_scaledobjects.yaml" $(TOOLS)/crds/
	cp "$$(go mod download -json github.com/cloudnative-pg/cloudnative-pg@$(CNPG_VERSION) | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/config/crd/bases/postgresql.cnpg.io_clusters.yaml" $(TOOLS)/crds/
	@chmod u+w $(TOOLS)/crds/*.yaml
	@touch $@

run: setup ## Kafka, PostgreSQL and the six services; Ctrl-C stops them all (BROKERS=3 REPLICAS=2: a cluster)
	LEADRELAY_BROKERS=$(BROKERS) LEADRELAY_REPLICAS=$(REPLICAS) $(PY) -m devstack run

demo: setup ## post sample leads to the running stack; shows routed webhooks and SLA alerts
	$(PY) -m devstack demo

lint: setup ## ruff format and rules over every Python file, strict mypy over every package and the tests
	$(PY) -m ruff format --check services shared deploy bench tests
	$(PY) -m ruff check services shared deploy bench tests
	$(MAKE) --no-print-directory typecheck

typecheck: setup
	$(PY) -m mypy -p leadrelay_shared -p intake -p scoring -p router -p sla_monitor -p analytics -p console -p devstack -p bench -p tests

test: setup tools ## ruff and mypy, then unit, deployment, integration and end-to-end tests on real Kafka and PostgreSQL, then bench-smoke
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest tests --ignore=tests/faults
	$(MAKE) --no-print-directory bench-smoke

test-faults: setup ## the fault tier: load on a three-node cluster in network namespaces while brokers, services and PostgreSQL are killed or cut off (root)
	$(PY) -m pytest -s tests/faults

bench: setup ## every benchmark (not tests), then one report: bench/results/<date>.md and .json
	$(PY) -m bench

bench-smoke: setup ## one short pass of every benchmark and of the report: proves the harness
	$(PY) -m bench --smoke

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

test-e2e: setup
	$(PY) -m pytest tests/e2e

clean: ## remove local data (Kafka logs, PostgreSQL cluster)
	rm -rf .data
