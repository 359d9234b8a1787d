#!/usr/bin/env bash
# The real-display check (`make gui-check`): the app under Xvfb with a window manager (openbox),
# driven by real input events (xdotool) through launch, File → Open, a drag and drop from another
# window, a face, the slider, a face toggle, Restore All, export and close. Screenshots go to
# out/gui-check/ (or $1). Needs: sudo apt-get install xvfb xdotool openbox imagemagick, and the
# Qt libraries of scripts/qt_system_packages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/gui-check}"
missing=()
for tool in Xvfb xdotool openbox import; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "gui-check needs ${missing[*]}: sudo apt-get install xvfb xdotool openbox imagemagick" >&2
    exit 2
fi
DISPLAY_NUMBER="${GUI_CHECK_DISPLAY:-:87}"
mkdir -p "$OUT"
Xvfb "$DISPLAY_NUMBER" -screen 0 1920x1080x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB=$!
cleanup() {
    [ -n "${WM:-}" ] && kill "$WM" 2>/dev/null || true
    kill "$XVFB" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY="$DISPLAY_NUMBER"
unset WAYLAND_DISPLAY QT_QPA_PLATFORM
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
openbox >"$OUT/openbox.log" 2>&1 &
WM=$!
sleep 1
.venv/bin/python -m app.system_check  # the same one line as `make run` when Qt's libraries are missing
.venv/bin/python scripts/gui_real_display.py "$OUT"
