#!/usr/bin/env bash
# Install the Conveyor CLI into a virtualenv of its own and put it on PATH: the
# step of the composite action (action.yml at the repository root), which runs
# it from its own checkout, so the CLI is the code of the ref the caller pinned.
#
# Environment:
#   CONVEYOR_SOURCE    the checkout to install (the action's github.action_path)
#   CONVEYOR_EXTRAS    optional dependencies, comma-separated (e.g. "dagger"; empty: none)
#   CONVEYOR_PACKAGE   a pip requirement to install instead (a path is relative to
#                      GITHUB_WORKSPACE, the repository root); empty: CONVEYOR_SOURCE
#   RUNNER_TEMP        where the virtualenv goes (conveyor-venv/)
#   GITHUB_PATH, GITHUB_OUTPUT  the runner's files: bin/ is added to PATH, version= is set
set -euo pipefail

die() {
	echo "::error::$*"
	exit 1
}

extras="${CONVEYOR_EXTRAS:-}"
constraints=()
[[ $extras =~ ^[A-Za-z0-9_,-]*$ ]] || die "extras '$extras' must be extra names separated by commas, e.g. dagger"
if [[ -n ${CONVEYOR_PACKAGE:-} ]]; then
	requirement="$CONVEYOR_PACKAGE"
	cd "${GITHUB_WORKSPACE:-.}"
else
	[[ -f "${CONVEYOR_SOURCE:?}/pyproject.toml" ]] || die "$CONVEYOR_SOURCE is not a Conveyor checkout (no pyproject.toml)"
	requirement="$CONVEYOR_SOURCE${extras:+[$extras]}"
	# the dependency set this release was tested with (scripts/constraints.py)
	if [[ -f "$CONVEYOR_SOURCE/constraints.txt" ]]; then
		constraints=(-c "$CONVEYOR_SOURCE/constraints.txt")
	fi
fi

venv="${RUNNER_TEMP:?}/conveyor-venv"
python -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${constraints[@]}" "$requirement"
version="$("$venv/bin/conveyor" --version)"
echo "$venv/bin" >>"${GITHUB_PATH:?}"
echo "version=${version#conveyor }" >>"${GITHUB_OUTPUT:?}"
echo "installed $version from $requirement into $venv"
