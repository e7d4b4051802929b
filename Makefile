# The two commands: `make demo` (run it locally) and `make test` (every check). Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
# checkov pins boto3, networkx and packaging below requirements-dev.txt's: it lives in its own environment.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < requirements-checkov.txt | cut -d' ' -f1)

.PHONY: setup demo test test-clock lint typecheck iac unit compile validate package bench clean

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

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

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

package: setup compile
	$(BIN)/parcours package
	@echo "now: sam build && sam deploy --guided"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .build .pytest_cache .mypy_cache .ruff_cache
