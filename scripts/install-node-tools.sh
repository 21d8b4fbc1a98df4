#!/usr/bin/env bash
# Install the npm tools the tests use, once, into $CACHE_DIR/node:
#
#   gitlab-ci-local 4.70.1  runs the GitLab component's jobs on its shell
#                           executor (4.75 needs Node 22; 4.70.1 runs on Node 20)
#
# Idempotent: nothing is installed when the pinned version is there already.
# It needs rsync (gitlab-ci-local copies the project with it; setup.sh installs it).
#
# Environment:
#   CONVEYOR_CACHE_DIR   cache root (default /var/cache/conveyor)
set -euo pipefail

CACHE_DIR="${CONVEYOR_CACHE_DIR:-/var/cache/conveyor}"
PREFIX="$CACHE_DIR/node"
TOOLS=("gitlab-ci-local@4.70.1")

log() { printf 'install-node-tools: %s\n' "$*" >&2; }
die() {
	printf 'install-node-tools: error: %s\n' "$*" >&2
	exit 1
}

command -v npm >/dev/null || die "no npm on PATH; install Node.js 20 (Debian: apt-get install nodejs npm)"
mkdir -p "$PREFIX"
for tool in "${TOOLS[@]}"; do
	name="${tool%@*}" version="${tool##*@}"
	manifest="$PREFIX/node_modules/$name/package.json"
	if [[ -f $manifest ]] && grep -q "\"version\": \"$version\"" "$manifest"; then
		log "$name $version present in $PREFIX"
		continue
	fi
	t0=$(date +%s)
	npm install --prefix "$PREFIX" --no-audit --no-fund --silent "$tool" >/dev/null ||
		die "npm install $tool failed"
	log "$name $version installed in $PREFIX ($(($(date +%s) - t0))s)"
done
