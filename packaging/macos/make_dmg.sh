#!/usr/bin/env bash
# The macOS app and disk image (run on a Mac; not built on the Linux build machines):
#   packaging/macos/make_dmg.sh        -> packaging/dist/Likeness.app and Likeness-VERSION.dmg
# packaging/build.py runs PyInstaller with the same spec, which makes Likeness.app on macOS
# (BUNDLE in likeness.spec: the icon, "Open with" for images, no console window). torch's CPU
# build for macOS arm64 also drives the GPU through MPS (`--device mps`).
# Unsigned apps are quarantined by Gatekeeper: sign and notarise before publishing, e.g.
#   codesign --deep --force --options runtime --sign "Developer ID Application: …" dist/Likeness.app
#   xcrun notarytool submit Likeness-VERSION.dmg --wait …; xcrun stapler staple Likeness-VERSION.dmg
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3.11}
"$PY" packaging/build.py "$@"
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
APP=packaging/dist/Likeness.app
[ -d "$APP" ] || { echo "make_dmg: $APP was not made (run on macOS)" >&2; exit 1; }
"$APP/Contents/MacOS/likeness-cli" --self-test
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Likeness $VERSION" -srcfolder "$STAGE" -ov -format UDZO "packaging/dist/Likeness-$VERSION.dmg"
echo "built packaging/dist/Likeness-$VERSION.dmg"
