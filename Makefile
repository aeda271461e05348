# Two commands a user needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.podq-installed

.PHONY: demo test unit integration e2e chaos bench bench-quick up clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "podq needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/podq demo

up: $(STAMP)
	$(BIN)/podq up

test: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/integration tests/e2e -q

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration -q

e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -q

chaos: $(STAMP)
	$(BIN)/python -m pytest tests/chaos -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick --report .podq/bench-quick-report.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
