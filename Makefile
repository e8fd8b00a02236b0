# Two commands do all set-up: `make reports` (the main job) and `make test`; `make docs` builds the site.
# Each creates .venv/ on first use and installs the pinned set (requirements.lock, requirements-docs.lock);
# later calls reuse it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lnft-installed
PROFILE ?= quick
# The executed reports that `make docs` renders as the site's chapters (never re-run by the build).
DOCS_REPORTS ?= reports/standard

# Keep Hugging Face, Jupyter, IPython and matplotlib state inside the project, never in ~.
export HF_HOME        := $(CURDIR)/.cache/huggingface
export MPLCONFIGDIR   := $(CURDIR)/.cache/matplotlib
export IPYTHONDIR     := $(CURDIR)/.cache/ipython
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter/config
export JUPYTER_DATA_DIR   := $(CURDIR)/.cache/jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.cache/jupyter/runtime
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: install test reports docs bench lab clean
# The browser test renders the reports in headless Chromium (Debian's package; root or sudo installs it).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-docs.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock torch==2.13.0
	$(PY) -m pip install -q -c requirements.lock -c requirements-docs.lock -e '.[test,lab,cluster,docs]'
	touch $(STAMP)

# Tests train into a fresh runs store (.cache/test-runs), wiped first: no result from an earlier run,
# or from older code, can make a test pass. The notebooks run under nbval on the smoke profile.
test: $(STAMP) $(CHROMIUM)
	rm -rf .cache/test-runs && mkdir -p .cache/ipython .cache/matplotlib
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 LNFT_RUNS=$(CURDIR)/.cache/test-runs \
	  $(PY) -m pytest tests notebooks/*.ipynb --nbval-lax -p no:cacheprovider

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }

# Runs come from the committed results ledger (ledger/) when it holds their id; what it lacks trains and is
# recorded there (docs/concepts/run-store.md#ledger). LEDGER= (empty) trains into runs/ only.
LEDGER ?= ledger
reports: $(STAMP)
	mkdir -p .cache/ipython .cache/matplotlib
	HF_HUB_OFFLINE=1 $(VENV)/bin/lnft reports --profile $(PROFILE) $(if $(LEDGER),--ledger $(LEDGER))

# The documentation site (mkdocs-material): docs/ plus generated pages (CLI and API reference, the executed
# notebooks of $(DOCS_REPORTS) as chapters), built with `mkdocs build --strict` into site/ (git-ignored).
docs: $(STAMP)
	mkdir -p .cache/ipython .cache/matplotlib
	$(PY) scripts/build_docs.py --reports $(DOCS_REPORTS) --out site

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run.py $(BENCH_ARGS)

lab: $(STAMP)
	$(if $(LEDGER),LNFT_LEDGER=$(CURDIR)/$(LEDGER)) $(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .cache site
