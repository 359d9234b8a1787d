#!/usr/bin/env bash
# Everything a new generative network must be measured on before it replaces likeness-lite
# (issue 13: "ship only if it beats likeness-lite on all three presets"), on the CPU:
#   scripts/measure_generative.sh MODEL.safetensors OUT [SETS] [FACES]
# SETS holds the held-out mild/moderate/severe sets (`likeness eval --faces FACES --sets-dir SETS`;
# built when missing), FACES the face cache (training.face_import). Writes OUT/eval (the three
# presets: the candidate and likeness-lite, both with the fidelity path), OUT/references (one
# reference at severe, the done-when of issue 13), OUT/real (the real photos). About 30 minutes
# on 2 cores. The reference sweep of issue 15 (training.reference_sweep) is longer; run it too
# before shipping.
set -euo pipefail
model=$(realpath "$1"); out=$2; sets=${3:-../cache/eval/sets}; faces=${4:-../cache/faces256}
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ ! -d "$sets/severe" ]; then
  $py -m training.evaluate --faces "$faces" --sets-dir "$sets" --limit 1 --identity dlib -o "$out/sets-build"
fi
$py -m training.evaluate --set "$sets/mild" --set "$sets/moderate" --set "$sets/severe" --limit 60 \
  --model likeness-lite --model "$model" -o "$out/eval"
$py -m training.reference_eval --set "$sets/severe" --model "$model" --refs 0,1 --guidance 1.0 --limit 60 \
  -o "$out/references"
$py -m training.real_photos --model "$model" --out "$out/real"
echo "reports: $out/eval/report.md $out/references/report.md $out/real/report.md"
