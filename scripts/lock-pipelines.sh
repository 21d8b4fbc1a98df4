#!/usr/bin/env bash
# Regenerate pipelines/uv.lock, the Dagger module's lock file.
#
# The Dagger Python runtime installs a module with `uv lock` (which keeps every
# pinned version and only adds what is missing) and `uv sync --no-dev` when a
# uv.lock sits beside its pyproject.toml; without one it resolves every
# dependency live from PyPI on each load.  The module's pyproject names the
# SDK as a path source, `sdk/`, which `dagger develop` vendors and which is not
# committed; to lock without an engine this script puts the SDK release that
# matches dagger.json's engineVersion there (its sdist, checked against the
# index's sha256), then runs `uv lock`.  Run it after changing a dependency of
# the module or of the core package (the root pyproject.toml).
#
# Environment:
#   UV   the uv binary (default: uv on PATH, else a pinned uv installed into a
#        temporary virtualenv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$ROOT/pipelines"
UV_VERSION="0.9.7"
INDEX="https://pypi.org/simple"

log() { printf 'lock-pipelines: %s\n' "$*" >&2; }
die() {
	printf 'lock-pipelines: error: %s\n' "$*" >&2
	exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

engine_version="$(jq -r .engineVersion "$ROOT/dagger.json")"
[[ $engine_version == v* ]] || die "dagger.json has no engineVersion (found '$engine_version')"
sdk_version="${engine_version#v}"

uv="${UV:-$(command -v uv || true)}"
if [[ -z $uv ]]; then
	log "installing uv $UV_VERSION into a temporary virtualenv"
	python3 -m venv "$work/uv-venv"
	"$work/uv-venv/bin/pip" install -q "uv==$UV_VERSION" || die "pip install uv==$UV_VERSION failed"
	uv="$work/uv-venv/bin/uv"
fi

if [[ ! -f $MODULE/sdk/pyproject.toml ]] ||
	! grep -qx "version = \"$sdk_version\"" "$MODULE/sdk/pyproject.toml"; then
	name="dagger_io-$sdk_version.tar.gz"
	link="$(curl -fsS "$INDEX/dagger-io/" | grep -o "href=\"[^\"]*/$name#sha256=[0-9a-f]*\"" | head -n 1)" ||
		die "$name is not on $INDEX/dagger-io/"
	link="${link#href=\"}"
	link="${link%\"}"
	url="${link%%#*}"
	want="${link##*#sha256=}"
	log "fetching $name (the SDK 'dagger develop' vendors for $engine_version)"
	curl -fsS -o "$work/$name" "$url" || die "download of $url failed"
	got="$(sha256sum "$work/$name" | cut -d' ' -f1)"
	[[ $got == "$want" ]] || die "$name: sha256 $got, the index says $want"
	tar -xzf "$work/$name" -C "$work"
	# The sdist leaves out the SDK's own development workspace (codegen/),
	# which its pyproject still names; drop those tables: they are how the
	# SDK is developed, not what it needs at run time, and uv refuses a path
	# dependency whose workspace member is missing.
	python3 - "$work/dagger_io-$sdk_version/pyproject.toml" <<-'PY'
		import re, sys
		path = sys.argv[1]
		text = open(path, encoding="utf-8").read()
		dropped = ("dependency-groups", "tool.uv.sources", "tool.uv.workspace")
		sections = re.split(r"(?m)^(?=\[)", text)
		kept = [s for s in sections if not any(s.startswith(f"[{name}]") for name in dropped)]
		open(path, "w", encoding="utf-8").write("".join(kept))
	PY
	rm -rf "$MODULE/sdk"
	mv "$work/dagger_io-$sdk_version" "$MODULE/sdk"
fi

log "uv lock in $MODULE"
(cd "$MODULE" && "$uv" lock --python 3.11)
log "wrote $MODULE/uv.lock"
