#!/usr/bin/env bash
# Builds what a lent GPU machine needs to train a face network (the `device` tool's carry
# [".carry", ".whl"], 64 MiB in all): the training identities' faces packed at SIZE as one tar
# (the held-out identities never travel), the held-out list, dlib's identity network for the
# identity loss (a stand-in face_recognition_models with only that .dat), and the wheels the
# device image lacks (platformdirs).
# Usage: scripts/prepare_gpu_carry.sh [SIZE]   (256 for train_backbone_gpu.sh, 128 for likeness-lite)
# Environment: PYTHON (default .venv/bin/python), CACHE (default ../cache/faces256), QUALITY (90).
set -euo pipefail
SIZE=${1:-256}
PY=${PYTHON:-.venv/bin/python}
CACHE=${CACHE:-../cache/faces256}
HELD_OUT=../shared/data/faces/test_identities.txt
[[ -f "$CACHE/index.jsonl" ]] || "$PY" -m training.face_import ../shared/data/faces/identities "$CACHE"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p .carry .whl
"$PY" -m training.face_import "$CACHE" "$tmp/faces$SIZE" --size "$SIZE" --pack --quality "${QUALITY:-90}" \
  --exclude "$HELD_OUT" --archive ".carry/faces$SIZE.tar"
cp "$HELD_OUT" .carry/
frm=$("$PY" -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('face_recognition_models').origin).parent)")
mkdir -p .carry/frm/face_recognition_models/models
: > .carry/frm/face_recognition_models/__init__.py
cp "$frm/models/dlib_face_recognition_resnet_model_v1.dat" .carry/frm/face_recognition_models/models/
version=$("$PY" -c "import platformdirs; print(platformdirs.__version__)")
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl "platformdirs==$version"
du -ch .carry .whl | tail -1
