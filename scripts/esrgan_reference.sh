#!/usr/bin/env bash
# Regenerates tests/engine/nets/fixtures/esrgan_reference.json with the real TF.js executor
# (see scripts/esrgan_reference.mjs). Needs node >= 18 and the npm registry; nothing is installed
# in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch_esrgan.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
    @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-layers@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0)
TFJS_DIR="$tmp" node scripts/esrgan_reference.mjs vendor/upscalerjs tests/engine/nets/fixtures/esrgan_reference.json
