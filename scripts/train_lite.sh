#!/usr/bin/env bash
# Trains the bundled likeness-lite model: stages I, II, III, then exports the EMA weights (fp16).
# Run from the repository root; resumable (each stage continues from its last checkpoint and a
# finished stage is skipped). Needs the aligned-face cache:
#   python -m training.face_import ../shared/data/faces/identities ../cache/faces256
# Usage: scripts/train_lite.sh [OUT=../cache/train/lite]
set -euo pipefail
OUT=${1:-../cache/train/lite}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=2
for s in 1 2 3; do
  if [[ -f "$OUT/stage$s/final.json" ]]; then echo "stage $s already done"; continue; fi
  "$PY" -m training.cli train "$s" --config "lite_stage$s" --out "$OUT/stage$s" --init "$OUT/stage$((s-1))/last.pt" --resume
done
"$PY" -m training.cli export "$OUT/stage3/last.pt" "$OUT/likeness-lite.safetensors"
