# mamba-edu: two commands from a fresh clone.
#   make app    set everything up (a local .venv) and launch the Streamlit app
#   make test   set everything up and run the whole test suite
# Other targets: make setup | lab | info | bench | results-tasks | results-textlm | clean | chromium (for the browser tests)
SHELL   := /bin/bash
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTEST_ARGS ?=

# An NVIDIA GPU gets the CUDA build of torch (which brings its own triton); any other machine
# gets the pinned CPU wheel and a pinned, tested triton that runs kernels under TRITON_INTERPRET=1.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_GPU),1)
  TORCH_REQ := requirements/gpu.txt
  RUN_ENV   :=
else
  TORCH_REQ := requirements/cpu.txt
  RUN_ENV   := TRITON_INTERPRET=1
endif
STAMP := $(VENV)/.installed-$(notdir $(basename $(TORCH_REQ)))

.PHONY: setup app test lab info bench results-tasks results-textlm clean chromium

$(STAMP): pyproject.toml $(TORCH_REQ)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(TORCH_REQ)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[app,notebooks,dev]'
	@touch $@

setup: $(STAMP)

app: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu app

# The app's browser tests drive Debian's chromium through Playwright (`playwright install` cannot
# download a browser everywhere): install it with apt when missing (as root), else they are skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make: chromium is missing (apt-get install chromium): the browser tests will be skipped" >&2; fi; }

test: setup chromium
	$(RUN_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lab: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu lab

info: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu info

# Time every implementation on this machine (full sweep on a GPU, small sizes on a CPU).
bench: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu bench

# Retrain and re-evaluate every run of results/tasks (about ten minutes on two CPU cores).
results-tasks: setup
	$(VENV)/bin/mamba-edu train --reproduce results/tasks

# Retrain the byte-level language model of the Inside Mamba page and its attention baseline on the
# Python standard library's source (about 12 minutes on one CPU thread), and regenerate results/textlm.
results-textlm: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/mamba-edu train --preset textlm --threads 1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
