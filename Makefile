# Two commands do all set-up: `make reports` (the main job) and `make test`.
# Both create .venv/ on first use and install the pinned set (requirements.lock); later calls reuse it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lnft-installed
PROFILE ?= quick

# Keep Hugging Face, Jupyter, IPython and matplotlib state inside the project, never in ~.
export HF_HOME        := $(CURDIR)/.cache/huggingface
export MPLCONFIGDIR   := $(CURDIR)/.cache/matplotlib
export IPYTHONDIR     := $(CURDIR)/.cache/ipython
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter/config
export JUPYTER_DATA_DIR   := $(CURDIR)/.cache/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.cache/jupyter/runtime
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: install test reports bench lab clean
# The browser test renders the reports in headless Chromium (Debian's package; root or sudo installs it).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -e '.[test,lab,cluster]'
	touch $(STAMP)

# Tests train into a fresh runs store (.cache/test-runs), wiped first: no result from an earlier run,
# or from older code, can make a test pass. The notebooks run under nbval on the smoke profile.
test: $(STAMP) $(CHROMIUM)
	rm -rf .cache/test-runs && mkdir -p .cache/ipython .cache/matplotlib
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 LNFT_RUNS=$(CURDIR)/.cache/test-runs \
	  $(PY) -m pytest tests notebooks/*.ipynb --nbval-lax -p no:cacheprovider

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }

reports: $(STAMP)
	mkdir -p .cache/ipython .cache/matplotlib
	HF_HUB_OFFLINE=1 $(VENV)/bin/lnft reports --profile $(PROFILE)

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run.py $(BENCH_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .cache
