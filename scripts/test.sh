#!/usr/bin/env bash
# Run the test suite: prepare the machine first (scripts/setup.sh, idempotent:
# under a second when nothing is missing), then pytest from the project's
# virtualenv.  Extra arguments go to pytest; the exit code is pytest's.
#
#   CONVEYOR_SKIP_SETUP=1   skip the preparation (a machine you prepared yourself)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ ${CONVEYOR_SKIP_SETUP:-0} != 1 ]]; then
	scripts/setup.sh
fi
[[ -x .venv/bin/pytest ]] || {
	echo "test: .venv/bin/pytest not found; run scripts/setup.sh first" >&2
	exit 2
}
exec .venv/bin/pytest "$@"
