# The two commands: `make demo` (run it locally) and `make test` (every check). Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test lint typecheck unit compile validate package bench clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("parcours needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/parcours demo

test: setup lint typecheck
	$(BIN)/cfn-lint template.yaml
	$(BIN)/parcours compile --check
	$(BIN)/parcours validate
	$(BIN)/pytest
	$(BIN)/python -m infra.bench --quick

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

compile: setup
	$(BIN)/parcours compile

# Figures against baselines measured in the same run (README, "Bench"); printed, never asserted. About 3.5 minutes
# on a loaded machine; `make test` runs it with --quick (tiny sizes: fails if a figure crashes, measures nothing).
bench: setup
	$(BIN)/python -m infra.bench

package: setup compile
	$(BIN)/parcours package
	@echo "now: sam build && sam deploy --guided"

clean:
	rm -rf $(VENV) .build .pytest_cache .mypy_cache .ruff_cache
