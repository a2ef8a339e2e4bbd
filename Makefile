# make demo — set up a virtual environment and review the bundled example admissions on the default rules.
# make test — set up the same environment with the test tools and run the test suite.
# make check — the fast loop: lint, import contracts, types, and the tests not marked slow on few examples.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check bench clean

demo: $(VENV)/.installed
	$(BIN)/ur rules check rules
	$(BIN)/ur review --summary examples/admissions.ndjson

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

check: $(VENV)/.installed-test
	$(BIN)/ruff check ur_engine ur_service tests bench api.py
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -q -x -m "not slow" -p no:cacheprovider

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
