# esrgan-lab: one entry point. Every target creates/updates .venv itself.
#   make figures [FULL=1]   run every notebook headless (papermill), regenerate figures/
#   make test               lint + unit tests + nbval over every notebook
#   make lab                JupyterLab on 127.0.0.1 with the project's kernel
#   make screenshots        docs/screenshots/*.png of the widgets, from a real browser
#   make bench              the benchmarks in benchmarks/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.esrgan-lab-installed
# torch comes from the CPU build on this machine's disk (constraints.txt);
# pyproject.toml itself only asks for torch>=2.2. Override with CONSTRAINTS= elsewhere.
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINT_ARG := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

# Datasets and the NIQE model live beside the repo in development and CI (never in it).
ifneq ($(wildcard ../shared/datasets),)
export ESRGAN_LAB_DATA ?= $(abspath ../shared/datasets)
endif
ifneq ($(wildcard ../shared/reference/niqe_pris_params.npz),)
export ESRGAN_LAB_NIQE_PARAMS ?= $(abspath ../shared/reference/niqe_pris_params.npz)
endif
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

FULL ?=
PYTEST_ARGS ?=

.PHONY: venv figures test lab screenshots lint format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q $(PIP_CONSTRAINT_ARG) -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c "import torch, esrgan_lab, papermill, nbval; print('torch', torch.__version__)"
	touch $(STAMP)

# Notebooks run headless there: esrgan_lab.widgets returns static figures (not `make lab`).
figures test: export ESRGAN_LAB_HEADLESS := 1

figures: $(STAMP)
	$(BIN)/python tools/nbtool.py run $(if $(FULL),--full,)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tools/nbval_sanitize.cfg $(PYTEST_ARGS)

# Live widgets and inline plots: the kernel must not inherit the Agg backend or headless mode.
lab: $(STAMP)
	env -u MPLBACKEND -u ESRGAN_LAB_HEADLESS \
		$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR)/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root,)

# Runs notebook 01 and a comparison-slider notebook in headless Chromium (apt's chromium).
screenshots: $(STAMP)
	tools/ensure_chromium.sh >/dev/null
	$(BIN)/python tools/lab_browser.py screenshots --out docs/screenshots

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf build .pytest_cache .ruff_cache
