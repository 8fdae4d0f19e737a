#!/usr/bin/env bash
# Development build: compiles htsr._core into python/htsr/ so that `PYTHONPATH=python` uses this
# checkout without a pip install (needs pybind11 and scipy-openblas32 importable by $PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
cmake -S . -B build/dev -G Ninja -DPython_EXECUTABLE="$("$PYTHON" -c 'import sys; print(sys.executable)')" \
  -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" > build/dev.log 2>&1 || { cat build/dev.log; exit 1; }
cmake --build build/dev
cp build/dev/_core*.so python/htsr/
