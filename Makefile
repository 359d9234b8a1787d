# Two commands do everything on a fresh machine:
#   make run    set up .venv and run the main job (the restoration of the sample photos)
#   make test   set up .venv with the test tools and run the whole test suite
.PHONY: run test setup setup-test bench clean

run: setup
	bash scripts/run.sh

test: setup-test
	.venv/bin/python -m pytest -q

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

bench: setup
	.venv/bin/python benchmarks/pipeline.py

clean:
	rm -rf .venv out .pytest_cache
