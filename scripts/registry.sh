#!/usr/bin/env bash
# Run a real OCI registry (CNCF distribution, Debian's docker-registry) on
# 127.0.0.1:PORT with its storage, config and log under DIR.
#
#   scripts/registry.sh start PORT DIR   # returns once /v2/ answers
#   scripts/registry.sh stop PORT DIR
#
# start returns at once when a registry already answers on 127.0.0.1:PORT
# (scripts/setup.sh and the demo share the one on 5000, whoever started it).
#
# Plain HTTP: push and inspect with --tls-verify=false.
set -euo pipefail

die() {
	printf 'registry: error: %s\n' "$*" >&2
	exit 1
}
usage() { die "usage: $0 start|stop PORT DIR"; }

[[ $# -eq 3 ]] || usage
action=$1 port=$2 dir=$3
[[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
pidfile="$dir/registry.pid"

answers() {
	python3 - "$port" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
except Exception:
    sys.exit(1)
PY
}

start() {
	command -v docker-registry >/dev/null ||
		die "docker-registry is not installed; run scripts/setup.sh (apt-get install docker-registry)"
	answers && return
	mkdir -p "$dir/data"
	dir=$(cd "$dir" && pwd)
	pidfile="$dir/registry.pid"
	if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		answers && return
		die "a registry from $pidfile is running but 127.0.0.1:$port/v2/ does not answer"
	fi
	cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
	# setsid: the registry outlives this script but not a kill of its own group.
	setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	for _ in $(seq 1 100); do
		answers && return
		kill -0 "$(cat "$pidfile")" 2>/dev/null ||
			die "docker-registry exited; see $dir/registry.log:
$(tail -n 20 "$dir/registry.log")"
		sleep 0.1
	done
	stop
	die "127.0.0.1:$port/v2/ did not answer within 10s; see $dir/registry.log"
}

stop() {
	[[ -s $pidfile ]] || return 0
	local pid
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
	fi
	rm -f "$pidfile"
}

case $action in
start) start ;;
stop) stop ;;
*) usage ;;
esac
