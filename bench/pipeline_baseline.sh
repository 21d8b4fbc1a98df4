#!/usr/bin/env bash
# The example pipeline as a hand-written CI script would run it: the same
# tools and flags as Conveyor's podman engine, one step after the other.
#
#   bench/pipeline_baseline.sh APP_DIR MANIFESTS_GIT REGISTRY_IMAGE TRIVY
#
# APP_DIR is a git checkout of examples/hello (HEAD is the commit to deliver),
# MANIFESTS_GIT the bare manifest repository, REGISTRY_IMAGE the repository
# to push to (e.g. 127.0.0.1:5000/hello), TRIVY the trivy executable (the
# replay double where Trivy cannot be installed; TRIVY_DOUBLE_REPORT set).
# Prints one "STEP SECONDS" line per step on stdout (bench/pipeline.py reads
# them); everything the tools print goes to stderr.
set -euo pipefail

APP=$1 MANIFESTS=$2 IMAGE=$3 TRIVY=$4
BASE=127.0.0.1:5000/conveyor/python:3.11
SHA=$(git -C "$APP" rev-parse HEAD)
LOCAL=localhost/bench-baseline/hello:$SHA
WORK=$(mktemp -d /tmp/pipeline-baseline.XXXXXX)
SERVICE=""
NETWORK=""
cleanup() { # the image stays, as Conveyor's does (bench/pipeline.py removes both)
	[[ -z $SERVICE ]] || podman rm -f -t 0 "$SERVICE" >/dev/null 2>&1 || true
	[[ -z $NETWORK ]] || podman network rm -f "$NETWORK" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
step() { # step NAME START
	printf '%s %.3f\n' "$1" "$(echo "$(now) - $2" | bc)"
}

{
	t=$(now)
	mkdir "$WORK/upper" "$WORK/work"
	podman run --rm --pull=missing --entrypoint "" \
		-v "$APP:/src:O,upperdir=$WORK/upper,workdir=$WORK/work" -w /src \
		"$BASE" python3 -m pytest -q --junitxml=junit.xml >&2
	step test "$t" >&3

	t=$(now)
	mkdir "$WORK/lint-upper" "$WORK/lint-work"
	podman run --rm --pull=missing --entrypoint "" \
		-v "$APP:/src:O,upperdir=$WORK/lint-upper,workdir=$WORK/lint-work" -w /src \
		"$BASE" python3 -m pyflakes . >&2
	step lint "$t" >&3

	t=$(now)
	podman build --pull=missing --no-cache -q -t "$LOCAL" \
		--build-arg BASE_IMAGE="$BASE" --build-arg GIT_SHA="$SHA" "$APP" >&2
	step build "$t" >&3

	t=$(now) # the built image as the service "app" on a network of its own, checked by name
	NETWORK=bench-baseline-${SHA:0:12}
	podman network create "$NETWORK" >&2
	SERVICE=$(podman run -d --network "$NETWORK" --network-alias app "$LOCAL")
	ip=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$SERVICE")
	until (exec 5<>"/dev/tcp/$ip/8080") 2>/dev/null; do sleep 0.1; done
	mkdir "$WORK/it-upper" "$WORK/it-work"
	podman run --rm --entrypoint "" --network "$NETWORK" -e CONVEYOR_SHA="$SHA" \
		-v "$APP:/src:O,upperdir=$WORK/it-upper,workdir=$WORK/it-work" -w /src \
		"$BASE" python3 -m pytest -q -p no:cacheprovider integration/check_service.py \
		--junitxml=integration.xml >&2
	podman rm -f -t 0 "$SERVICE" >&2
	SERVICE=""
	podman network rm "$NETWORK" >&2
	NETWORK=""
	step integration "$t" >&3

	t=$(now)
	podman save --format docker-archive -o "$WORK/image.tar" "$LOCAL" >&2
	"$TRIVY" image --input "$WORK/image.tar" --format json --output "$WORK/trivy.json" --quiet \
		--scanners vuln,secret --ignore-unfixed >&2
	rm -f "$WORK/image.tar"
	step scan "$t" >&3

	t=$(now)
	SERVICE=$(podman run -d -p 127.0.0.1::8080 "$LOCAL")
	url="http://$(podman port "$SERVICE" 8080/tcp | head -1)/version"
	until curl -fsS "$url" 2>/dev/null | grep -q "$SHA"; do sleep 0.1; done
	podman rm -f -t 0 "$SERVICE" >&2
	SERVICE=""
	step smoke "$t" >&3

	t=$(now)
	podman push --quiet --tls-verify=false --digestfile "$WORK/digest" "$LOCAL" \
		"docker://$IMAGE:$SHA" >&2
	step publish "$t" >&3

	t=$(now)
	git clone -q --depth 1 "file://$MANIFESTS" "$WORK/manifests" >&2
	overlay="$WORK/manifests/apps/hello/overlays/staging/kustomization.yaml"
	sed -i -e "s|^\(    newTag: \).*|\1\"$SHA\"|" -e "s|^\(    digest: \).*|\1$(cat "$WORK/digest")|" \
		"$overlay"
	git -C "$WORK/manifests" -c user.name=baseline -c user.email=baseline@localhost \
		commit -q -am "hello: deploy $SHA" >&2
	git -C "$WORK/manifests" push -q origin HEAD:main >&2
	step manifest "$t" >&3
} 3>&1
