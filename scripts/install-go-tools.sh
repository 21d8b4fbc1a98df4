#!/usr/bin/env bash
# Install the Go tools the tests use as references, built from their modules:
#
#   kustomize v5.7.1  the reference Conveyor's image editor is compared with
#                     (`kustomize edit set image`, `kustomize build`)
#   helm v3.19.0      what `kustomize build --enable-helm` runs for helmCharts
#   actionlint v1.7.12  the GitHub Actions linter the CI tests run on every
#                     workflow, action and generated caller (about a minute)
#
# Each is built once with `go install` through the Go module proxy (kustomize
# about four minutes on two cores, helm about as long) into
# $CACHE_DIR/bin, with the module and build caches under $CACHE_DIR/go, so a
# second run takes milliseconds.  Idempotent: a binary is rebuilt only when
# it is missing or was built from another version (`go version -m` tells).
# Safe to run by several jobs at once (each build goes to a private directory
# and is moved in place).
#
# Environment:
#   CONVEYOR_CACHE_DIR   cache root (default /var/cache/conveyor)
#   GO                   the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

CACHE_DIR="${CONVEYOR_CACHE_DIR:-/var/cache/conveyor}"
BIN="$CACHE_DIR/bin"
TOOLS=(
	"kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.7.1"
	"helm helm.sh/helm/v3/cmd/helm v3.19.0"
	"actionlint github.com/rhysd/actionlint/cmd/actionlint v1.7.12"
)

log() { printf 'install-go-tools: %s\n' "$*" >&2; }
die() {
	printf 'install-go-tools: error: %s\n' "$*" >&2
	exit 1
}

# the module version a Go binary was built from ("" when unknown)
built_version() { "$GO" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

GO="${GO:-$(command -v go || true)}"
[[ -n $GO ]] || GO=/usr/local/go/bin/go
[[ -x $GO ]] || die "no go command (looked on PATH and at /usr/local/go/bin/go); install Go >= 1.22 or set GO"
mkdir -p "$BIN" "$CACHE_DIR/go/mod" "$CACHE_DIR/go/build"

install_tool() {
	local name=$1 package=$2 version=$3 target="$BIN/$1" work t0
	if [[ -x $target && $(built_version "$target") == "$version" ]]; then
		log "$name $version present at $target"
		return
	fi
	work="$(mktemp -d "$CACHE_DIR/$name-build.XXXXXX")"
	t0=$(date +%s)
	log "building $package@$version (minutes on two cores; cached afterwards)"
	if ! GOBIN="$work" GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" \
		GOFLAGS=-modcacherw "$GO" install "$package@$version" >"$work/build.log" 2>&1; then
		local tail_log
		tail_log="$(tail -n 20 "$work/build.log")"
		rm -rf "$work"
		die "go install $package@$version failed:
$tail_log"
	fi
	if [[ $(built_version "$work/$name") != "$version" ]]; then
		rm -rf "$work"
		die "the built $name does not report module version $version"
	fi
	mv -f "$work/$name" "$target"
	rm -rf "$work"
	log "$name $version installed at $target ($(($(date +%s) - t0))s)"
}

for tool in "${TOOLS[@]}"; do
	# shellcheck disable=SC2086 # three words: name, package, version
	install_tool $tool
done
