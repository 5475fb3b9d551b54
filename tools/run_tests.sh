#!/usr/bin/env bash
# Runs the test suite in the venv. pytest's exit code 5 (no tests collected) is a failure here.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
.venv/bin/python -m pytest -q -ra --timeout=900 test "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "run_tests: pytest collected no tests" >&2; exit 1; fi
exit $rc
