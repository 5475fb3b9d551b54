#!/usr/bin/env bash
# Creates or reuses .venv (Python 3.11) with the ROS 2 wheels, PyTorch CPU and the ONNX tooling,
# builds tf2_msgs into it, and installs this package in editable mode. Quick when nothing changed:
# a stamp holds the hash of everything that shapes the environment. pip installs without byte-compiling
# (--no-compile); compileall does it on both cores while the kernels and tf2_msgs build (pip's own compile is one
# core, a minute here). The .pyc files must exist: where PYTHONDONTWRITEBYTECODE is set (this CI machine) no
# import writes them, and every test subprocess would compile torch again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VENV=.venv
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for c in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python3" python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then PYTHON=$c; break; fi
  done
fi
[ -n "$PYTHON" ] || { echo "setup_env: no Python 3.11 found (set PYTHON=...)" >&2; exit 2; }
stamp="$VENV/.depth_perception_env"
want=$(cat requirements.txt setup.py tools/setup_env.sh tools/build_tf2_msgs.sh tools/tf2_msgs/msg/*.msg | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import rclpy, tf2_msgs.msg, torch, depth_perception" >/dev/null 2>&1; then
  exit 0
fi
echo "setup_env: preparing $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -m pip install -q --no-compile --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -c "import rclpy, torch, onnxruntime, rosbags" || { echo "setup_env: pip install failed" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -c "import depth_perception" || { echo "setup_env: package install failed" >&2; exit 1; }
site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# a few packages ship files that are not Python 3.11 (templates, other versions' code): pip skips them too
"$VENV/bin/python" -m compileall -q -j 2 -x "/tests?/|/testing/_internal/" "$site" >/dev/null 2>&1 &
compiling=$!
# The package's numba kernels (pipelines/compiled.py) compile on one core (about 30 s) into numba's cache while
# tf2_msgs builds; tools/run_tests.sh builds them again if this did not (then they take a second).
"$VENV/bin/python" -m depth_perception.pipelines.compiled >/dev/null 2>&1 &
kernels=$!
bash tools/build_tf2_msgs.sh "$VENV"
wait "$kernels" || echo "setup_env: the compiled kernels did not build here; the tests will build them" >&2
wait "$compiling" || true
echo "$want" > "$stamp"
echo "setup_env: ready" >&2
