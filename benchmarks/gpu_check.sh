#!/usr/bin/env bash
# The CUDA checks, as one short script for a machine with a GPU (about 10 minutes):
#   bash benchmarks/gpu_check.sh > gpu-results.md
# 1. the tests marked `cuda`;
# 2. SpectFormer-H-S at batch 64: inference and a training step, float32 and bfloat16 autocast,
#    eager and compiled (archspec bench --compile both gives the eager/compiled ratio);
# 3. every zoo model and shipped SpectFormer, float32 against bfloat16 autocast at batch 32, with the
#    logit difference and top-1 agreement (benchmarks/precision.py);
# 4. eager against compiled for three zoo models of different families at batch 64;
# 5. the accuracy difference in training: four models fitted to digits in float32 and as fit --amp
#    trains, two seeds each (benchmarks/amp_accuracy.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m pytest -q -m cuda tests/test_cuda.py
for dtype in float32 bfloat16; do
  archspec bench specs/spectformer-h-s.yaml --device cuda --batch 64 --dtype "$dtype" --compile both --repeats 20
  archspec bench specs/spectformer-h-s.yaml --device cuda --batch 64 --dtype "$dtype" --compile both --repeats 10 \
    --train --set drop_path_rate=0
done
python3 benchmarks/precision.py --device cuda --batch 32 --rounds 10
for model in resnet50 deit_small_patch16_224 convnext_tiny; do
  archspec bench "$model" --device cuda --batch 64 --compile both --repeats 20
done
python3 benchmarks/amp_accuracy.py --device cuda --seeds 2 --only spectformer resnet50 deit_small_patch16_224 convnext_tiny
