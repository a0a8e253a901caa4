#!/usr/bin/env bash
# The open GPU checks in priority order, sized for one device call of under 10 minutes:
#     run(command="bash benchmarks/gpu_next.sh", timeout_s=590)
# 1. the CUDA tests (never run yet: bf16/channels_last/compile training, --gpu-decode, the side-stream prefetch,
#    optimize on the GPU with and without 1x1-as-GEMM); 2. the JPEG pipeline: the CPU path with float32 and with
#    uint8 hand-over (train's default since 2026-12-02) and training fed by it, the device path with batches made
#    ahead vs inline; 3. GoogLeNet compiled inference with 1x1 convs as GEMMs and unmerged, and compiled training.
# Everything lands in $OUT/gpu_next.tgz (the device tool brings back at most 8 files) plus the summary log.
set -u
out=${OUT:-gpu_out}
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
  date -u
  echo "== 1. tests/test_cuda.py"
  timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
  echo "== 2. JPEG pipeline (ahead vs inline)"
  timeout 150 python3 benchmarks/data_pipeline.py --out "$work" --images 2048 --batch-size 256 --workers 12 \
      --passes 1 2>&1 | tail -12
  echo "== 3. compiled GoogLeNet rows"
  python3 benchmarks/gpu_suite.py --out "$work" --budget 190 --timeout 150 \
      --only googlenet_infer_compiled googlenet_train_compiled 2>&1 | tail -12
  date -u
} 2>&1 | tee "$out/gpu_next.log"
tar czf "$out/gpu_next.tgz" -C "$work" .
