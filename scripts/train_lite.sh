#!/usr/bin/env bash
# Trains the bundled likeness-lite model: stages I, II, III, then exports the EMA weights (fp16).
# Run from the repository root; resumable (each stage continues from its last checkpoint, a
# finished stage is skipped). Needs the aligned-face cache:
#   python -m training.face_import ../shared/data/faces/identities ../cache/faces256
# Usage: scripts/train_lite.sh [OUT] [STAGE1_END STAGE2_END STAGE3_END]
#   The optional ends are wall-clock times (e.g. 03:50, "date -d" syntax) or budgets in minutes
#   ("+4.5"): a stage may be cut short there (final.json then records the steps reached). To
#   reproduce a run exactly, pass each stage's recorded step count instead:
#   .venv/bin/python -m training.cli train S --config lite_stageS --steps N --out OUT/stageS
# Environment: PYTHON (default .venv/bin/python), CONFIGS (config name prefix, default
#   lite_stage; lite_gpu_stage for the GPU configs), THREADS (OMP threads, default 2), MODEL_NAME
#   (the exported file's name, default likeness-lite).
set -euo pipefail
OUT=${1:-../cache/train/lite}
ENDS=("${2:-}" "${3:-}" "${4:-}")
PY=${PYTHON:-.venv/bin/python}
CONFIGS=${CONFIGS:-lite_stage}
export OMP_NUM_THREADS=${THREADS:-2}
for s in 1 2 3; do
  if [[ -f "$OUT/stage$s/final.json" ]]; then echo "stage $s already done"; continue; fi
  budget=()
  end=${ENDS[$((s-1))]}
  if [[ "$end" == +* ]]; then
    budget=(--max-minutes "${end#+}")
  elif [[ -n "$end" ]]; then
    mins=$(( ($(date -d "$end" +%s) - $(date +%s)) / 60 ))
    (( mins < 1 )) && mins=1
    budget=(--max-minutes "$mins")
  fi
  init=()
  (( s > 1 )) && init=(--init "$OUT/stage$((s-1))/last.pt")
  "$PY" -m training.cli train "$s" --config "$CONFIGS$s" --out "$OUT/stage$s" "${init[@]}" --resume "${budget[@]}"
done
"$PY" -m training.cli export "$OUT/stage3/last.pt" "$OUT/${MODEL_NAME:-likeness-lite}.safetensors"
