#!/usr/bin/env bash
# The .deb of a built bundle: packaging/linux/make_deb.sh BUNDLE VERSION OUTDIR
#
#   /opt/likeness/                      the one-folder bundle (Likeness, likeness-cli, _internal/)
#   /usr/bin/likeness                   the command line (a link to /opt/likeness/likeness-cli)
#   /usr/bin/likeness-app               the desktop app from a terminal
#   /usr/share/applications/likeness.desktop   "Open with Likeness" for images
#   /usr/share/icons/hicolor/*/apps/likeness.png
#
# Depends names the system libraries Qt's X11 plugin loads (scripts/qt_system_packages.txt).
# The user's data, models and settings live in their home folder (~/.local/share/Likeness,
# ~/.config/Likeness, ~/.cache/Likeness): removing the package leaves them, as Debian policy
# asks; purging it removes only what the package itself made, and says where they are.
set -euo pipefail
BUNDLE=$(cd "${1:?bundle folder}" && pwd)
VERSION=${2:?version}
OUT=$(mkdir -p "${3:?output folder}" && cd "$3" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ICONS=${LIKENESS_ICONS:-$ROOT/packaging/build/icons}
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" "$STAGE/DEBIAN" \
    "$STAGE/usr/share/doc/likeness"
cp -a "$BUNDLE" "$STAGE/opt/likeness"
ln -s /opt/likeness/likeness-cli "$STAGE/usr/bin/likeness"
ln -s /opt/likeness/Likeness "$STAGE/usr/bin/likeness-app"
cp "$HERE/likeness.desktop" "$STAGE/usr/share/applications/likeness.desktop"
for side in 16 24 32 48 64 128 256 512; do
    mkdir -p "$STAGE/usr/share/icons/hicolor/${side}x${side}/apps"
    cp "$ICONS/likeness-$side.png" "$STAGE/usr/share/icons/hicolor/${side}x${side}/apps/likeness.png"
done
cp "$ROOT/LICENSE" "$STAGE/usr/share/doc/likeness/copyright"

depends=$(grep -v '^#' "$ROOT/scripts/qt_system_packages.txt" | awk 'NF == 2 {print $2}' | sort -u | paste -sd, - | sed 's/,/, /g')
size_kb=$(du -sk --apparent-size "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: likeness
Version: $VERSION
Section: graphics
Priority: optional
Architecture: $ARCH
Maintainer: Likeness developers <likeness@localhost>
Installed-Size: $size_kb
Depends: libc6 (>= 2.28), $depends
Homepage: https://likeness.invalid/
Description: restore faces in old photos, keeping each person recognisable
 Likeness restores faces in old, blurry and compressed photos with a CodeFormer
 network and a fidelity path that leaves clean faces as they are. It works
 offline with its bundled model; originals are never modified.
EOF
cat > "$STAGE/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    # Nothing outside /opt/likeness and the files dpkg lists is the package's own. Each user's
    # photos' results, models and profiles stay theirs (Debian policy: never touch home folders).
    echo "likeness: each user's models, profiles and settings are kept in ~/.local/share/Likeness," \
        "~/.config/Likeness and ~/.cache/Likeness; delete those folders to remove them too."
fi
exit 0
EOF
chmod 755 "$STAGE/DEBIAN/postrm"
find "$STAGE" -type d -exec chmod 755 {} +
deb="$OUT/likeness_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$STAGE" "$deb" >/dev/null
echo "built $deb ($(du -h "$deb" | cut -f1))"
