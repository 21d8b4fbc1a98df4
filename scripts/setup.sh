#!/usr/bin/env bash
# Prepare this machine to run Conveyor's tests and its demo.
#
#   1. container tools: podman buildah skopeo runc docker-registry debootstrap
#   2. a podman that can run a container (containers.conf written if needed)
#   3. the base image localhost/conveyor/python:3.11, built with debootstrap
#      (no registry is needed; the rootfs tarball is cached)
#   4. the virtualenv .venv with the package installed editable
#   5. the loopback registry on 127.0.0.1:5000 (scripts/registry.sh, storage in
#      $CACHE_DIR/registry) holding that base image as
#      127.0.0.1:5000/conveyor/python:3.11, the name the example uses on both
#      engines: the Dagger engine resolves every image from a registry (it has
#      no local image store; "localhost/..." is a registry host to it), and
#      podman pulls the same name from there (plain HTTP, allowed for that one
#      address in /etc/containers/registries.conf.d/)
#
# Idempotent: each step checks before it acts, so a second run takes seconds.
# Needs root (apt-get, /etc/containers, the system image store).
#
# Environment:
#   CONVEYOR_CACHE_DIR      rootfs cache (default /var/cache/conveyor)
#   CONVEYOR_DEBIAN_MIRROR  debootstrap mirror (default http://deb.debian.org/debian)
#   CONVEYOR_SKIP_VENV=1    do not touch .venv
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${CONVEYOR_CACHE_DIR:-/var/cache/conveyor}"
BASE_IMAGE="localhost/conveyor/python:3.11"
SUITE="bookworm" # Debian 12 ships Python 3.11
MIRROR="${CONVEYOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# bump when the packages below change: the image and its rootfs are rebuilt
BASE_REVISION=2
BASE_PACKAGES="python3,python3-pytest,python3-pyflakes,ca-certificates"
ROOTFS_TAR="$CACHE_DIR/python-3.11-$SUITE-r$BASE_REVISION-rootfs.tar"
HOST_CA="/etc/ssl/certs/ca-certificates.crt"
PACKAGES=(podman buildah skopeo runc docker-registry debootstrap iptables python3-venv git jq shellcheck rsync)

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}
step_start() { STEP_T0=$(date +%s); }
step_done() { log "$1 ($(($(date +%s) - STEP_T0))s)"; }

[[ $EUID -eq 0 ]] || die "run as root (apt-get, /etc/containers and podman's system store need it): sudo $0"

# --- 1. packages ---------------------------------------------------------------
install_packages() {
	local missing=() pkg
	for pkg in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "packages: all present"
		return
	fi
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get here; install them by hand"
	step_start
	export DEBIAN_FRONTEND=noninteractive
	# Try the existing package lists first; refresh them once only if that fails.
	if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
		log "packages: refreshing package lists"
		apt-get update -q >/dev/null || die "apt-get update failed; check the network or the apt sources"
		apt-get install -y -q "${missing[@]}" >/dev/null ||
			die "apt-get install ${missing[*]} failed"
	fi
	step_done "packages: installed ${missing[*]}"
}

# --- 2. base image ---------------------------------------------------------------
build_rootfs_tar() {
	[[ -s $ROOTFS_TAR ]] && return
	mkdir -p "$CACHE_DIR"
	local rootfs="$CACHE_DIR/rootfs.tmp"
	rm -rf "$rootfs"
	step_start
	log "base image: debootstrap $SUITE into $rootfs (about a minute)"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" \
		"$SUITE" "$rootfs" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $CACHE_DIR/debootstrap.log"
	# Package registries may sit behind a TLS-inspecting proxy whose CA only the
	# host trusts; the image gets the host's bundle so pip etc. work inside.
	if [[ -s $HOST_CA ]]; then
		cp "$HOST_CA" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	fi
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$rootfs"
	step_done "base image: rootfs cached at $ROOTFS_TAR"
}

build_base_image() {
	local revision
	revision=$(podman image inspect --format '{{index .Labels "org.conveyor.base-revision"}}' \
		"$BASE_IMAGE" 2>/dev/null || true)
	if [[ $revision == "$BASE_REVISION" ]]; then
		log "base image: $BASE_IMAGE present"
		return
	fi
	build_rootfs_tar
	step_start
	podman import --quiet \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["python3"]' \
		--change "LABEL org.conveyor.base-revision=$BASE_REVISION" \
		"$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null || die "podman import of $ROOTFS_TAR failed"
	step_done "base image: imported $BASE_IMAGE"
}

