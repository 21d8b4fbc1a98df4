#!/usr/bin/env bash
# Run the example pipeline end to end on this machine, on its local default:
#
#   - prepare the machine (scripts/setup.sh: podman, base image, venv, and the
#     registry on 127.0.0.1:5000 holding the base image as
#     127.0.0.1:5000/conveyor/python:3.11; storage in /var/cache/conveyor/registry)
#   - create the manifest repository .conveyor/demo/manifests.git from
#     examples/manifests (once; later runs keep its history)
#   - copy examples/hello to .conveyor/demo/hello and commit it (a new SHA each run;
#     scripts/demo-source.sh: the app's own .conveyor/ run store is never committed)
#   - conveyor run --engine podman
#
# The Trivy step needs a 'trivy' binary on PATH.  None can be installed on a
# machine without internet access to Trivy's releases; then the demo uses the
# replay double tests/doubles/trivy with a recorded clean report, and says so.
#
# Afterwards: conveyor trace show (from .conveyor/demo/hello) draws the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="$ROOT/.conveyor/demo"
log() { printf 'demo: %s\n' "$*" >&2; }

"$ROOT/scripts/setup.sh" # also starts the registry on 127.0.0.1:5000
mkdir -p "$DEMO"
# setup built kustomize v5 there: the manifest stage renders with it when it is on
# PATH (a third of kubectl kustomize's start-up), as on runners that ship kustomize
export PATH="${CONVEYOR_CACHE_DIR:-/var/cache/conveyor}/bin:$PATH"

APP="$DEMO/hello"
# commits the example (never its .conveyor/ run store) and prints the new SHA
SHA="$("$ROOT/scripts/demo-source.sh" "$ROOT/examples/hello" "$APP")"
log "source commit $SHA"

if [[ ! -d $DEMO/manifests.git ]]; then
	log "creating the manifest repository $DEMO/manifests.git"
	rm -rf "$DEMO/manifests-src"
	cp -r "$ROOT/examples/manifests" "$DEMO/manifests-src"
	# The example pins a placeholder commit; pin the source's first commit
	# instead, so the manifest stage can tell that the new one is newer.
	first="$(git -C "$APP" rev-list --max-parents=0 HEAD | tail -n 1)"
	sed -i "s/3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39/$first/" \
		"$DEMO"/manifests-src/apps/hello/overlays/*/kustomization.yaml
	git -C "$DEMO/manifests-src" init -q -b main
	git -C "$DEMO/manifests-src" add -A
	git -C "$DEMO/manifests-src" -c user.name=Conveyor -c user.email=conveyor@localhost \
		commit -q -m "manifests: hello base with staging and production overlays"
	git clone -q --bare "$DEMO/manifests-src" "$DEMO/manifests.git"
	rm -rf "$DEMO/manifests-src"
fi

export CONVEYOR_GITOPS__REPO="$DEMO/manifests.git"
if ! command -v trivy >/dev/null; then
	log "no trivy on PATH: the scan replays a recorded clean report (tests/doubles/trivy)"
	export CONVEYOR_STAGES__SCAN__TRIVY="$ROOT/tests/doubles/trivy"
	export TRIVY_DOUBLE_REPORT="$ROOT/tests/scan/resources/trivy/alpine-310.json"
	export TRIVY_DOUBLE_LOG="$DEMO/trivy-double.log"
fi

cd "$APP"
status=0
"$ROOT/.venv/bin/conveyor" run --engine podman "$@" || status=$?
"$ROOT/.venv/bin/conveyor" trace show || true
if [[ $status -eq 0 ]]; then
	log "staging now pins:"
	git --git-dir="$DEMO/manifests.git" show main:apps/hello/overlays/staging/kustomization.yaml |
		sed -n '/^images:/,$p' >&2
fi
exit "$status"
