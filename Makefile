# The README's two commands: `make demo` (set up and run the main job) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: env test demo lint bench clean

env:
	@bash tools/setup_env.sh

test: env
	@bash tools/run_tests.sh

demo: env
	@$(VENV)/bin/depth-perception demo --out out/demo

lint: env
	@$(VENV)/bin/ruff check depth_perception test tools

bench: env
	@$(VENV)/bin/depth-perception bench core --json out/bench/core.json

clean:
	rm -rf out build *.egg-info
