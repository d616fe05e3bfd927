# medsec: `make run` starts the suite, `make test` runs every test.
# Both first install what the build needs from the system when it is missing.

SHELL := /bin/bash
CARGO ?= cargo
# PostgreSQL for the API tests; each test makes (and drops) a database of its own.
export MEDSEC_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres

BUF := .tools/node_modules/.bin/buf

.PHONY: help bootstrap tools run test lint fmt bench check-postgres check-nats deploy-check

help:
	@echo "make run    start every service on 127.0.0.1:50051 with embedded SQLite (./data/medsec.db)"
	@echo "make test   run every test, on SQLite and on PostgreSQL ($(MEDSEC_TEST_DATABASE_URL))"
	@echo "make lint   cargo fmt --check, clippy -D warnings, cargo doc -D warnings, buf lint and buf format"
	@echo "make bench  run the optimiser, ProposeAllocation and capacity (medsec load) benchmarks (see docs/BENCHMARKS.md)"
	@echo "make deploy-check  render the Kubernetes overlays and check them and the compose file (see docs/DEPLOY.md)"

bootstrap:
	@scripts/bootstrap.sh

tools:
	@scripts/tools.sh

run: bootstrap
	$(CARGO) run -p medsec -- serve

check-postgres:
	@scripts/check-postgres.sh "$(MEDSEC_TEST_DATABASE_URL)"

check-nats:
	@scripts/check-nats.sh

test: bootstrap check-postgres check-nats
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

lint: bootstrap tools
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet
	cd proto && ../$(BUF) lint && ../$(BUF) format --diff --exit-code

fmt: tools
	$(CARGO) fmt --all
	cd proto && ../$(BUF) format -w

# Renders deploy/k8s/overlays/{dev,prod} and checks them (kubernetes-validate,
# checkov, the restricted profile) and deploy/docker-compose.yml; no cargo.
deploy-check:
	@scripts/deploy-check.sh

bench: bootstrap check-postgres
	scripts/bench/run.sh
	scripts/bench/load.sh
	$(CARGO) bench -p medsec-scheduling --bench propose
	MEDSEC_HISTORY_OPS=10000 $(CARGO) test --release -p medsec-tests --test e2e history -- --nocapture
