#!/usr/bin/env bash
# The main job: the desktop app when there is a display and the GUI is installed; otherwise the
# same restoration of the sample photos, headless, with before/after images in out/samples.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -f app/__main__.py ]; then
    # One line naming the missing system packages (and exit 1), never Qt's abort
    .venv/bin/python -m app.system_check
    exec .venv/bin/python -m app "$@"
fi
exec .venv/bin/likeness samples -o out/samples "$@"
