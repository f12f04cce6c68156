# One-command gates. `make test` is what the README and CI run.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test install lint typecheck pytest demo e2e screenshots

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/coverage run -m pytest $(PYTEST_ARGS)
	@echo "coverage (branch): $$($(VENV)/bin/coverage report --format=total)%"

test: lint typecheck pytest

demo: install
	$(VENV)/bin/pbxgate cdr generate --days 7
	$(VENV)/bin/pbxgate cdr stats --days 7

# The office on a real Asterisk (tests/asterisk/): builds it on first use (cached outside the
# clone), places the scenario calls, checks pbxgate against them on every CDR backend.
e2e: install
	tests/asterisk/build.sh
	$(VENV)/bin/pytest -m asterisk tests/asterisk $(PYTEST_ARGS)

# The web console's pictures in docs/ and the README: the browser tests (Debian's chromium) save
# their screenshots there.
screenshots: install
	PBXGATE_TEST_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q -p no:randomly tests/web/browser
