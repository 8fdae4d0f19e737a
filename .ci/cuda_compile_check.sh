#!/usr/bin/env bash
# Compile-and-link check of the optional CUDA backend on a machine with nvcc but no GPU: cuBLAS and
# cuSOLVER headers/libraries come from NVIDIA's PyPI wheels. Skipped when nvcc or the wheels are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvcc >/dev/null || { echo "cuda compile check: no nvcc, skipped"; exit 0; }
libs=$(mktemp -d)
if ! python -m pip install -q --target "$libs" nvidia-cublas nvidia-cusolver nvidia-cuda-runtime; then
  echo "cuda compile check: NVIDIA library wheels unavailable, skipped"; exit 0
fi
root=$(ls -d "$libs"/nvidia/cu* | head -1)
mkdir -p "$libs/links"
for name in cublas cublasLt cusolver; do ln -sf "$(ls "$root"/lib/lib$name.so.* | head -1)" "$libs/links/lib$name.so"; done
cmake -S . -B build/cuda-check -G Ninja -DHTSR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DPython_EXECUTABLE="$(python -c 'import sys; print(sys.executable)')" -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
  -DCMAKE_LIBRARY_PATH="$libs/links" -DCMAKE_CUDA_FLAGS="-I$root/include" -DCMAKE_CXX_FLAGS="-I$root/include" >/dev/null
cmake --build build/cuda-check
echo "cuda compile check: the CUDA backend compiles and links"
