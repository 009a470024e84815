# Every target builds .venv by itself on a fresh machine and is idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-airflow-oldest lint format demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --python $(PY) --quiet -e ".[dev]"
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The oldest Airflow the provider supports (README, get_provider_info): its tests run again in a
# second environment. Airflow publishes no metadata caps for what later broke 3.0.x (its
# constraint files are not on PyPI), so the few that matter are pinned here: cryptography 51
# (Fernet), and the FastAPI/cadwyn/pydantic releases after 3.0.6 (its execution API then
# answers 422 to every task start). wtforms (which the FAB provider brings) lets the 3.0 UI's
# hook-meta API build our connection form from the hook's get_connection_form_widgets.
AIRFLOW_OLDEST ?= 3.0.6
OLDEST_VENV ?= .venv-airflow-oldest

test-airflow-oldest:
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	@$(OLDEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(OLDEST_VENV)/bin/uv pip install --python $(OLDEST_VENV)/bin/python --quiet -e ".[airflow,openlineage,server,pandas]" \
		"apache-airflow==$(AIRFLOW_OLDEST)" "cryptography<51" "fastapi<0.117" "cadwyn<6" \
		"pydantic<2.12" "pytest>=8" "pytest-timeout>=2.3" "wtforms"
	$(OLDEST_VENV)/bin/python -c "import airflow; v = airflow.__version__; assert v == '$(AIRFLOW_OLDEST)', v; print('Airflow', v)"
	$(OLDEST_VENV)/bin/python -m pytest tests/airflow_influx -m "not browser" $(PYTEST_ARGS)

demo: venv
	$(PY) -m example_dags.demo

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .pytest_cache .ruff_cache build dist
