#!/usr/bin/env bash
# The CUDA checks, as one short script for a machine with a GPU (about 10 minutes):
#   bash benchmarks/gpu_check.sh > gpu-results.md
# 1. the machine, and the tests marked `cuda`;
# 2. SpectFormer-H-S at batch 64: inference and a training step, fp32 and bf16-mixed (bfloat16
#    autocast), eager and compiled (archspec bench --compile both gives the eager/compiled ratio and
#    reports the compile time as the first run's);
# 3. the zoo families added for the paper's comparisons (Swin, EfficientNet, RegNet, MobileNet V2/V3,
#    Mixer) and ResNet-50: a training step at batch 64, fp32 and bf16-mixed, eager and compiled;
# 4. every zoo model and shipped SpectFormer, float32 against bfloat16 autocast at batch 32, with the
#    logit difference and top-1 agreement (benchmarks/precision.py);
# 5. the accuracy difference in training: four models fitted to digits in fp32 and bf16-mixed, two
#    seeds each (benchmarks/amp_accuracy.py); fit's default on CUDA is bf16-mixed where the GPU has it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'
print(torch.cuda.get_device_name(), 'bf16:', torch.cuda.is_bf16_supported(), 'torch', torch.__version__)"
python3 -m pytest -q -m cuda tests/test_cuda.py
for precision in fp32 bf16-mixed; do
  archspec bench specs/spectformer-h-s.yaml --device cuda --batch 64 --precision "$precision" --compile both \
    --repeats 20 --format md
  archspec bench specs/spectformer-h-s.yaml --device cuda --batch 64 --precision "$precision" --compile both \
    --repeats 10 --train --set drop_path_rate=0 --format md
done
for model in swin_tiny_patch4_window7_224 efficientnet_b0 regnety_004 mobilenetv2_100 mobilenetv3_large_100 \
  mixer_b16_224 resnet50; do
  for precision in fp32 bf16-mixed; do
    archspec bench "$model" --device cuda --batch 64 --precision "$precision" --compile both --repeats 10 --train \
      --set drop_path_rate=0 --format md
  done
done
python3 benchmarks/precision.py --device cuda --batch 32 --rounds 10
python3 benchmarks/amp_accuracy.py --device cuda --seeds 2 --only spectformer resnet50 deit_small_patch16_224 convnext_tiny
