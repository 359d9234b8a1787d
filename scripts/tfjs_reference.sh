#!/usr/bin/env bash
# Regenerates tests/training/judges/fixtures/tfjs_reference.json with the real TF.js executor
# (see scripts/tfjs_reference.mjs). Needs node >= 18 and the npm registry; nothing is installed
# in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch_human_models.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
    @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0)
TFJS_DIR="$tmp" node scripts/tfjs_reference.mjs vendor/human-models tests/training/judges/fixtures/tfjs_reference.json
