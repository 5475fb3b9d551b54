#!/usr/bin/env bash
# Runs the test suite in the venv. pytest's exit code 5 (no tests collected) is a failure here.
# The suite is mostly one-threaded (DDS round trips, subprocesses, small torch runs), so it runs on
# TEST_WORKERS pytest-xdist workers (default 2, the CI machine's cores; 0 = in this process), a test file
# per worker at a time (its module fixtures built once), each worker with one torch thread and its own DDS
# domain (test/conftest.py).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-.venv/bin/python}
workers=${TEST_WORKERS:-2}
args=()
if [ "$workers" != 0 ] && "$py" -c "import xdist" 2>/dev/null; then
    args=(-n "$workers" --dist loadfile)
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# The package's compiled kernels (pipelines/compiled.py), built before any test runs: about 30 s on a fresh clone,
# a second when numba's cache is current (setup_env.sh builds them too). Compiled inside the suite, they kept a
# node beyond its start-up timeout while the other worker shared the cores.
"$py" -m depth_perception.pipelines.compiled ||
    echo "run_tests: the compiled kernels did not build; the tests will say why" >&2
"$py" -m pytest -q -ra --timeout=900 "${args[@]}" test "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "run_tests: pytest collected no tests" >&2; exit 1; fi
exit $rc
