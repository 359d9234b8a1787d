#!/usr/bin/env bash
# Restores a fixed set of real photos through the CLI and lists the outputs' sha256, so that a
# refactor can show its outputs are byte-identical: run it before and after, then diff the lists.
#   bash scripts/cli_snapshot.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: cli_snapshot.sh OUT_DIR}
rw=../shared/data/real_world
ids=../shared/data/faces/identities
py=.venv/bin/likeness
rm -rf "$out" && mkdir -p "$out"
$py samples -o "$out/samples" >/dev/null
$py restore "$rw/whole_photos/00.jpg" "$rw/whole_photos/03.jpg" -o "$out/hog_w03" --detector hog --w 0.3 -q
$py restore "$rw/gray_faces/Einstein01.png" "$rw/cropped_faces/0143.png" --aligned -o "$out/aligned_w08" --w 0.8 -q
$py restore "$rw/cropped_faces/0240.png" --aligned -o "$out/aligned_nocolor" --no-color-fix --upscale 1 -q
person=$(ls "$ids" | head -1)
mkdir -p "$out/inputs"
.venv/bin/python - "$ids/$person/01.jpg" "$out/inputs/ruined.jpg" <<'PY'
import sys, cv2
img = cv2.imread(sys.argv[1])
h, w = img.shape[:2]
small = cv2.resize(cv2.GaussianBlur(img, (0, 0), 4.0), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
cv2.imwrite(sys.argv[2], cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), [cv2.IMWRITE_JPEG_QUALITY, 25])
PY
$py restore "$out/inputs/ruined.jpg" -o "$out/refs" --ref "$ids/$person"/0[2-4].jpg --num-refs 2 --guidance-steps 1 -q
(cd "$out" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum) > "$out/SHA256SUMS"
cat "$out/SHA256SUMS"
