#!/usr/bin/env bash
# Runs the distro-only parts (launch files, launch_pytest, sensor_msgs_py parity) for real, outside CI: the
# upstream pure-Python launch, launch_ros, launch_testing, launch_pytest and sensor_msgs_py over this project's
# Kilted wheels, with the package installed into an ament prefix by colcon's own command for ament_python.
#
#   bash tools/distro_check.sh SRC [pytest args...]
#
# SRC holds clones of github.com/ros2/{launch,launch_ros,common_interfaces,rcl_interfaces}. Nothing is copied into
# the project: a throwaway copy of .venv (WORK, default /tmp/depth_perception_distro) gets composition_interfaces
# built into it the way tools/build_tf2_msgs.sh builds tf2_msgs, osrf_pycommon, and pytest<8.4 (launch_pytest's
# plugin breaks on pytest 9); the sources go on PYTHONPATH. CI cannot fetch these repositories.
set -euo pipefail
SRC=$(cd "${1:?usage: distro_check.sh SRC [pytest args]}" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/depth_perception_distro}
for repo in launch launch_ros common_interfaces rcl_interfaces; do
  [ -d "$SRC/$repo" ] || { echo "distro_check: $SRC/$repo is missing (clone github.com/ros2/$repo)" >&2; exit 2; }
done
bash "$root/tools/setup_env.sh"
mkdir -p "$WORK"
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ]; then
  cp -a "$root/.venv" "$VENV"
fi
PY="$VENV/bin/python"  # the copy's pip scripts still point at .venv: always go through its python
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
if ! "$PY" -c "import composition_interfaces.srv" >/dev/null 2>&1; then
  cmake -S "$SRC/rcl_interfaces/composition_interfaces" -B "$WORK/build_ci" -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$PY" >"$WORK/build_ci.log" 2>&1
  make -C "$WORK/build_ci" -j2 install >>"$WORK/build_ci.log" 2>&1
fi
"$PY" -m pip install -q --disable-pip-version-check osrf-pycommon "pytest<8.4" 2>&1 | grep -v "is ignored" || true
export PYTHONPATH="$SRC/launch/launch:$SRC/launch/launch_testing:$SRC/launch/launch_pytest:$SRC/launch/launch_xml"
PYTHONPATH="$PYTHONPATH:$SRC/launch/launch_yaml:$SRC/launch_ros/launch_ros:$SRC/launch_ros/launch_testing_ros"
export PYTHONPATH="$PYTHONPATH:$SRC/launch_ros/ros2launch:$SRC/common_interfaces/sensor_msgs_py"
# the package into an ament prefix, as `colcon build` installs an ament_python package
prefix="$WORK/install"
rm -rf "$prefix" "$WORK/pkg_build"
mkdir -p "$WORK/pkg_build"
(cd "$root" && "$PY" setup.py -q egg_info --egg-base "$WORK/pkg_build" build --build-base "$WORK/pkg_build/build" \
  install --prefix "$prefix" --record "$WORK/pkg_build/install.log" --install-scripts "$prefix/lib/depth_perception" \
  --single-version-externally-managed install_data >"$WORK/install.log" 2>&1) || { tail -20 "$WORK/install.log"; exit 1; }
site=$("$PY" -c "import sysconfig; print(sysconfig.get_path('purelib', vars={'base': '$prefix'}))")
export AMENT_PREFIX_PATH="$prefix:$VENV" PYTHONPATH="$site:$PYTHONPATH"
"$PY" -c "import launch, launch_ros, launch_pytest, sensor_msgs_py; print('launch', launch.__file__)"
cd "$root"
if [ $# -eq 0 ]; then set -- test/test_launch.py test/test_launch_pytest.py test/test_ros_pointcloud.py; fi
"$PY" -m pytest -p launch_pytest.plugin -q -ra --timeout=900 "$@"
