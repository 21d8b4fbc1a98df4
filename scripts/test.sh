#!/usr/bin/env bash
# Run the test suite with the project's virtualenv; extra arguments go to pytest.
# The exit code is pytest's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -x .venv/bin/pytest ]] || {
	echo "test: .venv/bin/pytest not found; run scripts/setup.sh first" >&2
	exit 2
}
exec .venv/bin/pytest "$@"
