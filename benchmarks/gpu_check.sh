#!/usr/bin/env bash
# The CUDA checks, as one short script for a machine with a GPU (about 10 minutes):
#   bash benchmarks/gpu_check.sh > gpu-results.md
# It runs the tests marked `cuda`, then `archspec bench` for SpectFormer-H-S at batch 64 in float32
# and bfloat16 autocast, eager and compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m pytest -q -m cuda tests/test_cuda.py
for dtype in float32 bfloat16; do
  archspec bench specs/spectformer-h-s.yaml --device cuda --batch 64 --dtype "$dtype" --compile both --repeats 20
done
