#!/usr/bin/env bash
# The AppImage of a built bundle: packaging/linux/make_appimage.sh BUNDLE VERSION OUTDIR
#
# An AppDir is the bundle folder plus AppRun, the .desktop entry and the icon; the AppImage is
# our own type-2 runtime (appimage-runtime.c: appimagetool and the official runtime are only on
# GitHub) followed by the AppDir as a zstd squashfs. It runs as any AppImage does:
#   ./Likeness-VERSION-x86_64.AppImage                         the app (FUSE, else extracts)
#   ./Likeness-VERSION-x86_64.AppImage --cli restore a.jpg     the command line
#   ./Likeness-VERSION-x86_64.AppImage --appimage-extract-and-run --self-test
# Needs Debian's gcc, squashfs-tools, desktop-file-utils, libsquashfuse-dev, libfuse3-dev,
# libzstd-dev and zlib1g-dev (installed here when missing and run as root).
set -euo pipefail
BUNDLE=$(cd "${1:?bundle folder}" && pwd)
VERSION=${2:?version}
OUT=$(mkdir -p "${3:?output folder}" && cd "$3" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ICONS=${LIKENESS_ICONS:-$ROOT/packaging/build/icons}
SDE=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

need=(gcc libc6-dev squashfs-tools desktop-file-utils libsquashfuse-dev libfuse3-dev libzstd-dev zlib1g-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "make_appimage: install first: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

# The runtime: static, squashfuse + libfuse3 + zstd + zlib, with the type-2 magic "AI\x02" at byte 8.
gcc -std=c11 -Os -Wall -static -ffunction-sections -fdata-sections -Wl,--gc-sections -Wl,--build-id=none -s \
    -o "$WORK/runtime" "$HERE/appimage-runtime.c" -lsquashfuse_ll -lsquashfuse -lfuse3 -lzstd -lz -lpthread 2>&1 |
    { grep -v -e "dlopen" -e "fuse_get_module" || true; }  # glibc's note on dlopen in static programs
printf 'AI\002' | dd of="$WORK/runtime" bs=1 seek=8 conv=notrunc status=none

APPDIR="$WORK/Likeness.AppDir"
cp -a "$BUNDLE" "$APPDIR"
cat > "$APPDIR/AppRun" <<'EOF'
#!/bin/sh
# --cli: the command line; anything else goes to the app (which also takes --self-test).
HERE=$(dirname "$(readlink -f "$0")")
if [ "${1:-}" = "--cli" ]; then
    shift
    exec "$HERE/likeness-cli" "$@"
fi
exec "$HERE/Likeness" "$@"
EOF
chmod 755 "$APPDIR/AppRun"
sed 's|^Exec=.*|Exec=Likeness %F|; /^TryExec=/d' "$HERE/likeness.desktop" > "$APPDIR/likeness.desktop"
desktop-file-validate "$APPDIR/likeness.desktop"
cp "$ICONS/likeness-256.png" "$APPDIR/likeness.png"
ln -s likeness.png "$APPDIR/.DirIcon"
cp "$HERE/appimage-runtime.c" "$APPDIR/licenses/appimage-runtime.c"

mksquashfs "$APPDIR" "$WORK/payload.sqfs" -comp zstd -root-owned -noappend -no-xattrs -reproducible \
    -mkfs-time "$SDE" -all-time "$SDE" -processors "${JOBS:-2}" -quiet -no-progress
image="$OUT/Likeness-$VERSION-$(uname -m).AppImage"
cat "$WORK/runtime" "$WORK/payload.sqfs" > "$image.tmp"
chmod 755 "$image.tmp"
mv "$image.tmp" "$image"
# The payload must start where the runtime ends, or nothing would mount or extract.
[ "$("$image" --appimage-offset)" = "$(stat -c %s "$WORK/runtime")" ]
echo "built $image ($(du -h "$image" | cut -f1))"
