# Two commands do everything on a fresh machine:
#   make run    set up .venv and run the main job (the restoration of the sample photos)
#   make test   set up .venv with the test tools and run the whole test suite
#   make lint   ruff and pyright, as CI runs them
.PHONY: run test lint format setup setup-test bench clean installer installer-test

run: setup
	bash scripts/run.sh

test: setup-test
	.venv/bin/python -m pytest -q

# ruff (lint and format check), then pyright (standard); configured in pyproject.toml
lint: setup-test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pyright -p .

format: setup-test
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

bench: setup
	.venv/bin/python benchmarks/pipeline.py

clean:
	rm -rf .venv out .pytest_cache packaging/build packaging/dist

# The application bundle (packaging/dist/likeness/), its .deb and its AppImage; see docs/installer.md.
# Needs python3.11 and, for the AppImage, Debian's squashfs and FUSE development packages.
installer:
	python3.11 packaging/build.py --deb --appimage

# Builds all three from a clean clone of HEAD, installs the .deb, runs it, removes it (root; minutes).
installer-test: setup-test
	LIKENESS_INSTALLER_TEST=1 .venv/bin/python -m pytest -q -s tests/packaging

# The app under Xvfb + openbox, driven by xdotool; screenshots in out/gui-check (not in `make test`:
# needs xvfb, xdotool, openbox and imagemagick from the system)
.PHONY: gui-check
gui-check: setup
	bash scripts/gui_real_display.sh
