# Infrastructure targets: template lint, security scan, build. Included by the top-level Makefile
# (`include infra.mk`); also usable alone: `make -f infra.mk infra-check`.
#
#   lint-template  cfn-lint + `sam validate --lint` on template.yaml and examples/ (offline), zero findings
#   checkov        checkov on template.yaml, zero failed checks (skips live in resource Metadata)
#   build          `sam build` into .aws-sam/ (no Docker), then tests/infra/check_build.py;
#                  HEIC=1 adds HEIC/HEIF reading to the layer (pillow-heif: GPLv2 wheels)
#   infra-check    all three
#   infra-tools    create both tool venvs;  infra-clean  remove .aws-sam/
#
# The tools live in two venvs (aws-sam-cli and checkov pin incompatible boto3 versions), each
# created on first use from its requirements file. Point SAM_VENV / CHECKOV_VENV at existing venvs
# to reuse them. The pytest tests in tests/infra/ run with the project's dev venv, not here.

INFRA_ROOT := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

SAM_VENV ?= .venv/tools/sam
CHECKOV_VENV ?= .venv/tools/checkov
INFRA_PYTHON ?= python3
# The offline tools (cfn-lint, sam validate, sam build) want a region and call no AWS API: they get
# one on their own command line only. Exported to every recipe it would also reach `sam deploy` and
# `make backfill`, where it outranks the region of the AWS profile (botocore reads the environment
# first) and would send them to us-east-1 without a word.
OFFLINE_REGION := $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
SAM_CLI_TELEMETRY := 0
export SAM_CLI_TELEMETRY
# `make build HEIC=1`: the layer's Makefile (run by sam build) adds HEIC support.
HEIC ?=
export HEIC

INFRA_TEMPLATE := $(INFRA_ROOT)/template.yaml
INFRA_BUILD_DIR := $(INFRA_ROOT)/.aws-sam/build
SAM_STAMP := $(SAM_VENV)/.requirements-sam.stamp
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements-checkov.stamp
# Python version of the Lambda runtime, read from template.yaml (Globals: Function: Runtime).
LAMBDA_PYTHON_VERSION := $(shell sed -n 's/^ *Runtime: *python\([0-9.]*\).*/\1/p' $(INFRA_TEMPLATE) | head -n 1)

.PHONY: lint-template checkov build infra-check infra-tools infra-clean

$(SAM_STAMP): $(INFRA_ROOT)/requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(INFRA_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(CHECKOV_STAMP): $(INFRA_ROOT)/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(INFRA_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

infra-tools: $(SAM_STAMP) $(CHECKOV_STAMP)

lint-template: $(SAM_STAMP)
	AWS_DEFAULT_REGION=$(OFFLINE_REGION) $(SAM_VENV)/bin/cfn-lint $(INFRA_TEMPLATE)
	AWS_DEFAULT_REGION=$(OFFLINE_REGION) $(SAM_VENV)/bin/sam validate --lint --template-file $(INFRA_TEMPLATE)
	for example in $(INFRA_ROOT)/examples/*.yaml; do \
		AWS_DEFAULT_REGION=$(OFFLINE_REGION) $(SAM_VENV)/bin/cfn-lint "$$example" || exit 1; \
		AWS_DEFAULT_REGION=$(OFFLINE_REGION) $(SAM_VENV)/bin/sam validate --lint --template-file "$$example" || exit 1; \
	done

# --skip-download: no calls to the vendor's platform (offline; no API key is used).
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -f $(INFRA_TEMPLATE) --framework cloudformation --quiet --compact \
		--skip-download

build: $(SAM_STAMP)
	@test -n "$(LAMBDA_PYTHON_VERSION)" || { echo "no python Runtime in $(INFRA_TEMPLATE)" >&2; exit 1; }
	AWS_DEFAULT_REGION=$(OFFLINE_REGION) $(SAM_VENV)/bin/sam build --template-file $(INFRA_TEMPLATE) --build-dir $(INFRA_BUILD_DIR) \
		--config-file $(abspath $(INFRA_ROOT))/samconfig.toml
	$(INFRA_PYTHON) $(INFRA_ROOT)/tests/infra/check_build.py --build-dir $(INFRA_BUILD_DIR) \
		--python-version $(LAMBDA_PYTHON_VERSION)

infra-check: lint-template checkov build

infra-clean:
	rm -rf $(INFRA_ROOT)/.aws-sam
