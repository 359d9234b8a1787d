#!/usr/bin/env bash
# The stronger generative backbone (training.configs.WIDE: 256², wider) on a lent GPU, in one
# command (issue 13, part 5). Prepare here, on the CPU machine, once:
#   scripts/prepare_gpu_carry.sh 256        # .carry/ and .whl/, about 59 MB
# then run on the device with carry [".carry", ".whl"]:
#   scripts/train_backbone_gpu.sh "$OUT" 4 2 2     # minutes for stages I, II, III
# The degradations run on the GPU (degrade_on_device); the workers only decode faces and draw.
# RESULTS gets likeness-wide.safetensors (fp16 EMA weights), the slim stage checkpoints and the
# logs, split into 15 MB parts where larger (join with `cat F.part-* > F`).
set -euo pipefail
CONFIGS=wide_gpu_stage MODEL_NAME=likeness-wide exec scripts/train_lite_gpu.sh "$@"
