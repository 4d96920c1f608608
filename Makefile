# mamba-edu: two commands from a fresh clone.
#   make app    set everything up (a local .venv) and launch the Streamlit app
#   make test   set everything up and run the whole test suite
# Other targets: make setup | lab | info | clean
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

.PHONY: setup app test lab info clean

$(STAMP): pyproject.toml $(TORCH_REQ)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(TORCH_REQ)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[app,notebooks,dev]'
	@touch $@

setup: $(STAMP)

app: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu app

test: setup
	$(RUN_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lab: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu lab

info: setup
	$(RUN_ENV) $(VENV)/bin/mamba-edu info

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
