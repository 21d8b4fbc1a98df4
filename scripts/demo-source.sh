#!/usr/bin/env bash
# Copy an example application into its demo checkout and commit it (a new SHA each time).
#
#   scripts/demo-source.sh SOURCE_DIR APP_DIR
#
# APP_DIR is a git repository of its own (created on first use). Conveyor's run store
# (APP_DIR/.conveyor: run records, reports, image tarballs) is never committed: it is
# excluded in .git/info/exclude (the example keeps no .gitignore of its own) and untracked if an
# older demo committed it. Prints the new commit's SHA.
set -euo pipefail

SOURCE="$1"
APP="$2"

mkdir -p "$APP"
rsync -a --delete --exclude .git --exclude .conveyor --exclude __pycache__ \
	"$SOURCE/" "$APP/" 2>/dev/null || {
	find "$APP" -mindepth 1 -maxdepth 1 ! -name .git ! -name .conveyor -exec rm -rf {} +
	cp -r "$SOURCE/." "$APP/"
}
[[ -d $APP/.git ]] || git -C "$APP" init -q -b main
grep -qxF '.conveyor/' "$APP/.git/info/exclude" 2>/dev/null ||
	printf '.conveyor/\n' >>"$APP/.git/info/exclude"
git -C "$APP" rm -r -q --cached --ignore-unmatch -- .conveyor
date -u +%Y-%m-%dT%H:%M:%S.%NZ >"$APP/BUILT_AT"
git -C "$APP" add -A
git -C "$APP" -c user.name=Conveyor -c user.email=conveyor@localhost \
	commit -q --allow-empty -m "demo build $(cat "$APP/BUILT_AT")"
git -C "$APP" rev-parse HEAD
