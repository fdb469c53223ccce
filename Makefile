# Two commands for a newcomer: `make demo` and `make test`. Both set themselves up in .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-dev.stamp
PYTEST := $(BIN)/python -m pytest
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help venv demo demo-failover local loadtest loadtest-failover backfill bench bench-memory bench-outage lint test test-unit test-integration test-e2e test-infra test-iopaint deploy package publish clean

help:
	@echo "make demo    run the whole pipeline locally on a sample pair; result in out/ [PROVIDERS=novita,clipdrop]"
	@echo "make demo-failover  the same with Novita down: cleaned by Clipdrop in the same invocation"
	@echo "make test    lint, type-check, every test tier, template checks and sam build"
	@echo "make local   keep the local stack running for manual uploads"
	@echo "make loadtest 500 pairs through the local stack with faults and a quota; report in out/"
	@echo "make loadtest-failover  200 pairs with Novita down for a minute: failover to Clipdrop"
	@echo "make test-iopaint  the IOPaint adapter and a pair against a real IOPaint server (own venv)"
	@echo "make bench   our handler against the naive reference; table in bench/results/"
	@echo "make bench-memory  peak memory against pixels (the function's memory budget)"
	@echo "make bench-outage  an outage of every provider over a backlog, simulated at production timings"
	@echo "make backfill STACK=... [PREFIX=...] [DRY_RUN=1]  queue what is already in a bucket"
	@echo "make deploy  sam build && sam deploy --guided"
	@echo "make publish S3_BUCKET=...  sam package and sam publish to the Serverless Application Repository"

$(STAMP): requirements-dev.txt layers/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m local.demo --out out $(if $(PROVIDERS),--providers "$(PROVIDERS)")

demo-failover: $(STAMP)
	$(BIN)/python -m local.demo --out out --providers novita,clipdrop --outage novita

local: $(STAMP)
	$(BIN)/python -m local.stack $(if $(PROVIDERS),--providers "$(PROVIDERS)")

loadtest: $(STAMP)
	$(BIN)/python -m local.loadtest --out out/loadtest.json

# 200 pairs, Novita and Clipdrop listed, Novita answering 503 to everything from 20 s to 80 s in.
loadtest-failover: $(STAMP)
	$(BIN)/python -m local.loadtest --pairs 200 --fault-rate 0 --providers novita,clipdrop --outage 20,80 \
		--out out/loadtest-failover.json

bench: $(STAMP)
	$(BIN)/python -m bench.run --out bench/results/latest.json

# make backfill STACK=<stack name> [PREFIX=<prefix>] [DRY_RUN=1]   (or BUCKET=... QUEUE_URL=... [RESULTS_BUCKET=...])
backfill: $(STAMP)
	@test -n "$(STACK)" -o \( -n "$(BUCKET)" -a -n "$(QUEUE_URL)" \) || { echo "usage: make backfill STACK=<stack name> [PREFIX=...] [DRY_RUN=1]" >&2; exit 2; }
	PYTHONPATH=functions/cleanup $(BIN)/python -m ops.backfill $(if $(STACK),--stack "$(STACK)") \
		$(if $(BUCKET),--bucket "$(BUCKET)") $(if $(QUEUE_URL),--queue-url "$(QUEUE_URL)") \
		$(if $(RESULTS_BUCKET),--results-bucket "$(RESULTS_BUCKET)") \
		$(if $(PREFIX),--prefix "$(PREFIX)") $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) \
		$(if $(MASK_SUFFIX),--mask-suffix "$(MASK_SUFFIX)") $(if $(OUTPUT_FORMAT),--output-format "$(OUTPUT_FORMAT)")

bench-memory: $(STAMP)
	$(BIN)/python -m bench.memory --out bench/results/memory.json

# An outage of every provider over a backlog, simulated at production timings with the function's own
# wait schedule, circuit breaker, probes and waiting room (seconds to run; no AWS, no emulator).
bench-outage: $(STAMP)
	PYTHONPATH=functions/cleanup POWERTOOLS_LOG_LEVEL=ERROR POWERTOOLS_TRACE_DISABLED=true \
		$(BIN)/python -m bench.outage --out bench/results/outage.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions/cleanup local tests bench ops

test-unit: $(STAMP)
	$(PYTEST) tests/unit -q

# Each integration test provisions its own account; two workers (pytest-xdist), each with its own local
# AWS and provider emulator, halve the tier's time. WORKERS=0 runs it in one process.
WORKERS ?= 2
test-integration: $(STAMP)
	$(PYTEST) tests/integration -q -n $(WORKERS)

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e -q

test-infra: $(STAMP)
	$(PYTEST) tests/infra -q

test: lint test-unit test-integration test-e2e test-infra infra-check

# A real IOPaint server (not part of `make test`): its own venv (.venv/tools/iopaint, about 1.4 GB, 40 s
# to install on first use), then the adapter and a pair through the local stack against it.
IOPAINT_VENV ?= .venv/tools/iopaint
IOPAINT_STAMP := $(IOPAINT_VENV)/.requirements-iopaint.stamp

$(IOPAINT_STAMP): requirements-iopaint.txt
	test -x $(IOPAINT_VENV)/bin/python || $(PYTHON) -m venv $(IOPAINT_VENV)
	$(IOPAINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $<
	touch $@

test-iopaint: $(STAMP) $(IOPAINT_STAMP)
	IOPAINT_BIN=$(abspath $(IOPAINT_VENV))/bin/iopaint $(PYTEST) tests/iopaint -q

deploy: build
	$(SAM_VENV)/bin/sam deploy --guided

# The AWS Serverless Application Repository (README, "Publish and nest"): S3_BUCKET must let
# serverlessrepo.amazonaws.com read it. The region is the AWS profile's (or AWS_REGION's).
PACKAGED := .aws-sam/packaged.yaml
package: build
	@test -n "$(S3_BUCKET)" || { echo "usage: make package S3_BUCKET=<bucket>" >&2; exit 2; }
	$(SAM_VENV)/bin/sam package --s3-bucket "$(S3_BUCKET)" --output-template-file $(PACKAGED)

publish: package
	$(SAM_VENV)/bin/sam publish --template $(PACKAGED)

clean:
	rm -rf .aws-sam out .mypy_cache .ruff_cache

include infra.mk
