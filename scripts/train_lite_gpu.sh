#!/usr/bin/env bash
# likeness-lite on a lent GPU machine (see resources/models/MODEL_CARD.md): the three stages with
# the lite_gpu_stage* configs under wall-clock budgets, then the export; results copied to RESULTS.
# The machine gets the repository plus .carry/ (packed faces, the held-out list, dlib's
# recognition .dat as a stand-in face_recognition_models) and .whl/ (platformdirs), as
# scripts/prepare_gpu_carry.sh builds them.
# Usage: scripts/train_lite_gpu.sh RESULTS [MIN1 MIN2 MIN3]
# Environment: CONFIGS (default lite_gpu_stage) and MODEL_NAME (default likeness-lite) train
# another network the same way (scripts/train_backbone_gpu.sh). Returned files over 15 MB (the
# device's cap is 16 MB a file) come back split: join them with `cat F.part-* > F`.
set -euo pipefail
RESULTS=$1
M1=${2:-4.2} M2=${3:-2.1} M3=${4:-1.9}
CONFIGS=${CONFIGS:-lite_gpu_stage} MODEL_NAME=${MODEL_NAME:-likeness-lite}
export MODEL_NAME
for archive in .carry/*.tar; do  # packed faces travel as one file (scripts/prepare_gpu_carry.sh)
  [[ -f "$archive" && ! -d "${archive%.tar}" ]] && tar -xf "$archive" -C .carry
done
if [[ -d .whl ]] && ! python3 -c "import platformdirs" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/.carry/frm:$PWD${PYTHONPATH:+:$PYTHONPATH} LIKENESS_HOME=${LIKENESS_HOME:-/tmp/likeness-home} PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
TRAIN=${TRAIN_DIR:-../cache/train/${CONFIGS%_stage}}
mkdir -p "$RESULTS"
set +e
PYTHON=python3 CONFIGS=$CONFIGS THREADS=4 scripts/train_lite.sh "$TRAIN" "+$M1" "+$M2" "+$M3" 2>&1 \
  | grep --line-buffered -v "it/s\]$" | tee "$RESULTS/train.log"
rc=${PIPESTATUS[0]}
set -e
cp "$TRAIN/$MODEL_NAME.safetensors" "$RESULTS/" 2>/dev/null || true
for st in 1 2 3; do  # slim checkpoints: a later session starts the next stage from them (--init)
  [[ -f "$TRAIN/stage$st/last.pt" ]] && python3 -m training.cli slim "$TRAIN/stage$st/last.pt" "$RESULTS/stage$st-init.pt"
done
tar -czf "$RESULTS/logs.tar.gz" -C "$TRAIN" $(cd "$TRAIN" && ls -d stage*/{config.json,final.json,log.jsonl,val.jsonl} 2>/dev/null) \
  $(cd "$TRAIN" && for d in stage*/samples; do ls "$d"/*.png 2>/dev/null | tail -1; done)
for f in "$RESULTS"/*; do
  if [[ -f "$f" && $(stat -c %s "$f") -gt 15000000 ]]; then split -b 15000000 -d "$f" "$f.part-" && rm "$f"; fi
done
exit "$rc"
