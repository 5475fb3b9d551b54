#!/usr/bin/env bash
# Builds tf2_msgs/TFMessage into the pip venv (DESIGN.md §2): no wheel exists for it.
# The ROS wheels' exported CMake targets name the wheel-build machine's Python paths;
# they are rewritten to this venv's real include paths first.
set -euo pipefail
VENV=${1:?usage: build_tf2_msgs.sh VENV}
VENV=$(cd "$VENV" && pwd)
PY="$VENV/bin/python"
if "$PY" -c "import tf2_msgs.msg" >/dev/null 2>&1; then exit 0; fi
here=$(cd "$(dirname "$0")" && pwd)
py_inc=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_inc=$("$PY" -c "import numpy; print(numpy.get_include())")
grep -rl --include='*.cmake' "/opt/python/cp311-cp311" "$VENV/share" 2>/dev/null | while read -r f; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g" "$f"
done
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
cmake -S "$here/tf2_msgs" -B "$build" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$PY" >"$build/cmake.log" 2>&1 || { tail -30 "$build/cmake.log"; exit 1; }
make -C "$build" -j2 install >"$build/make.log" 2>&1 || { tail -30 "$build/make.log"; exit 1; }
"$PY" -c "import tf2_msgs.msg" || { echo "tf2_msgs built but does not import" >&2; exit 1; }
