# The README's two commands: `make demo` (set up and run the main job) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: env real-data test test-fast demo lint bench clean

env:
	@bash tools/setup_env.sh

real-data: # OpenCV's sample data (Middlebury 2006 Aloe, two calibrations) from Debian's opencv-doc into data/real/opencv_samples (a note, not a failure, without apt)
	@bash tools/fetch_real_scenes.sh

test: env real-data
	@bash tools/run_tests.sh

test-fast: env  # the inner loop: everything not marked slow (DDS, training, exports, subprocess CLIs)
	@bash tools/run_tests.sh -m "not slow"

demo: env
	@$(VENV)/bin/depth-perception demo --out out/demo

lint: env
	@$(VENV)/bin/ruff check depth_perception test tools launch

bench: env
	@$(VENV)/bin/depth-perception bench core --json out/bench/core.json

clean:
	rm -rf out build *.egg-info
