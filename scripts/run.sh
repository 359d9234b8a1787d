#!/usr/bin/env bash
# The main job: the desktop app when there is a display and the GUI is installed; otherwise the
# same restoration of the sample photos, headless, with before/after images in out/samples.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -f app/__main__.py ]; then
    exec .venv/bin/python -m app "$@"
fi
exec .venv/bin/likeness samples -o out/samples "$@"