# --- 3. a podman that runs containers ---------------------------------------------
CONTAINERS_CONF="/etc/containers/containers.conf"
podman_runs() { podman run --rm --network none "$BASE_IMAGE" true >/dev/null 2>"$CACHE_DIR/podman-run.log"; }

ensure_podman_runs() {
	mkdir -p "$CACHE_DIR"
	if podman_runs; then
		log "podman: runs containers"
		return
	fi
	if [[ ! -e $CONTAINERS_CONF ]]; then
		# crun fails on hybrid cgroups and rlimits cannot be raised in some VMs:
		# use runc with cgroupfs and no default ulimits.
		log "podman: run failed; writing $CONTAINERS_CONF (runc, cgroupfs)"
		mkdir -p "$(dirname "$CONTAINERS_CONF")"
		cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
		if podman_runs; then
			log "podman: runs containers"
			return
		fi
	fi
	die "'podman run $BASE_IMAGE true' fails even with $CONTAINERS_CONF:
$(tail -n 20 "$CACHE_DIR/podman-run.log")
Check the runtime (runc/crun), cgroups and $CONTAINERS_CONF."
}

# --- 4. virtualenv --------------------------------------------------------------
ensure_venv() {
	[[ ${CONVEYOR_SKIP_VENV:-0} == 1 ]] && return
	local venv="$ROOT/.venv" stamp="$ROOT/.venv/.conveyor-setup"
	if [[ -x $venv/bin/python && -f $stamp && ! $ROOT/pyproject.toml -nt $stamp ]] &&
		"$venv/bin/python" -c 'import conveyor' 2>/dev/null; then
		log "venv: up to date"
		return
	fi
	step_start
	[[ -x $venv/bin/python ]] || python3 -m venv "$venv" ||
		die "python3 -m venv failed; install python3-venv"
	local pip_log="$venv/pip-install.log"
	{ "$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q -c "$ROOT/constraints.txt" -e "${ROOT}[dev]"; } \
		>"$pip_log" 2>&1 || die "pip install -e '.[dev]' failed:
$(tail -n 20 "$pip_log")"
	touch "$stamp"
	step_done "venv: installed ${ROOT}[dev] into $venv"
}

# --- 5. the base image in the loopback registry ----------------------------------
LOOPBACK_PORT=5000
LOOPBACK_REGISTRY="127.0.0.1:$LOOPBACK_PORT"
REGISTRY_BASE_IMAGE="$LOOPBACK_REGISTRY/conveyor/python:3.11"
LOOPBACK_CONF="/etc/containers/registries.conf.d/50-conveyor-loopback.conf"

publish_base_image() {
	if [[ ! -s $LOOPBACK_CONF ]]; then
		mkdir -p "$(dirname "$LOOPBACK_CONF")"
		cat >"$LOOPBACK_CONF" <<CONF
# Written by Conveyor's scripts/setup.sh: the loopback registry speaks plain HTTP.
[[registry]]
location = "$LOOPBACK_REGISTRY"
insecure = true
CONF
		log "registry: podman may pull from $LOOPBACK_REGISTRY over HTTP ($LOOPBACK_CONF)"
	fi
	# Idempotent: returns at once when something already answers on the port.
	"$ROOT/scripts/registry.sh" start "$LOOPBACK_PORT" "$CACHE_DIR/registry" ||
		die "the loopback registry on $LOOPBACK_REGISTRY did not start"
	local local_id remote_config
	local_id="sha256:$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")"
	remote_config=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY_BASE_IMAGE" \
		2>/dev/null | jq -r '.config.digest // empty' 2>/dev/null || true)
	if [[ $remote_config == "$local_id" ]]; then
		log "registry: $REGISTRY_BASE_IMAGE present"
		return
	fi
	step_start
	podman push --quiet --tls-verify=false "$BASE_IMAGE" "docker://$REGISTRY_BASE_IMAGE" \
		>"$CACHE_DIR/base-push.log" 2>&1 ||
		die "podman push of $BASE_IMAGE to $LOOPBACK_REGISTRY failed:
$(tail -n 20 "$CACHE_DIR/base-push.log")"
	step_done "registry: pushed $REGISTRY_BASE_IMAGE"
}

T0=$(date +%s)
install_packages
build_base_image
ensure_podman_runs
ensure_venv
publish_base_image
bash "$ROOT/scripts/install-go-tools.sh" # kustomize v5.7.1 and helm, the tests' references
bash "$ROOT/scripts/install-node-tools.sh" # gitlab-ci-local, for the GitLab component's tests
log "ready in $(($(date +%s) - T0))s"
