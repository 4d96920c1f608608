#!/usr/bin/env bash
# The wheels a GPU machine without network needs for benchmarks/gpu_branches.py (notebooks through nbclient,
# app pages through streamlit's AppTest), beside what ../shared/gpu/fetch.sh brings: into .gpu/whl2, which
# benchmarks/gpu_all.sh installs when streamlit, nbclient or ipykernel cannot be imported there.
# The list leaves out what that machine's image already has (torch, numpy, pandas, pyarrow, pillow, pytest,
# ...; debugpy, which ipykernel runs without): together with .gpu/ it must stay under the 64 MiB a call carries.
# Not yet tried on the GPU machine: if an import fails there, the report names the missing package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .gpu/whl2
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .gpu/whl2 \
  streamlit altair starlette uvicorn websockets itsdangerous python-multipart tornado watchdog \
  jsonschema jsonschema-specifications referencing rpds-py \
  nbclient nbformat fastjsonschema jupyter-client jupyter-core platformdirs traitlets pyzmq \
  ipykernel ipython ipython-pygments-lexers comm matplotlib-inline nest-asyncio2 jedi parso pexpect ptyprocess \
  prompt-toolkit wcwidth stack-data executing asttokens pure-eval ipywidgets jupyterlab-widgets
du -sh .gpu/whl2
